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
import enum
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from devmsg import store
from devmsg.config import Config
from devmsg.errors import Interrupted
from devmsg.pool import ConnectionPool
from devmsg.recorder import Progress, Recorder
from devmsg.report import DeliveryReport
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

if TYPE_CHECKING:
    from devmsg.transport import DeliveryFailure, SmtpTransport

__all__ = ["Batch", "DeliveryReport", "Progress", "Run", "new_owner", "policy_of"]

DUE_BATCH = 25  # resend-failed claims this many at a time, so concurrent runs share the work
ID_BATCH = 50

NextBatch = Callable[["SmtpTransport"], list[int]]  # (this worker's transport) -> receiver ids


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def policy_of(config: Config) -> Policy:
    return Policy(
        config.resend_limit, config.retry_backoff, config.retry_backoff_max, config.max_age
    )


class Batch(enum.Enum):
    """How a worker's batch ended."""

    DONE = "done"  # each receiver dealt with, or left for the run to release (a stop)
    HANDED_BACK = "handed back"  # this connection was refused; the run's others took it


class Run:
    """One delivery run over receivers this run claims (or has claimed). Its parts: the
    source of batches (`deliver_ids`, `deliver_due`, or `serve` for `devmsg worker`), the
    connection pool, the rate limiter's pacing, and the recorder of outcomes."""

    def __init__(
        self,
        config: Config,
        report: DeliveryReport,
        progress: Progress | None = None,
        recheck: bool = True,
        honour_pause: bool = True,
        pool: ConnectionPool | None = None,
        defer: bool = True,
        owner: str | None = None,
    ):
        self.config = config
        self.honour_pause = honour_pause  # False: a resend --force
        # send and resend-failed deliver only what is still not_sent or failed when each
        # attempt starts; a resend by hand sends whatever the status (a person decided).
        self.recheck = recheck
        self.owner = owner or new_owner()
        self.policy = policy_of(config)
        self.started = dt.datetime.now(dt.UTC)
        self.report = report
        self.recorder = Recorder(config, self.policy, report, progress, recheck)
        self.pool = pool or ConnectionPool(config.smtp)
        self._source_lock = threading.Lock()
        self._renew_lock = threading.Lock()
        self._last_renew = time.monotonic()
        self._stop = threading.Event()
        self.persistent = False  # devmsg worker: a refused connection's worker tries later
        self.check_suppressed = False  # resend-failed: a listed address is not tried
        self.on_heartbeat: Callable[[], None] | None = None  # also at each lease renewal
        # after each batch: (receivers claimed, outcomes: status -> count, how it ended)
        self.on_batch: Callable[[int, dict[str, int], Batch], None] | None = None
        self.heartbeat_error: Exception | None = None
        # claimed with their attempt already marked as started (claim_due's start_first)
        self.pre_started: set[int] = set()
        self.relay_refused_at: float | None = None  # monotonic: a 4xx at MAIL FROM, or 421
        self._verp_key: bytes | None = None
        self.limiter = None
        if config.rate_limits:
            from devmsg.limits import Limiter

            hold = config.claim_lease.total_seconds()
            # A worker is still running when a permit frees: it paces, never defers.
            self.limiter = Limiter(config.rate_limits, self.owner, hold, defer=defer)

    @property
    def total(self) -> int:
        return self.recorder.total

    @total.setter
    def total(self, value: int) -> None:
        self.recorder.total = value

    def lease_until(self) -> dt.datetime:
        return store.lease_now() + self.config.claim_lease

    def stop(self) -> None:
        """Stop this run only (not the process): no worker takes another receiver."""
        self._stop.set()

    def stopping(self) -> bool:
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

        def next_batch(_transport: SmtpTransport) -> list[int]:
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

        def next_batch(_transport: SmtpTransport) -> list[int]:
            if self._paused():
                return []
            return store.claim_due(self.owner, self.lease_until(), self.started, self.policy, size)

        return self._run(next_batch, workers=self.config.smtp.connections)

    def serve(self, next_batch: NextBatch, main: Callable[[], None]) -> DeliveryReport:
        """devmsg worker: a worker per connection takes batches from `next_batch` (which
        waits for work, and gives [] only when the run stops) while `main` runs in this
        thread, until it returns."""
        self.check_suppressed = True
        self.persistent = True
        return self._run(next_batch, self.config.smtp.connections, main)

    # -- workers ---------------------------------------------------------------------------

    def _run(
        self, next_batch: NextBatch, workers: int, main: Callable[[], None] | None = None
    ) -> DeliveryReport:
        if workers <= 0:
            return self.report
        done = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(done,), daemon=True)
        heartbeat.start()
        try:
            if workers == 1 and main is None:
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
                    if main is not None:
                        main()
                        self._stop.set()
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
        if self.heartbeat_error is not None:
            from devmsg.db import store_error

            cfg, why = self.config, "renewing this run's claims failed, so it stopped: "
            raise store_error(cfg.store_name, cfg.busy_timeout, self.heartbeat_error, why)
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
        taking receivers (its leases would run out under it), and says why."""
        interval = self.config.claim_lease.total_seconds() / 3
        try:
            while not done.wait(interval):
                store.renew(self.owner, self.lease_until())
                if self.limiter is not None:
                    self.limiter.renew()
                if self.on_heartbeat is not None:
                    self.on_heartbeat()
        except Exception as exc:
            self.heartbeat_error = exc
            self._stop.set()
        finally:
            store.database.close()  # this thread's own connection

    def _thread(self, next_batch: NextBatch, errors: list[BaseException]) -> None:
        try:
            self._worker(next_batch)
        except BaseException as exc:  # re-raised in the main thread
            self._stop.set()
            errors.append(exc)
        finally:
            store.database.close()  # this thread's own connection

    def _worker(self, next_batch: NextBatch) -> None:
        transport = self.pool.take()
        try:
            while not self.stopping():
                batch = self._next(next_batch, transport)
                if not batch:
                    return
                tally = self.recorder.begin_batch()
                outcome = self._deliver_batch(transport, store.outgoing(batch))
                if self.on_batch is not None:
                    self.on_batch(len(batch), tally, outcome)
                if outcome is Batch.HANDED_BACK:
                    if not self.persistent:
                        return  # the others go on
                    # devmsg worker: the server allows fewer connections for now; try again
                    # after a while (the others take the work meanwhile).
                    self._stop.wait(min(self.config.smtp.idle_timeout, 30.0))
        finally:
            self.pool.give_back(transport)

    def _next(self, next_batch: NextBatch, transport: SmtpTransport) -> list[int]:
        return self.pool.returned() or next_batch(transport) or self.pool.returned()

    def _deliver_batch(self, transport: SmtpTransport, rows: list[Outgoing]) -> Batch:
        """Deliver a batch over this worker's connection."""
        first = rows[0].id if rows else None
        pre = first in self.pre_started
        self.pre_started.discard(first)
        if self.stopping() or not rows:
            # stopping: _run releases the batch; no rows: deleted under this run (a purge)
            if pre and rows:
                store.start_attempt(first, started=False)
            return Batch.DONE
        if self.check_suppressed:
            gone = store.suppress_claimed(self.owner, rows, self.config.minute)
            if gone:  # their attempts unmarked, and their claims given up
                rows = [row for row in rows if row.id not in gone]
                self.recorder.skipped("suppressed", len(gone))
                pre = pre and first not in gone
        if not rows:
            return Batch.DONE
        pool = self.pool
        failure = pool.unreachable(transport) or pool.connect(transport)
        if failure is not None:
            if pre:  # not attempted here after all
                store.start_attempt(first, started=False)
            if pool.hand_back(transport, [row.id for row in rows]):
                return Batch.HANDED_BACK
            # No connection can be had: that failure stands for the rest of the run (each
            # receiver is recorded, none is attempted on a server we cannot reach), not a
            # connection attempt per batch against a server that is down.
            pool.down = failure
            for row in rows:
                self.recorder.failure(row, failure, None)
            return Batch.DONE
        if self.limiter is None:
            return self._exchange(transport, rows, [], first_started=pre)
        if pre:  # paced: the limiter decides which goes first
            store.start_attempt(first, started=False)
        return self._paced(transport, rows)

    def _paced(self, transport: SmtpTransport, rows: list[Outgoing]) -> Batch:
        """Deliver a batch under the rate limits: those the limits let through now go, the
        others wait for a permit (paced) or are deferred (left due when it frees)."""
        limiter, pending = self.limiter, rows
        assert limiter is not None  # _deliver_batch paces only with limits
        while pending:
            holder = limiter.holder()
            admission = limiter.admit([self._to(row) for row in pending], holder)
            if admission.defer:
                store.defer(self.owner, {pending[i].id: t for i, t in admission.defer.items()})
                self.recorder.skipped("deferred", len(admission.defer))
            going = [pending[i] for i in admission.go]
            pending = [pending[i] for i in admission.wait]
            if going:
                try:
                    if self._exchange(transport, going, pending) is Batch.HANDED_BACK:
                        return Batch.HANDED_BACK
                finally:
                    if admission.permits:
                        limiter.done(holder)
            if pending and not self._sleep(admission.pause):
                return Batch.DONE  # stopping: _run releases what was not started
        return Batch.DONE

    def _sleep(self, seconds: float) -> bool:
        """Wait for a permit; False if the run is stopping meanwhile."""
        deadline = time.monotonic() + seconds
        while not self.stopping():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            _STOP.event.wait(min(left, 0.25))
        return False

    def _sender(self, row: Outgoing) -> str:
        """MAIL FROM: the config's sender, or with `[bounces] return_path` (VERP) an address
        that names this receiver, signed with the store's key (read once a run); a
        message's own envelope sender (sendmail -f, when allowed) wins."""
        if row.envelope_from is not None:
            return row.envelope_from
        template = self.config.bounces.return_path
        if not template:
            return self.config.sender_address
        if self._verp_key is None:
            self._verp_key = store.bounces.secret()
        from devmsg.verp import return_path

        return return_path(template, self._verp_key, row.id)

    def _to(self, row: Outgoing) -> str:
        return self.config.redirect_to or row.envelope or _envelope(row.address)

    def _exchange(
        self,
        transport: SmtpTransport,
        rows: list[Outgoing],
        later: list[Outgoing],
        first_started: bool = False,
    ) -> Batch:
        """Try each receiver over this connection, one commit each."""
        from devmsg.transport import DeliveryFailure

        listed = {} if self.recheck else store.suppressed(row.address for row in rows)
        recheck, record = self.recheck, self.recorder
        started = first_started or store.start_attempt(rows[0].id, recheck=recheck)
        for index, row in enumerate(rows):
            if self.stopping():
                # Marked as started with the last outcome, but never tried: unmark it, so
                # that _run releases it with the rest and no "interrupted" is recorded.
                if started:
                    store.start_attempt(row.id, started=False)
                return Batch.DONE
            start_next = rows[index + 1].id if index + 1 < len(rows) else None
            if not started:  # held or cancelled since it was claimed: not attempted
                started = store.skip(row.id, start_next, recheck)
                continue
            to = self._to(row)
            try:
                transport.send(self._sender(row), to, row.mime)
            except DeliveryFailure as failure:
                if failure.connect_failed:  # a reconnect was refused: nothing was tried
                    store.start_attempt(row.id, started=False)
                    if self.pool.hand_back(transport, [r.id for r in rows[index:] + later]):
                        return Batch.HANDED_BACK
                if transport.aborted:  # a stop abandoned it: it may have been delivered
                    failure = _abandoned(failure)
                if failure.relay_refused and not failure.interrupted:
                    # The relay said no for everyone: this run takes no more receivers for
                    # it; what it holds goes back due after the backoff, with one failure
                    # each that does not count.
                    self.relay_refused_at = time.monotonic()
                    if not self.persistent:
                        self._stop.set()
                    for rest in rows[index:] + later:
                        record.failure(rest, failure, None)
                    return Batch.DONE
                started = record.failure(row, failure, start_next)
                if failure.connect_failed:
                    for rest in rows[index + 1 :]:
                        record.failure(rest, failure, None)
                    return Batch.DONE
            else:
                started = record.success(row, to, start_next, listed)
        return Batch.DONE

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


def _abandoned(failure: DeliveryFailure) -> DeliveryFailure:
    from dataclasses import replace

    error = (
        f"interrupted attempt: stopped by {_STOP.reason}, the SMTP exchange was abandoned "
        f"after {STOP_GRACE:g}s; it may have been delivered ({failure.error})"
    )
    return replace(failure, error=error, permanent=False, interrupted=True, counts=False)


def _envelope(address: str) -> str:
    from devmsg.addresses import check_address

    return check_address(address, allow_local=True).envelope  # checked when stored
