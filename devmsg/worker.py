"""`devmsg worker`: a long-lived process that delivers each receiver as soon as it is due,
the third caller of the delivery path after `send` and `resend-failed`.

One `Run` serves for as long as the worker lives. Each of its SMTP connections has a
sender thread, which claims due receivers in small batches (the same claims as every other
run, so several workers, on one host or many, share the work and each receiver is sent
once) and, when none is due, waits, keeping its connection open up to `[smtp]
idle_timeout`. The main thread waits on the store (`devmsg.waking`): a commit elsewhere,
the next receiver's due time, the first lease of another owner to run out (its receivers
are recovered then), the end of a pause. It wakes the senders only when one of these
happened, never to poll.

A pause stops the senders within one batch; `resume` wakes them. Rate limits pace the
senders (a worker is still running when the permit frees, so it never defers). SIGTERM and
SIGINT are the polite stop of every run; SIGHUP reloads the config, and a bad new one is
logged and the old one kept. What happens is reported through `log(event, fields)`: the
CLI prints it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from devmsg import sdnotify, store
from devmsg.config import Config
from devmsg.delivery import DUE_BATCH, Batch, Run, new_owner
from devmsg.errors import DevmsgError, Interrupted
from devmsg.operating import store_errors
from devmsg.pool import ConnectionPool
from devmsg.report import DeliveryReport
from devmsg.stopping import _STOP
from devmsg.waking import COMMIT, TIMEOUT, Waker, open_waker

if TYPE_CHECKING:
    from devmsg.transport import SmtpTransport

Log = Callable[[str, dict], None]  # (event, fields)

LONGEST_SLEEP = 300.0  # seconds: even with nothing due, look again this often


class Worker:
    def __init__(
        self,
        config: Config,
        *,
        type: str | None = None,
        connections: int | None = None,
        log: Log | None = None,
        reload: Callable[[], Config] | None = None,
    ) -> None:
        self.connections = connections  # --connections, kept across reloads
        self.config = self._with_connections(config)
        self.type = type
        self.log = log or (lambda event, fields: None)
        self.loader = reload
        self.name = new_owner()
        self.report = DeliveryReport()  # over the worker's life
        self.waker: Waker | None = None
        self._run: Run | None = None
        self._reload = False
        self._next_config: Config | None = None
        self._cond = threading.Condition(threading.RLock())
        self._wakes = 0  # wake-ups given to the senders, not yet taken by one
        self._idle: set[int] = set()  # the senders waiting for work
        self._pause: dict | None = None
        self._down: str | None = None
        self._state = ""

    def _with_connections(self, config: Config) -> Config:
        if self.connections is None:
            return config
        smtp = dataclasses.replace(config.smtp, connections=self.connections)
        return dataclasses.replace(config, smtp=smtp)

    # -- from signal handlers ----------------------------------------------------------------

    @property
    def run_now(self) -> Run:
        """The run being served (set before any thread that asks for it starts)."""
        assert self._run is not None
        return self._run

    @property
    def waker_now(self) -> Waker:
        assert self.waker is not None
        return self.waker

    def request_reload(self) -> None:
        """SIGHUP: read the config again at the next wake (at once)."""
        self._reload = True
        self.poke()

    def poke(self) -> None:
        if self.waker is not None:
            self.waker.poke()

    # -- the worker's life -------------------------------------------------------------------

    @store_errors
    def run(self) -> DeliveryReport:
        """Deliver until stopped (a polite stop: `request_stop`); the totals. A store that
        goes away ends it with one StoreError (systemd's Restart= starts it again)."""
        self.waker = open_waker(self.config)  # listening before the first look
        pool = ConnectionPool(self.config.smtp, keep=True)
        try:
            store.register_worker(self.name, self.type)
            cfg = self.config
            self.log("started", {
                "worker": self.name, "connections": cfg.smtp.connections, "type": self.type,
                "store": cfg.database_url or str(cfg.database),
                "smtp": f"{cfg.smtp.host}:{cfg.smtp.port}",
            })  # fmt: skip
            sdnotify.notify("READY=1", "STATUS=started")
            while True:
                run = Run(self.config, self.report, pool=pool, defer=False, owner=self.name)
                run.on_heartbeat = self._heartbeat
                run.on_batch = self._batch
                self._run = run
                try:
                    run.serve(self._next_batch, self._main)
                except Interrupted:
                    break  # a signal: every run stopped politely, nothing is held
                if self._next_config is None:
                    break
                pool = self._reloaded(pool)
        finally:
            sdnotify.notify("STOPPING=1", "STATUS=stopping")
            pool.close_all()
            self.waker.close()
            try:
                store.forget_worker(self.name)
            finally:
                report = self.report
                self.log("stopped", {"sent": report.sent, "failed": report.failed,
                                     "error": report.error})  # fmt: skip
        return self.report

    def _reloaded(self, pool: ConnectionPool) -> ConnectionPool:
        old, new = self.config, self._next_config
        assert new is not None  # _try_reload read it
        self._next_config = None
        self.config = new
        if new.smtp != old.smtp:
            pool.close_all()
            pool = ConnectionPool(new.smtp, keep=True)
        self.log("reloaded", {"connections": new.smtp.connections,
                              "smtp": f"{new.smtp.host}:{new.smtp.port}"})  # fmt: skip
        return pool

    def _try_reload(self) -> bool:
        """Read the config again; whether the run should restart with it."""
        self._reload = False
        if self.loader is None:
            return False
        try:
            new = self._with_connections(self.loader())
        except DevmsgError as exc:
            self.log("reload failed", {"error": f"{exc}; kept the running config"})
            return False
        old = self.config
        if (new.database, new.database_url) != (old.database, old.database_url):
            self.log("reload failed", {"error": "the store changed: that needs a restart; "
                                                "kept the running config"})  # fmt: skip
            return False
        self._next_config = new
        return True

    # -- the main thread: when to wake the senders -------------------------------------------

    def _main(self) -> None:
        run, waker = self.run_now, self.waker_now
        watchdog = sdnotify.watchdog_interval()
        next_ping = time.monotonic()
        wake = True  # look at once: what was due before the worker started
        while True:
            if run.stopping():
                if _STOP.event.is_set():
                    self.log("stopping", {"reason": _STOP.reason})
                break
            if self._reload and self._try_reload():
                break
            if watchdog is not None and time.monotonic() >= next_ping:
                sdnotify.notify("WATCHDOG=1")
                next_ping = time.monotonic() + watchdog
            self._connection_state()
            timeout = self._look(wake)
            if watchdog is not None:
                timeout = min(timeout, max(next_ping - time.monotonic(), 0.0))
            why = waker.wait(timeout)
            wake = why in (COMMIT, TIMEOUT)
        with self._cond:
            self._cond.notify_all()  # so that they see the stop

    def _look(self, wake: bool) -> float:
        """Pause, recovery and due times; wake the senders if there may be work. How long
        the main thread may sleep."""
        run = self.run_now
        if wake:
            self._wake()  # first: it looks at the pause itself
        if not self._all_idle():
            return LONGEST_SLEEP  # busy senders claim again; the batch's end pokes this thread
        pause = store.paused()
        if (pause is None) != (self._pause is None):
            if pause is not None:
                self.log("paused", {"by": pause["paused_by"], "reason": pause["reason"]})
                self._status("paused")
            else:
                self.log("resumed", {})
        self._pause = pause
        if pause is not None:
            if pause["until"] is None:
                return LONGEST_SLEEP
            return _seconds_until(pause["until"], store.lease_now())
        timeouts = [LONGEST_SLEEP]
        lease_end = store.next_lease_end(self.name)
        if lease_end is not None:
            now = store.lease_now()
            if lease_end < now:
                if store.recover_expired(run.policy):
                    self._wake(self.config.smtp.connections)
                    return LONGEST_SLEEP
            else:
                timeouts.append(_seconds_until(lease_end, now))
        now = dt.datetime.now(dt.UTC)
        due_at = store.next_due_at(run.policy, now, self.type)
        if due_at is not None:
            timeouts.append(_seconds_until(due_at, now))
        left = run.pool.close_idle(self.config.smtp.idle_timeout)
        if left is not None:
            timeouts.append(left)
        if self._state != "idle":
            self.log("idle", {"next_due_at": due_at})
            self._status("idle")
        return min(timeouts)

    def _connection_state(self) -> None:
        failing = self.run_now.pool.failing
        text = None if failing is None else failing.error
        if text != self._down:
            if text is not None:
                self.log("connection failed", {"error": text})
            else:
                self.log("connection restored", {})
            self._down = text

    def _status(self, state: str, extra: str = "") -> None:
        self._state = state
        if not sdnotify.enabled():
            return
        if state == "idle":
            due = store.count_due(self.run_now.policy, dt.datetime.now(dt.UTC), self.type)
            extra = f", {due} due"
        sdnotify.notify(f"STATUS={state}{extra}")

    def _all_idle(self) -> bool:
        """Every sender waits for work, and no wake-up is on its way to one."""
        with self._cond:
            return len(self._idle) == self.config.smtp.connections and not self._wakes

    def _wake(self, senders: int = 1) -> None:
        """Wake one sender (it wakes another when it finds a full batch): one claim per
        commit, not one per connection racing for the same receiver."""
        with self._cond:
            self._wakes = min(self._wakes + senders, self.config.smtp.connections)
            self._cond.notify(senders)

    # -- sender threads ----------------------------------------------------------------------

    def _next_batch(self, transport: SmtpTransport) -> list[int]:
        """A sender's next batch: claim what is due, else wait for a wake, closing the
        connection when it has been idle for `idle_timeout`. [] only when stopping."""
        run, idle_timeout = self.run_now, self.config.smtp.idle_timeout
        while not run.stopping():
            shared = run.pool.returned()
            if shared:
                return shared
            if self._relay_refusing(run):
                continue
            if store.paused() is None:
                now = dt.datetime.now(dt.UTC)
                ids = store.claim_due(
                    run.owner, run.lease_until(), now, run.policy, DUE_BATCH, self.type,
                    start_first=True,
                )  # fmt: skip
                if ids:
                    run.pre_started.add(ids[0])
                    # One connection attempt per batch: the relay may be back.
                    run.pool.down = None
                    ids = self._share(ids)
                    if self._state != "sending":
                        self._status("sending", f", {len(ids)} claimed")
                    return ids
            with self._cond:
                self._idle.add(threading.get_ident())
                if self._all_idle():
                    self.poke()  # all idle: the main thread sets its timers
                try:
                    while not self._wakes and not run.stopping():
                        timeout = None
                        if transport.connected:
                            timeout = transport.last_used + idle_timeout - time.monotonic()
                            if timeout <= 0:
                                transport.close()  # QUIT: idle too long
                                continue
                        self._cond.wait(timeout)
                finally:
                    self._idle.discard(threading.get_ident())
                    if self._wakes:
                        self._wakes -= 1
        return []

    def _relay_refusing(self, run: Run) -> bool:
        """After the relay said no for everyone (a 4xx at MAIL FROM, or 421), take nothing
        for the backoff: wait it out (or a stop). Whether it waited."""
        refused = run.relay_refused_at
        if refused is None:
            return False
        left = refused + self.config.retry_backoff.total_seconds() - time.monotonic()
        if left <= 0:
            run.relay_refused_at = None
            return False
        with self._cond:
            self._cond.wait_for(run.stopping, timeout=left)
        return True

    def _share(self, ids: list[int]) -> list[int]:
        """A full batch means a backlog: it stays whole, and another sender is woken to claim
        its own. A smaller one is all that is due: it is spread over the connections (out
        in parallel, with no extra query), its other parts left where the next sender to
        look takes them, an idle one woken now or a busy one after its batch. The part this
        sender keeps."""
        if len(ids) == DUE_BATCH:
            self._wake()
            return ids
        helpers = min(self.config.smtp.connections - 1, len(ids) - 1)
        if helpers <= 0:
            return ids
        size = -(-len(ids) // (helpers + 1))
        parts = [ids[i : i + size] for i in range(0, len(ids), size)]
        for part in parts[1:]:
            self.run_now.pool.share(part)
        self._wake(len(parts) - 1)
        return parts[0]

    def _batch(self, claimed: int, tally: dict[str, int], outcome: Batch) -> None:
        self.log(
            "batch", {"claimed": claimed, **tally, "handed_back": outcome is Batch.HANDED_BACK}
        )
        self.poke()  # a failure may be due again before the main thread's timer

    def _heartbeat(self) -> None:
        report = self.report
        store.worker_seen(self.name, report.sent, report.failed + report.error)


def _seconds_until(when: dt.datetime, now: dt.datetime) -> float:
    return min(max((when - now).total_seconds() + 0.001, 0.0), LONGEST_SLEEP)
