"""The store: migrations from a blank database, the schema, the file's permissions."""

from __future__ import annotations

import sqlite3
import stat

from devmsg.db import migrate, open_database
from devmsg.models import MODELS


def test_blank_database_is_migrated_to_the_models_schema(tmp_path):
    path = tmp_path / "new.sqlite3"
    db = open_database(path)
    try:
        assert sorted(db.get_tables()) == ["failure", "message", "receiver", "schema_migration"]
        for model in MODELS:
            table = model._meta.table_name
            columns = {c.name: c for c in db.get_columns(table)}
            assert set(columns) == {f.column_name for f in model._meta.sorted_fields}, table
            for field in model._meta.sorted_fields:
                assert columns[field.column_name].null == field.null, (table, field.name)
        indexes = {i.name for i in db.get_indexes("receiver")}
        for column in ("status", "created_at", "sent_at", "message_id"):
            assert f"receiver_{column}" in indexes
        assert migrate(db) == []  # idempotent: nothing left to apply
        applied = [row[0] for row in db.execute_sql("select name from schema_migration")]
        assert applied == ["0001_initial"]
    finally:
        db.close()


def test_store_settings(tmp_path):
    path = tmp_path / "s.sqlite3"
    open_database(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    db = open_database(path)
    try:
        assert db.execute_sql("pragma foreign_keys").fetchone()[0] == 1
        assert db.execute_sql("pragma synchronous").fetchone()[0] == 2  # FULL
        assert db.execute_sql("pragma busy_timeout").fetchone()[0] == 10_000
    finally:
        db.close()
