"""What a failure does (the resend limit and the backoff): a leaf that the claims, the
outcomes and the stats all read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    """What a failure does: the limit, and the backoff before the next attempt."""

    resend_limit: int
    backoff: dt.timedelta
    backoff_max: dt.timedelta
    max_age: dt.timedelta = dt.timedelta(0)  # 0: receivers never expire by age

    def next_attempt(self, failures: int, now: dt.datetime) -> dt.datetime:
        """After the n-th failure: backoff * 2^(n-1), +-20% jitter, at most backoff_max."""
        base = self.backoff.total_seconds()
        if base <= 0:
            return now
        import random

        delay = base * 2 ** min(failures - 1, 40) * random.uniform(0.8, 1.2)
        return now + dt.timedelta(seconds=min(delay, self.backoff_max.total_seconds()))
