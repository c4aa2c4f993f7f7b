"""The one delivery path: claim -> deliver -> record, for send, resend and resend-failed.

A run has an owner id (host:pid:random). Its receivers are claimed in the store with a
lease, which the run renews while it works. Each worker has its own SMTP connection and
takes small batches: it marks a receiver's attempt as started, talks SMTP (no transaction
open), then commits the outcome, and in that same commit marks the next receiver as
started. So after a crash at most one receiver per connection is "in flight"; recovery
records it as an interrupted attempt and retries it, and every other claimed receiver is
simply released.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from devmsg import store
from devmsg.config import Config
from devmsg.store import Outgoing, Policy

Progress = Callable[[int, int], None]  # (done, total)

DUE_BATCH = 25  # resend-failed claims this many at a time, so concurrent runs share the work
ID_BATCH = 50


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def policy_of(config: Config) -> Policy:
    return Policy(config.resend_limit, config.retry_backoff, config.retry_backoff_max)


@dataclass
class DeliveryReport:
    """What a run did: receivers attempted, and how each attempt ended."""

    attempted: int = 0
    sent: int = 0
    failed: int = 0
    error: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, status: str) -> int:
        with self._lock:
            self.attempted += 1
            setattr(self, status, getattr(self, status) + 1)
            return self.attempted

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.error == 0

    def as_dict(self) -> dict:
        return {"attempted": self.attempted, "sent": self.sent, "failed": self.failed,
                "error": self.error}  # fmt: skip


class Run:
    """One delivery run over receivers this run claims (or has claimed)."""

    def __init__(self, config: Config, report: DeliveryReport, progress: Progress | None = None):
        self.config = config
        self.owner = new_owner()
        self.policy = policy_of(config)
        self.progress = progress
        self.started = dt.datetime.now(dt.UTC)
        self.report = report
        self.total = 0
        self._source_lock = threading.Lock()
        self._renew_lock = threading.Lock()
        self._last_renew = time.monotonic()
        self._stop = threading.Event()

    def lease_until(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.config.claim_lease

    # -- sources ---------------------------------------------------------------------------

    def deliver_ids(self, ids: list[int]) -> DeliveryReport:
        """Deliver receivers this run has already claimed, in order."""
        self.total = len(ids)
        batches = iter([ids[i : i + ID_BATCH] for i in range(0, len(ids), ID_BATCH)])

        def next_batch() -> list[int]:
            with self._source_lock:
                return next(batches, [])

        return self._run(next_batch, workers=min(self.config.smtp.connections, len(ids)))

    def deliver_due(self) -> DeliveryReport:
        """resend-failed: claim due receivers in small batches until none is left. Only what
        was due when the run started is taken, so each receiver is tried once a run."""
        store.recover_expired(self.policy)
        self.started = dt.datetime.now(dt.UTC)  # after recovery: what it released is due
        self.total = store.count_due(self.policy, self.started)
        if not self.total:
            return self.report

        def next_batch() -> list[int]:
            return store.claim_due(
                self.owner, self.lease_until(), self.started, self.policy, DUE_BATCH
            )

        return self._run(next_batch, workers=self.config.smtp.connections)

    # -- workers ---------------------------------------------------------------------------

    def _run(self, next_batch: Callable[[], list[int]], workers: int) -> DeliveryReport:
        if workers <= 0:
            return self.report
        try:
            if workers == 1:
                self._worker(next_batch)
            else:
                errors: list[BaseException] = []
                threads = [
                    threading.Thread(target=self._thread, args=(next_batch, errors), daemon=True)
                    for _ in range(workers)
                ]
                for thread in threads:
                    thread.start()
                try:
                    for thread in threads:
                        while thread.is_alive():
                            thread.join(0.2)
                except BaseException:
                    self._stop.set()
                    for thread in threads:
                        thread.join()
                    raise
                if errors:
                    raise errors[0]
        finally:
            store.release_claims(self.owner)
        return self.report

    def _thread(self, next_batch, errors: list[BaseException]) -> None:
        try:
            self._worker(next_batch)
        except BaseException as exc:  # re-raised in the main thread
            self._stop.set()
            errors.append(exc)
        finally:
            store.database.close()  # this thread's own connection

    def _worker(self, next_batch: Callable[[], list[int]]) -> None:
        from devmsg.transport import SmtpTransport

        with SmtpTransport(self.config.smtp) as transport:
            while not self._stop.is_set():
                batch = next_batch()
                if not batch:
                    return
                self._deliver_batch(transport, store.outgoing(batch))

    def _deliver_batch(self, transport, rows: list[Outgoing]) -> None:
        from devmsg.transport import DeliveryFailure

        cfg = self.config
        sender = cfg.sender_address
        try:
            transport.ensure_connected()
        except DeliveryFailure as failure:
            # One failed connection stands for the batch: each receiver is recorded, none
            # is attempted on a server we cannot reach.
            for row in rows:
                self._record(row, failure, None)
            return
        store.start_attempt(rows[0].id)
        for index, row in enumerate(rows):
            if self._stop.is_set():
                # Marked as started with the last outcome, but never tried: unmark it, so
                # that _run releases it with the rest and no "interrupted" is recorded.
                store.start_attempt(row.id, started=False)
                return
            self.maybe_renew()
            start_next = rows[index + 1].id if index + 1 < len(rows) else None
            to = cfg.redirect_to or row.envelope or _envelope(row.address)
            try:
                transport.send(sender, to, row.mime)
            except DeliveryFailure as failure:
                self._record(row, failure, start_next)
                if failure.connect_failed:
                    for rest in rows[index + 1 :]:
                        self._record(rest, failure, None)
                    return
            else:
                self._count(store.record_success(row.id, to, start_next))

    def _record(self, row: Outgoing, failure, start_next: int | None) -> None:
        status = store.record_failure(
            row.id, row.failed_count, failure.error, failure.traceback, failure.permanent,
            self.policy, start_next,
        )  # fmt: skip
        self._count(status)

    def _count(self, status: str) -> None:
        done = self.report.count(status)
        if self.progress is not None:
            self.progress(done, max(self.total, done))

    def maybe_renew(self) -> None:
        interval = self.config.claim_lease.total_seconds() / 3
        if time.monotonic() - self._last_renew < interval:
            return
        with self._renew_lock:
            if time.monotonic() - self._last_renew >= interval:
                store.renew(self.owner, self.lease_until())
                self._last_renew = time.monotonic()


def _envelope(address: str) -> str:
    from devmsg.inputs import check_address

    return check_address(address).envelope
