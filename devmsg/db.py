"""The one place the store's database is configured. Opening it also migrates it."""

from __future__ import annotations

import os
from pathlib import Path

from peewee import DatabaseError, SqliteDatabase
from playhouse.migrations import Runner

from devmsg.errors import StoreError
from devmsg.models import database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# WAL lets readers (list, show) run while a sender writes. synchronous=FULL makes every
# commit durable before it returns, so a receiver reported "sent" stays "sent" after a
# power cut. The busy timeout makes concurrent writers wait instead of failing at once.
PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "full",
    "foreign_keys": 1,
    "busy_timeout": 10_000,
}


def open_database(path: Path) -> SqliteDatabase:
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
    db = SqliteDatabase(str(path), pragmas=PRAGMAS)
    database.initialize(db)
    try:
        db.connect(reuse_if_open=True)
        migrate(db)
    except DatabaseError as exc:
        db.close()
        raise StoreError(f"{path}: cannot use the store: {exc}") from None
    return db


def migrate(db) -> list[str]:
    """Apply pending migrations; cheap and idempotent when there are none."""
    runner = Runner(db, str(MIGRATIONS_DIR))
    if all(m.applied for m in runner.status()):
        return []
    # Take the write lock first so two processes opening a new store do not race.
    with db.atomic("IMMEDIATE") if isinstance(db, SqliteDatabase) else db.atomic():
        return runner.up()
