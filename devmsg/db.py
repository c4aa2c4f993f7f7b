"""The one place the store's database is configured. Opening it also migrates it."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from peewee import Database, DatabaseError, SqliteDatabase

from devmsg.config import ENV_DATABASE_PASSWORD, Config
from devmsg.errors import ConfigError, StoreError
from devmsg.models import database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# WAL lets readers (list, show) run while a sender writes, and makes a commit cheap.
# synchronous=NORMAL: every commit survives a crash or kill of devmsg at once (the OS has
# it), and `make_durable` fsyncs the WAL before devmsg reports any outcome, so what devmsg
# has reported survives a power cut too. A power cut in the middle of a run can lose the
# last outcomes not yet reported: those receivers are retried (at least once, never a
# false "sent"). FULL would fsync every commit: 10x the cost of a commit, measured here.
PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
}


def open_store(config: Config, bind: bool = True) -> Database:
    """Open the configured store (SQLite or PostgreSQL), migrate it, and (with `bind`)
    make it the models' database."""
    if config.database_url:
        return open_postgres(config.database_url, config.busy_timeout, bind)
    return open_database(config.database, config.busy_timeout, bind)


def open_postgres(
    url: str, busy_timeout: dt.timedelta = dt.timedelta(seconds=10), bind: bool = True
) -> Database:
    """PostgreSQL through psycopg 3. The password comes from libpq's own sources
    (PGPASSWORD, ~/.pgpass) or $DEVMSG_DATABASE_PASSWORD, never from the config."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"{url}: PostgreSQL needs the psycopg driver: pip install 'devmsg[postgres]'"
        ) from None
    from peewee import PostgresqlDatabase

    db = PostgresqlDatabase(url, prefer_psycopg3=True, **postgres_params(busy_timeout))
    try:
        _start(db, bind)
    except DatabaseError as exc:
        raise store_error(url, busy_timeout, exc, "cannot use the store: ") from None
    return db


def postgres_params(busy_timeout: dt.timedelta) -> dict:
    """psycopg's connection parameters besides the URL (also for a worker's LISTEN)."""
    params = {"options": f"-c lock_timeout={int(busy_timeout.total_seconds() * 1000)}"}
    password = os.environ.get(ENV_DATABASE_PASSWORD)
    if password:
        params["password"] = password
    return params


def open_database(
    path: Path, busy_timeout: dt.timedelta = dt.timedelta(seconds=10), bind: bool = True
) -> Database:
    """Open (creating if needed) the SQLite store at `path`, bind the models, migrate."""
    path = Path(path)
    if not path.parent.is_dir():
        raise StoreError(f"{path}: the folder {path.parent} does not exist")
    if not path.exists():
        try:
            # Created readable by its owner only: the store holds people's mail.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the store: {exc.strerror}") from None
    pragmas = {**PRAGMAS, "busy_timeout": int(busy_timeout.total_seconds() * 1000)}
    db = SqliteDatabase(str(path), pragmas=pragmas, timeout=busy_timeout.total_seconds())
    try:
        _start(db, bind)
    except DatabaseError as exc:
        raise store_error(str(path), busy_timeout, exc, "cannot use the store: ") from None
    return db


def store_error(
    name: str, busy_timeout: dt.timedelta, exc: Exception, context: str = ""
) -> StoreError:
    """A database error as one line naming the store; the password never in it."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    password = os.environ.get(ENV_DATABASE_PASSWORD)
    if password:
        text = text.replace(password, "***")
    if "locked" in text or "lock timeout" in text:
        waited = busy_timeout.total_seconds()
        return StoreError(f"{name}: the store is locked by another process (waited {waited:g}s)")
    if "disk is full" in text or "No space left" in text:
        return StoreError(f"{name}: the disk is full")
    if "readonly" in text or "read-only" in text:
        return StoreError(f"{name}: the store is read-only")
    return StoreError(f"{name}: {context}{text}")


def _start(db: Database, bind: bool) -> None:
    """Connect and migrate; with `bind`, the models use this database from now on."""
    if bind:
        database.initialize(db)
    try:
        db.connect(reuse_if_open=True)
        migrate(db)
    except DatabaseError:
        db.close()
        raise


def make_durable(db: Database) -> None:
    """fsync the store's WAL, so everything committed so far survives a power cut. Called
    before devmsg reports outcomes. The database file needs none: with synchronous=NORMAL
    SQLite syncs the WAL before a checkpoint copies it there, and the file after."""
    if not isinstance(db, SqliteDatabase):
        return  # PostgreSQL's commits are durable
    path = Path(db.database)
    for file in (path.with_name(path.name + "-wal"),):
        try:
            fd = os.open(file, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _pending(db: Database) -> bool:
    """Cheap check, on every open: is any migration file not yet applied?"""
    files = {p.stem for p in MIGRATIONS_DIR.glob("[0-9]*.py")}
    try:
        applied = {row[0] for row in db.execute_sql("SELECT name FROM schema_migration")}
    except DatabaseError:
        if not isinstance(db, SqliteDatabase):
            db.rollback()
        return True
    return not files <= applied


def migrate(db: Database) -> list[str]:
    """Apply pending migrations; cheap and idempotent when there are none."""
    if not _pending(db):
        return []
    from playhouse.migrations import Runner

    runner = Runner(db, str(MIGRATIONS_DIR))
    if not isinstance(db, SqliteDatabase):
        with db.atomic():
            # One migrating process at a time; the others find nothing left to do.
            db.execute_sql("SELECT pg_advisory_xact_lock(7041966)")
            return runner.up()
    # SQLite rebuilds a table for some changes: with foreign keys on, dropping the old table
    # would cascade into its children. Off for the migration (only possible outside a
    # transaction), checked after, on again.
    db.execute_sql("PRAGMA foreign_keys = OFF")
    try:
        # Take the write lock first so two processes opening a new store do not race.
        with db.atomic("IMMEDIATE"):
            applied = runner.up()
            problems = db.execute_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise StoreError(f"migration left broken references: {problems[:3]}")
    finally:
        db.execute_sql("PRAGMA foreign_keys = ON")
    return applied
