"""What every part of the store shares: time conversion, the one write-transaction helper,
row locks, plain SQL with the driver's placeholders, and the lease clock."""

from __future__ import annotations

import datetime as dt
import threading
from contextlib import contextmanager

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


# --- transactions ---------------------------------------------------------------------------


# Threads of one process (several SMTP connections) queue here for the write lock, instead
# of polling SQLite's busy handler, which sleeps in steps of milliseconds.
_writers = threading.RLock()


@contextmanager
def writing(immediate: bool = False):
    """A write transaction. `immediate` takes the database's write lock at once (SQLite:
    BEGIN IMMEDIATE), for every read-then-write, so that two processes can never both read
    "free" and both take it."""
    db = database.obj
    with _writers:
        if immediate and isinstance(db, SqliteDatabase):
            with db.atomic("IMMEDIATE"):
                yield
        else:
            with db.atomic():
                yield


def _lock(query):
    """On PostgreSQL, lock the rows read (waiting for another sender's lock)."""
    if isinstance(database.obj, SqliteDatabase):
        return query
    return query.for_update()


def _for_update(query):
    """On PostgreSQL, lock the rows read and skip those another sender holds."""
    if isinstance(database.obj, SqliteDatabase):
        return query  # the IMMEDIATE transaction already serialises claimers
    return query.for_update("FOR UPDATE SKIP LOCKED")


def insert_sql(db, table: str, columns) -> str:
    """A plain INSERT with the driver's placeholders, for executemany."""
    placeholders = ", ".join([db.param] * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"


def _param(db, value):
    """Times as peewee stores them: text on SQLite, native on PostgreSQL."""
    if isinstance(value, dt.datetime) and isinstance(db, SqliteDatabase):
        return value.isoformat(sep=" ")
    return value
