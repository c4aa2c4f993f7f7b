"""What a delivery run did: receivers attempted, how each attempt ended, and why."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class DeliveryReport:
    """What a run did: receivers attempted, and how each attempt ended."""

    attempted: int = 0
    sent: int = 0
    failed: int = 0
    error: int = 0
    deferred: int = 0  # not attempted: a rate limit lets them through later
    suppressed: int = 0  # not attempted: the address is on the suppression list
    pause: dict | None = field(default=None, compare=False)  # the pause that stopped it
    # why attempts failed: status (failed, error) -> the failure's text -> how many
    reasons: dict[str, dict[str, int]] = field(default_factory=dict, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, status: str, reason: str | None = None) -> int:
        """One attempt's outcome (and, for a failure, why); how many receivers the run is
        done with."""
        with self._lock:
            self.attempted += 1
            setattr(self, status, getattr(self, status) + 1)
            if reason is not None and status in ("failed", "error"):
                texts = self.reasons.setdefault(status, {})
                texts[reason] = texts.get(reason, 0) + 1
            return self.attempted + self.deferred + self.suppressed

    def skipped(self, reason: str, count: int) -> int:
        """Receivers not attempted (`deferred` or `suppressed`); how many are done."""
        with self._lock:
            setattr(self, reason, getattr(self, reason) + count)
            return self.attempted + self.deferred + self.suppressed

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.error == 0

    def as_dict(self) -> dict:
        reasons: dict[str, int] = {}
        for texts in self.reasons.values():
            for text, count in texts.items():
                reasons[text] = reasons.get(text, 0) + count
        return {"attempted": self.attempted, "sent": self.sent, "failed": self.failed,
                "error": self.error, "deferred": self.deferred,
                "suppressed": self.suppressed, "reasons": reasons}  # fmt: skip
