"""The one delivery path: claim -> deliver -> record, for send, resend and resend-failed.

A run has an owner id (host:pid:random). Its receivers are claimed in the store with a
lease, which the run renews while it works. Each worker has its own SMTP connection and
takes small batches: it marks a receiver's attempt as started, talks SMTP (no transaction
open), then commits the outcome, and in that same commit marks the next receiver as
started. So after a crash at most one receiver per connection is "in flight"; recovery
records it as an interrupted attempt and retries it, and every other claimed receiver is
simply released.

A polite stop (the CLI turns SIGTERM and SIGINT into `request_stop`) ends every run in the
process cleanly: no worker takes another receiver, the exchange in flight may finish (after
STOP_GRACE seconds it is abandoned, and recorded as interrupted), each outcome is recorded,
every claim is released, and the run raises `Interrupted`.
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
from devmsg.errors import Interrupted
from devmsg.stopping import (  # noqa: F401  (the stop is part of this module's interface)
    _STOP,
    STOP_GRACE,
    check_stop,
    clear_stop,
    request_stop,
    stop_requested,
)
from devmsg.store import Outgoing, Policy
from devmsg.words import plural

Progress = Callable[[int, int], None]  # (done, total)

DUE_BATCH = 25  # resend-failed claims this many at a time, so concurrent runs share the work
ID_BATCH = 50


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def policy_of(config: Config) -> Policy:
    return Policy(
        config.resend_limit, config.retry_backoff, config.retry_backoff_max, config.max_age
    )


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


class Run:
    """One delivery run over receivers this run claims (or has claimed)."""

    def __init__(
        self,
        config: Config,
        report: DeliveryReport,
        progress: Progress | None = None,
        recheck: bool = True,
        honour_pause: bool = True,
    ):
        self.config = config
        self.honour_pause = honour_pause  # False: a resend --force
        # send and resend-failed deliver only what is still not_sent or failed when each
        # attempt starts; a resend by hand sends whatever the status (a person decided).
        self.recheck = recheck
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
        self._pool_lock = threading.Condition()
        self._connecting = 0  # workers opening a connection right now
        self._down = None  # the failure that showed no connection can be had
        self._live: set = set()  # transports of this run with a working connection
        self._returned: list[list[int]] = []  # batches handed back by refused connections
        self.check_suppressed = False  # resend-failed: a listed address is not tried
        self.limiter = None
        if config.rate_limits:
            from devmsg.limits import Limiter

            hold = config.claim_lease.total_seconds()
            self.limiter = Limiter(config.rate_limits, self.owner, hold)

    def lease_until(self) -> dt.datetime:
        return store.lease_now() + self.config.claim_lease

    def _stopping(self) -> bool:
        return self._stop.is_set() or _STOP.event.is_set()

    def _paused(self) -> bool:
        """Checked before each batch: a pause stops a running sender within one batch."""
        if not self.honour_pause:
            return False
        if self.report.pause is None:
            self.report.pause = store.paused()
        return self.report.pause is not None

    # -- sources ---------------------------------------------------------------------------

    def deliver_ids(self, ids: list[int]) -> DeliveryReport:
        """Deliver receivers this run has already claimed, in order."""
        self.total = len(ids)
        workers = min(self.config.smtp.connections, len(ids))
        size = _batch_size(len(ids), workers, ID_BATCH)
        batches = iter([ids[i : i + size] for i in range(0, len(ids), size)])

        def next_batch() -> list[int]:
            if self._paused():
                return []
            with self._source_lock:
                return next(batches, [])

        return self._run(next_batch, workers=workers)

    def deliver_due(self) -> DeliveryReport:
        """resend-failed: claim due receivers in small batches until none is left. Only what
        was due when the run started is taken, so each receiver is tried once a run."""
        store.recover_expired(self.policy)
        self.check_suppressed = True
        self.started = dt.datetime.now(dt.UTC)  # after recovery: what it released is due
        self.total = store.count_due(self.policy, self.started)
        if not self.total:
            return self.report

        size = _batch_size(self.total, self.config.smtp.connections, DUE_BATCH)

        def next_batch() -> list[int]:
            if self._paused():
                return []
            return store.claim_due(self.owner, self.lease_until(), self.started, self.policy, size)

        return self._run(next_batch, workers=self.config.smtp.connections)

    # -- workers ---------------------------------------------------------------------------

    def _run(self, next_batch: Callable[[], list[int]], workers: int) -> DeliveryReport:
        if workers <= 0:
            return self.report
        done = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(done,), daemon=True)
        heartbeat.start()
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
            done.set()
            heartbeat.join()
            store.release_claims(self.owner)
        if _STOP.event.is_set():
            report = self.report
            left = max(self.total - report.attempted - report.deferred - report.suppressed, 0)
            raise Interrupted(
                f"stopped by {_STOP.reason}: attempted {report.attempted} (sent {report.sent}, "
                f"failed {report.failed}, error {report.error}); {plural(left, 'receiver')} not "
                "attempted, left as they were, none held",
                _STOP.exit_code,
            )
        return self.report

    def _heartbeat(self, done: threading.Event) -> None:
        """Renew this run's leases every third of a lease while it lives, even while every
        worker waits on a slow server: a lease then means "the owner is alive", and only a
        dead owner's claims ever run out. If the store cannot be reached, the run stops
        taking receivers (its leases would run out under it)."""
        interval = self.config.claim_lease.total_seconds() / 3
        try:
            while not done.wait(interval):
                store.renew(self.owner, self.lease_until())
                if self.limiter is not None:
                    self.limiter.renew()
        except Exception:
            self._stop.set()
        finally:
            store.database.close()  # this thread's own connection

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
            _STOP.track(transport, True)
            try:
                while not self._stopping():
                    batch = self._next(next_batch)
                    if not batch:
                        return
                    if not self._deliver_batch(transport, store.outgoing(batch)):
                        return  # the server refused this connection; the others go on
            finally:
                _STOP.track(transport, False)
                self._disconnected(transport)

    # -- connections that adapt ------------------------------------------------------------
    # A server may refuse connections beyond what it allows (421 at the greeting, a refused
    # connect). While another connection of this run works, such a refusal fails nothing:
    # the worker hands its batch back and ends, and the run goes on with the connections it
    # has (Postfix's concurrency feedback). Only when no connection can be had are the
    # batch's receivers failed. The hand-back and a worker's last look for work happen under
    # one lock, so no batch handed back is ever left behind.

    def _next(self, next_batch: Callable[[], list[int]]) -> list[int]:
        with self._pool_lock:
            if self._returned:
                return self._returned.pop()
        batch = next_batch()
        if batch:
            return batch
        with self._pool_lock:
            return self._returned.pop() if self._returned else []

    def _unreachable(self, transport):
        """The failure that showed the server unreachable, while no connection works."""
        with self._pool_lock:
            if self._down is not None and not transport.connected and not self._live:
                return self._down
        return None

    def _connect(self, transport):
        """Open this worker's connection if it has none; the DeliveryFailure, or None."""
        from devmsg.transport import DeliveryFailure

        if transport.connected:
            return None
        with self._pool_lock:
            self._connecting += 1
        failure = None
        try:
            transport.ensure_connected()
        except DeliveryFailure as exc:
            failure = exc
        finally:
            with self._pool_lock:
                self._connecting -= 1
                if failure is None:
                    self._live.add(transport)
                self._pool_lock.notify_all()
        return failure

    def _disconnected(self, transport) -> None:
        with self._pool_lock:
            self._live.discard(transport)
            self._pool_lock.notify_all()

    def _hand_back(self, transport, ids: list[int]) -> bool:
        """Give the batch to the run's other connections, if one works (waiting for those
        still connecting to know)."""
        with self._pool_lock:
            self._live.discard(transport)
            while not self._live and self._connecting:
                self._pool_lock.wait()
            if not self._live:
                return False
            self._returned.append(ids)
            return True

    def _deliver_batch(self, transport, rows: list[Outgoing]) -> bool:
        """Deliver a batch over this worker's connection. False: the server refused the
        connection and the batch went back to the run's other connections."""
        if self._stopping():
            return True  # _run releases the batch
        if not rows:
            return True  # deleted under this run (a purge, by hand): nothing to deliver
        if self.check_suppressed:
            gone = store.suppress_claimed(self.owner, rows, self.config.minute)
            if gone:
                rows = [row for row in rows if row.id not in gone]
                self._skipped("suppressed", len(gone))
        if not rows:
            return True
        failure = self._unreachable(transport) or self._connect(transport)
        if failure is not None:
            if self._hand_back(transport, [row.id for row in rows]):
                return False
            # No connection can be had: that failure stands for the rest of the run (each
            # receiver is recorded, none is attempted on a server we cannot reach), not a
            # connection attempt per batch against a server that is down.
            self._down = failure
            for row in rows:
                self._record(row, failure, None)
            return True
        if self.limiter is None:
            return self._exchange(transport, rows, [])
        return self._paced(transport, rows)

    def _paced(self, transport, rows: list[Outgoing]) -> bool:
        """Deliver a batch under the rate limits: those the limits let through now go, the
        others wait for a permit (paced) or are deferred (left due when it frees)."""
        limiter, pending = self.limiter, rows
        while pending:
            holder = limiter.holder()
            admission = limiter.admit([self._to(row) for row in pending], holder)
            if admission.defer:
                store.defer(self.owner, {pending[i].id: t for i, t in admission.defer.items()})
                self._skipped("deferred", len(admission.defer))
            going = [pending[i] for i in admission.go]
            pending = [pending[i] for i in admission.wait]
            if going:
                try:
                    if not self._exchange(transport, going, pending):
                        return False
                finally:
                    if admission.permits:
                        limiter.done(holder)
            if pending and not self._sleep(admission.pause):
                return True  # stopping: _run releases what was not started
        return True

    def _sleep(self, seconds: float) -> bool:
        """Wait for a permit; False if the run is stopping meanwhile."""
        deadline = time.monotonic() + seconds
        while not self._stopping():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            _STOP.event.wait(min(left, 0.25))
        return False

    def _to(self, row: Outgoing) -> str:
        return self.config.redirect_to or row.envelope or _envelope(row.address)

    def _exchange(self, transport, rows: list[Outgoing], later: list[Outgoing]) -> bool:
        """Try each receiver over this connection, one commit each. False: a reconnect was
        refused, and these with `later` went back to the run's other connections."""
        from devmsg.addresses import mailbox_key
        from devmsg.transport import DeliveryFailure

        sender = self.config.sender_address
        listed = {} if self.recheck else store.suppressed(row.address for row in rows)
        recheck = self.recheck
        started = store.start_attempt(rows[0].id, recheck=recheck)
        for index, row in enumerate(rows):
            if self._stopping():
                # Marked as started with the last outcome, but never tried: unmark it, so
                # that _run releases it with the rest and no "interrupted" is recorded.
                if started:
                    store.start_attempt(row.id, started=False)
                return True
            start_next = rows[index + 1].id if index + 1 < len(rows) else None
            if not started:  # held or cancelled since it was claimed: not attempted
                started = store.skip(row.id, start_next, recheck)
                continue
            to = self._to(row)
            try:
                transport.send(sender, to, row.mime)
            except DeliveryFailure as failure:
                if failure.connect_failed:  # a reconnect was refused: nothing was tried
                    store.start_attempt(row.id, started=False)
                    if self._hand_back(transport, [r.id for r in rows[index:] + later]):
                        return False
                if transport.aborted:  # a stop abandoned it: it may have been delivered
                    failure = _abandoned(failure)
                started = self._record(row, failure, start_next)
                if failure.connect_failed:
                    for rest in rows[index + 1 :]:
                        self._record(rest, failure, None)
                    return True
            else:
                status, started = store.record_success(row.id, to, start_next, recheck)
                self._count(status)
                if listed and mailbox_key(row.address) in listed:
                    store.unsuppress(row.address)  # a person's resend reached it: not dead
        return True

    def _record(self, row: Outgoing, failure, start_next: int | None) -> bool:
        """Record a failure; whether `start_next` was started in the same commit."""
        status, started = store.record_failure(
            row.id, row.failed_count, failure.error, failure.traceback, failure.permanent,
            self.policy, start_next, backoff=not failure.interrupted, recheck=self.recheck,
        )  # fmt: skip
        self._count(status, failure.error)
        cfg = self.config
        if cfg.suppress and not cfg.redirect_to and status != store.VANISHED:
            from devmsg.transport import mailbox_is_gone

            if mailbox_is_gone(failure):
                _stage, code, reply = failure.refusal
                store.add_suppression(
                    row.address, failure.error, "devmsg (refused at RCPT)", code, reply, row.id
                )
        return started

    def _count(self, status: str, reason: str | None = None) -> None:
        if status == store.VANISHED:
            return
        self._progress(self.report.count(status, reason))

    def _skipped(self, reason: str, count: int) -> None:
        self._progress(self.report.skipped(reason, count))

    def _progress(self, done: int) -> None:
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


def _batch_size(total: int, workers: int, largest: int) -> int:
    """Small enough that every connection has work and the last batches end together (a
    relay a round trip away takes 40 ms a message: 25 left on one connection idle the
    others for a second), large enough to keep claims cheap."""
    return max(1, min(largest, total // (max(workers, 1) * 8)))


def _abandoned(failure):
    from dataclasses import replace

    error = (
        f"interrupted attempt: stopped by {_STOP.reason}, the SMTP exchange was abandoned "
        f"after {STOP_GRACE:g}s; it may have been delivered ({failure.error})"
    )
    return replace(failure, error=error, permanent=False, interrupted=True)


def _envelope(address: str) -> str:
    from devmsg.addresses import check_address

    return check_address(address, allow_local=True).envelope  # checked when stored
