"""The SMTP connections of a delivery run: it hands out connections and takes them back,
and knows which of them work, so that a server refusing one more connection fails nothing.

A server may refuse connections beyond what it allows (421 at the greeting, a refused
connect). While another connection of the run works, such a refusal fails nothing: the
worker hands its batch back and ends, and the run goes on with the connections it has
(Postfix's concurrency feedback). Only when no connection can be had are the batch's
receivers failed. The hand-back and a worker's last look for work happen under one lock,
so no batch handed back is ever left behind.

A one-shot run (send, resend, resend-failed) closes each connection when its worker ends.
`devmsg worker` keeps them (`keep`): a connection given back stays open, and the next worker
that asks takes it, until it has been idle for `[smtp] idle_timeout`."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from devmsg.config import SmtpConfig
from devmsg.stopping import _STOP

if TYPE_CHECKING:
    from devmsg.transport import DeliveryFailure, SmtpTransport


class ConnectionPool:
    def __init__(self, smtp: SmtpConfig, keep: bool = False) -> None:
        self.smtp = smtp
        self.keep = keep
        self.down: DeliveryFailure | None = None  # showed that no connection can be had
        self.failing: DeliveryFailure | None = (
            None  # the last connection attempt's failure, until one succeeds
        )
        self._lock = threading.Condition()
        self._connecting = 0  # workers opening a connection right now
        self._live: set = set()  # taken transports with a working connection
        self._idle: list = []  # kept open, not taken: (transport, since)
        self._returned: list[list[int]] = []  # batches handed back by refused connections

    # -- handing out -----------------------------------------------------------------------

    def take(self) -> SmtpTransport:
        """A transport for one worker: an open one kept from before, else a new one."""
        from devmsg.transport import SmtpTransport

        with self._lock:
            transport = self._idle.pop()[0] if self._idle else SmtpTransport(self.smtp)
            if transport.connected:
                self._live.add(transport)
        _STOP.track(transport, True)
        return transport

    def give_back(self, transport: SmtpTransport) -> None:
        _STOP.track(transport, False)
        with self._lock:
            self._live.discard(transport)
            self._lock.notify_all()
            if self.keep and transport.connected and not transport.aborted:
                self._idle.append((transport, time.monotonic()))
                return
        transport.close()

    def close_idle(self, idle_timeout: float) -> float | None:
        """QUIT the kept connections idle for `idle_timeout` seconds; in how many seconds
        the next one is due to close (None: none kept)."""
        now, closing, left = time.monotonic(), [], None
        with self._lock:
            for item in list(self._idle):
                transport, since = item
                if now - since >= idle_timeout:
                    self._idle.remove(item)
                    closing.append(transport)
                else:
                    wait = idle_timeout - (now - since)
                    left = wait if left is None else min(left, wait)
        for transport in closing:
            transport.close()
        return left

    def close_all(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for transport, _since in idle:
            transport.close()

    # -- connections that adapt ------------------------------------------------------------

    def share(self, ids: list[int]) -> None:
        """Put part of a claimed batch where the run's next idle worker takes it."""
        with self._lock:
            self._returned.append(ids)

    def returned(self) -> list[int]:
        """A batch another worker handed back (or shared), or []."""
        with self._lock:
            return self._returned.pop() if self._returned else []

    def unreachable(self, transport: SmtpTransport) -> DeliveryFailure | None:
        """The failure that showed the server unreachable, while no connection works."""
        with self._lock:
            if self.down is not None and not transport.connected and not self._live:
                return self.down
        return None

    def connect(self, transport: SmtpTransport) -> DeliveryFailure | None:
        """Open this worker's connection if it has none; the DeliveryFailure, or None."""
        from devmsg.transport import DeliveryFailure

        if transport.connected:
            return None
        with self._lock:
            self._connecting += 1
        failure = None
        try:
            transport.ensure_connected()
        except DeliveryFailure as exc:
            failure = exc
        finally:
            with self._lock:
                self._connecting -= 1
                if failure is None:
                    self._live.add(transport)
                    self.down = self.failing = None
                else:
                    self.failing = failure
                self._lock.notify_all()
        return failure

    def hand_back(self, transport: SmtpTransport, ids: list[int]) -> bool:
        """Give the batch to the run's other connections, if one works (waiting for those
        still connecting to know)."""
        with self._lock:
            self._live.discard(transport)
            while not self._live and self._connecting:
                self._lock.wait()
            if not self._live:
                return False
            self._returned.append(ids)
            return True
