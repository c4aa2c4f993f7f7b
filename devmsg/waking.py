"""What wakes `devmsg worker`: another process's commit that may have made receivers due,
a poke from inside this process (a batch done, a signal, a reload), or a timeout.

- PostgreSQL: LISTEN on a connection of its own. The store's transactions that make
  receivers due NOTIFY (`store.announce`), so the worker wakes at their commit.
- SQLite has no notification. The worker watches the store's folder with inotify (Linux)
  and, when the WAL or the file changes, asks `PRAGMA data_version` on a connection of its
  own, which changes only when another connection has committed. Idle, it costs nothing.
  Where inotify is missing it asks every POLL seconds instead.

`wait` returns after a wake or the timeout; the worker then looks at the store itself, so
a spurious wake costs a query, never a wrong delivery."""

from __future__ import annotations

import contextlib
import os
import select
import sqlite3
import time
from pathlib import Path
from typing import Any

from devmsg.config import Config

# After a write to the WAL, look at data_version again after these pauses (seconds): the
# commit may not be published yet. A write that is not a commit costs these 15 ms.
SETTLE = (0.0005, 0.001, 0.002, 0.004, 0.008, 0)
POLL = 0.05  # seconds between data_version checks where inotify is not available
RECONNECT = 1.0  # seconds between attempts to LISTEN again after the store went away

# Why `wait` returned: another connection committed (or may have), this process poked, or
# the time was up.
COMMIT, POKE, TIMEOUT = "commit", "poke", "timeout"


class Waker:
    """The poke pipe every waker has: `poke` is safe from any thread and from a signal
    handler (one byte written to a pipe)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def poke(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write, b".")

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._read, 4096):
                pass

    def _select(self, fds: list[int], timeout: float | None) -> list[int]:
        ready, _, _ = select.select([self._read, *fds], [], [], timeout)
        if self._read in ready:
            self._drain()
        return ready

    def wait(self, timeout: float | None) -> str:
        """Until a wake or `timeout` seconds: COMMIT, POKE or TIMEOUT."""
        return POKE if self._read in self._select([], timeout) else TIMEOUT

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


class SqliteWaker(Waker):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path).absolute()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 1000")
        self._version = self._data_version()
        self._inotify = None
        try:
            from inotify_simple import INotify, flags

            self._inotify = INotify(nonblocking=True)
            mask = flags.MODIFY | flags.CREATE | flags.MOVED_TO
            self._inotify.add_watch(str(self.path.parent), mask)
        except (ImportError, OSError):
            self._inotify = None

    def _data_version(self) -> int:
        return self._db.execute("PRAGMA data_version").fetchone()[0]

    def _changed(self) -> bool:
        """Whether another connection committed since the last look. A commit writes its
        last WAL frame (the event) just before it publishes the frame in the WAL index
        (shared memory, which raises no event): so look again, briefly, until it shows."""
        for pause in SETTLE:
            version = self._data_version()
            if version != self._version:
                self._version = version
                return True
            time.sleep(pause)
        return False

    def wait(self, timeout: float | None) -> str:
        deadline = None if timeout is None else time.monotonic() + timeout
        names = {self.path.name, self.path.name + "-wal"}
        while True:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            if self._inotify is None:
                ready = self._select([], POLL if left is None else min(left, POLL))
                look = True  # no events: ask each time
            else:
                ready = self._select([self._inotify.fileno()], left)
                look = self._inotify.fileno() in ready and any(
                    event.name in names for event in self._inotify.read(timeout=0)
                )
            if look and self._changed():
                return COMMIT
            if self._read in ready:
                return POKE
            if deadline is not None and time.monotonic() >= deadline:
                return TIMEOUT

    def close(self) -> None:
        if self._inotify is not None:
            self._inotify.close()
        self._db.close()
        super().close()


class PostgresWaker(Waker):
    def __init__(self, url: str, params: dict) -> None:
        super().__init__()
        self.url, self.params = url, params
        self._conn: Any = None  # a psycopg connection, imported only here
        self._listen()

    def _listen(self) -> None:
        import psycopg

        from devmsg.store.base import DUE_CHANNEL

        try:
            self._conn = psycopg.connect(self.url, autocommit=True, **self.params)
            self._conn.execute(f"LISTEN {DUE_CHANNEL}")
        except psycopg.Error:
            self._close_conn()  # the store is away: the worker's own queries say so

    def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def wait(self, timeout: float | None) -> str:
        if self._conn is None:
            self._listen()
            if self._conn is not None:
                return COMMIT  # listening again: what was announced meanwhile was missed
            wait = RECONNECT if timeout is None else min(timeout, RECONNECT)
            return POKE if self._read in self._select([], wait) else TIMEOUT
        pgconn = self._conn.pgconn
        ready = self._select([pgconn.socket], timeout)
        if pgconn.socket in ready:
            try:
                pgconn.consume_input()
                notified = False
                while pgconn.notifies() is not None:
                    notified = True
                if notified:
                    return COMMIT
            except Exception:  # the connection broke: LISTEN again on the next wait
                self._close_conn()
        return POKE if self._read in ready else TIMEOUT

    def close(self) -> None:
        self._close_conn()
        super().close()


def open_waker(config: Config) -> Waker:
    """The waker for the configured store, listening from now on."""
    if config.database_url:
        from devmsg.db import postgres_params

        return PostgresWaker(config.database_url, postgres_params(config.busy_timeout))
    return SqliteWaker(config.database)
