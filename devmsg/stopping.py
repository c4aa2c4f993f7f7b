"""A polite stop, process-wide: the CLI turns SIGTERM and SIGINT into `request_stop`, and
every delivery run in the process stops taking receivers (see `devmsg.delivery`)."""

from __future__ import annotations

import threading
from typing import Any

from devmsg.errors import Interrupted

STOP_GRACE = 5.0  # seconds an SMTP exchange in flight may take to finish after a stop


class _StopRequest:
    """A process-wide request to stop delivering (from a signal handler: it only sets an
    event and starts a timer). After `grace` seconds the connections still talking are shut
    down, so that a server that does not answer cannot keep the process."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""
        self.exit_code = 1
        self._transports: set = set()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def request(self, reason: str, exit_code: int, grace: float) -> None:
        self.reason, self.exit_code = reason, exit_code
        self.event.set()
        self._timer = threading.Timer(grace, self._abandon)
        self._timer.daemon = True
        self._timer.start()

    def clear(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.event.clear()

    def track(self, transport: Any, add: bool) -> None:
        with self._lock:
            (self._transports.add if add else self._transports.discard)(transport)

    def _abandon(self) -> None:
        with self._lock:
            for transport in self._transports:
                transport.abort()


_STOP = _StopRequest()


def request_stop(reason: str, exit_code: int = 1, grace: float = STOP_GRACE) -> None:
    """Ask every delivery run in this process to stop politely (see the module's doc)."""
    _STOP.request(reason, exit_code, grace)


def stop_requested() -> bool:
    return _STOP.event.is_set()


def clear_stop() -> None:
    _STOP.clear()


def check_stop(doing: str) -> None:
    """Raise Interrupted if a stop was requested while doing something (storing)."""
    if _STOP.event.is_set():
        raise Interrupted(f"stopped by {_STOP.reason} {doing}", _STOP.exit_code)
