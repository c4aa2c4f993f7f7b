"""The store: migrations from a blank database, the schema, the file's permissions."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from devmsg.db import MIGRATIONS_DIR, migrate, open_database
from devmsg.models import MODELS

pytestmark = pytest.mark.sqlite_only


def test_blank_database_is_migrated_to_the_models_schema(tmp_path):
    path = tmp_path / "new.sqlite3"
    db = open_database(path)
    try:
        assert sorted(db.get_tables()) == [
            "blob", "bounce", "content", "failure", "message", "message_blob", "pause",
            "rate_limit", "rate_permit", "receiver", "schema_migration", "secret",
            "suppression", "worker",
        ]  # fmt: skip
        for model in MODELS:
            table = model._meta.table_name
            columns = {c.name: c for c in db.get_columns(table)}
            assert set(columns) == {f.column_name for f in model._meta.sorted_fields}, table
            for field in model._meta.sorted_fields:
                assert columns[field.column_name].null == field.null, (table, field.name)
            declared = {
                (f.column_name,) for f in model._meta.sorted_fields if f.index or f.unique
            } | {tuple(cols) for cols, _unique in model._meta.indexes}
            declared.discard((model._meta.primary_key.column_name,))
            actual = {tuple(i.columns) for i in db.get_indexes(table)}
            actual.discard((model._meta.primary_key.column_name,))  # a text key's own index
            assert declared == actual, table
        assert migrate(db) == []  # idempotent: nothing left to apply
        applied = [row[0] for row in db.execute_sql("select name from schema_migration")]
        files = sorted(p.stem for p in MIGRATIONS_DIR.glob("[0-9]*.py"))
        assert applied == files and files[0] == "0001_initial"
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
        assert db.execute_sql("pragma synchronous").fetchone()[0] == 1  # NORMAL, see make_durable
        assert db.execute_sql("pragma busy_timeout").fetchone()[0] == 10_000
    finally:
        db.close()


def test_upgrade_from_the_first_schema_keeps_data(tmp_path):
    from peewee import SqliteDatabase
    from playhouse.migrations import Runner

    path = tmp_path / "old.sqlite3"
    old = SqliteDatabase(str(path))
    Runner(old, str(MIGRATIONS_DIR)).up(target="0001_initial")
    old.execute_sql(
        "insert into message (created_at, type, template, context, metadata, created_by, sender)"
        " values ('2026-01-01 00:00:00', 't', null, '{}', '{}', 'me', 'a@example.com')"
    )
    from devmsg import content, mime

    email = mime.build(sender="a@example.com", address="b@example.com", name="", subject="s",
                       text="Hei ÅSE\n", html="<p>Hei</p>\n", message_id="<1@x>",
                       date="Thu, 01 Jan 2026 00:00:00 +0000", smtputf8=False)  # fmt: skip
    rows = [  # a real email, and bytes the bodies cannot come back out of
        ("b@example.com", "Hei ÅSE\n", "<p>Hei</p>\n", email),
        ("c@example.com", "t\r\n", "", b"\x00"),
    ]
    for address, text, html, data in rows:
        old.execute_sql(
            "insert into receiver (message_id, address, name, language, subject, body_text,"
            " body_html, mime, message_id_header, status, sent_count, failed_count, created_at)"
            " values (1, ?, '', 'en', 's', ?, ?, ?, ?, 'failed', 0, 1,"
            " '2026-01-01 00:00:00')",
            (address, text, html, data, f"<{address}>"),
        )
    old.close()
    db = open_database(path)
    try:
        row = db.execute_sql(
            "select r.status, r.failed_count, r.claimed_by, r.next_attempt_at, m.state"
            " from receiver r join message m on m.id = r.message_id"
        ).fetchone()
        assert row == ("failed", 1, None, None, "stored")
        packed = db.execute_sql("select email, bodies from content order by receiver_id")
        got = [(content.email(e), content.bodies(e, b), b is None) for e, b in packed]
        assert got == [
            (email, ("Hei ÅSE\n", "<p>Hei</p>\n"), True),  # one copy: the email
            (b"\x00", ("t\r\n", ""), False),
        ]
    finally:
        db.close()
