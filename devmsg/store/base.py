"""What every part of the store shares: time conversion, the one write-transaction helper,
row locks, plain SQL with the driver's placeholders, and the lease clock."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import peewee
from peewee import SqliteDatabase

from devmsg.models import database

INSERT_CHUNK = 500


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def to_db(value: dt.datetime) -> dt.datetime:
    """Aware -> naive UTC, as stored."""
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def from_db(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.replace(tzinfo=dt.UTC)


def naive(value: dt.datetime | str) -> dt.datetime:
    """A stored time as naive UTC: SQLite hands back text where an aggregate (MIN, MAX)
    hides the column's type."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=None)


# --- transactions ---------------------------------------------------------------------------


# Threads of one process (several SMTP connections) queue here for the write lock, instead
# of polling SQLite's busy handler, which sleeps in steps of milliseconds.
_writers = threading.RLock()


@contextmanager
def writing() -> Iterator[None]:
    """A write transaction. On SQLite it takes the write lock at once (BEGIN IMMEDIATE):
    a deferred transaction that reads and then writes gets SQLITE_BUSY at its first write
    without SQLite's busy handler ever waiting, so concurrent writers would fail instead of
    queueing for `busy_timeout`; and two processes can never both read "free" and both take
    it. A raw driver error (from a cursor used directly) leaves as peewee's own, which the
    Outbox turns into one StoreError."""
    db = database.obj
    with _writers, peewee.__exception_wrapper__:  # type: ignore[attr-defined]  # peewee's own
        try:
            with db.atomic("IMMEDIATE") if isinstance(db, SqliteDatabase) else db.atomic():
                yield
        except peewee.OperationalError as exc:
            # SQLite rolls back by itself on some errors (a full disk): peewee's ROLLBACK
            # then fails and would hide the error that matters.
            cause: BaseException | None = exc
            while cause is not None and "no transaction is active" in str(cause):
                cause = cause.__context__
            if cause is None or cause is exc:
                raise
            raise cause from None


DUE_CHANNEL = "devmsg_due"


def announce() -> None:
    """Inside a write transaction that makes receivers due (or changes what is due: a
    pause, a deferral): on PostgreSQL a NOTIFY, which reaches every `devmsg worker` when
    the transaction commits, and not before. On SQLite a worker sees the commit itself."""
    db = database.obj
    if not isinstance(db, SqliteDatabase):
        db.execute_sql("SELECT pg_notify(%s, '')", (DUE_CHANNEL,))


def lease_now() -> dt.datetime:
    """Now, on the clock leases are set and compared on. SQLite is one host's file: this
    process's clock. PostgreSQL is shared by hosts whose clocks may disagree: the database's
    own clock, so that a host whose clock runs ahead never takes another's live claim."""
    db = database.obj
    if isinstance(db, SqliteDatabase):
        return dt.datetime.now(dt.UTC)
    (value,) = db.execute_sql("SELECT clock_timestamp() AT TIME ZONE 'UTC'").fetchone()
    return value.replace(tzinfo=dt.UTC)


def locked(query: Any) -> Any:
    """On PostgreSQL, lock the rows read (waiting for another sender's lock)."""
    if isinstance(database.obj, SqliteDatabase):
        return query
    return query.for_update()


def for_update(query: Any) -> Any:
    """On PostgreSQL, lock the rows read and skip those another sender holds."""
    if isinstance(database.obj, SqliteDatabase):
        return query  # the IMMEDIATE transaction already serialises claimers
    return query.for_update("FOR UPDATE SKIP LOCKED")


def insert_sql(db: peewee.Database, table: str, columns: Sequence[str]) -> str:
    """A plain INSERT with the driver's placeholders, for executemany."""
    placeholders = ", ".join([db.param] * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"


def db_param(db: peewee.Database, value: Any) -> Any:
    """Times as peewee stores them: text on SQLite, native on PostgreSQL."""
    if isinstance(value, dt.datetime) and isinstance(db, SqliteDatabase):
        return value.isoformat(sep=" ")
    return value
