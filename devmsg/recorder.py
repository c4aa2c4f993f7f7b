"""Writes each attempt's outcome to the store (one commit, which also marks the next
receiver's attempt as started) and counts it in the run's report; a refusal that says the
mailbox is gone puts the address on the suppression list."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from devmsg import store
from devmsg.config import Config
from devmsg.report import DeliveryReport
from devmsg.store import Outgoing, Policy

if TYPE_CHECKING:
    from devmsg.transport import DeliveryFailure

Progress = Callable[[int, int], None]  # (done, total)


class Recorder:
    def __init__(
        self,
        config: Config,
        policy: Policy,
        report: DeliveryReport,
        progress: Progress | None,
        recheck: bool,
    ) -> None:
        self.config = config
        self.policy = policy
        self.report = report
        self.progress = progress
        self.recheck = recheck
        self.total = 0  # receivers the run expects to be done with, for the progress bar
        self._batch = threading.local()  # this thread's batch: status -> count

    def begin_batch(self) -> dict[str, int]:
        """Count this thread's outcomes from now on into the dict returned (a batch)."""
        tally: dict[str, int] = {}
        self._batch.tally = tally
        return tally

    def _tally(self, status: str, count: int = 1) -> None:
        tally = getattr(self._batch, "tally", None)
        if tally is not None:
            tally[status] = tally.get(status, 0) + count

    def failure(self, row: Outgoing, failure: DeliveryFailure, start_next: int | None) -> bool:
        """Record a failure; whether `start_next` was started in the same commit."""
        status, started = store.record_failure(
            row.id, row.failed_count, failure.error, failure.traceback, failure.permanent,
            self.policy, start_next, backoff=not failure.interrupted, recheck=self.recheck,
            counts=failure.counts, relay_failures=row.relay_failures,
        )  # fmt: skip
        self._count(status, failure.error)
        cfg = self.config
        if cfg.suppress and not cfg.redirect_to and status != store.VANISHED:
            from devmsg.transport import mailbox_is_gone

            if mailbox_is_gone(failure) and failure.refusal is not None:
                _stage, code, reply = failure.refusal
                store.add_suppression(
                    row.address, failure.error, "devmsg (refused at RCPT)", code, reply, row.id
                )
        return started

    def success(self, row: Outgoing, to: str, start_next: int | None, listed: dict) -> bool:
        """Record that the server accepted `row`; whether `start_next` was started."""
        from devmsg.addresses import mailbox_key

        status, started = store.record_success(row.id, to, start_next, self.recheck)
        self._count(status)
        if listed and mailbox_key(row.address) in listed:
            store.unsuppress(row.address)  # a person's resend reached it: not dead
        return started

    def skipped(self, reason: str, count: int) -> None:
        """Receivers not attempted: `deferred` or `suppressed`."""
        self._tally(reason, count)
        self._progress(self.report.skipped(reason, count))

    def _count(self, status: str, reason: str | None = None) -> None:
        if status == store.VANISHED:
            return
        self._tally(status)
        self._progress(self.report.count(status, reason))

    def _progress(self, done: int) -> None:
        if self.progress is not None:
            self.progress(done, max(self.total, done))
