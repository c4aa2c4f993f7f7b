"""PostgreSQL: the URL and password rules, the schema, store copy in both directions, and
four sender processes sharing one PostgreSQL store."""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

import pytest
from conftest import PG_PASSWORD, STORE, Cli, backoff_passes, run, spawn, sql, write_project

from devmsg.config import load_config
from devmsg.errors import ConfigError

SEND = ("send", "--type", "t", "--subject", "s", "--text", "t")


@pytest.mark.sqlite_only
def test_database_urls(tmp_path):
    def database(value):
        path = tmp_path / "devmsg.toml"
        path.write_text(f'database = "{value}"\n')
        config = load_config(path)
        return config.database, config.database_url

    assert database("x.sqlite3") == (tmp_path / "x.sqlite3", None)
    assert database("sqlite:///data/x.sqlite3") == (tmp_path / "data/x.sqlite3", None)
    assert database("sqlite:////abs/x.sqlite3") == (Path("/abs/x.sqlite3"), None)
    url = "postgresql://devmsg@db.example:5432/devmsg"
    assert database(url)[1] == url
    with pytest.raises(ConfigError, match="no password in devmsg.toml; use PGPASSWORD"):
        database("postgresql://devmsg:secret@db.example/devmsg")
    with pytest.raises(ConfigError, match="the URL names no database"):
        database("postgresql://devmsg@db.example")
    with pytest.raises(ConfigError, match="use a file path, sqlite:///path or postgresql://"):
        database("mysql://x@y/z")


@pytest.mark.sqlite_only
def test_without_psycopg_a_postgresql_url_says_what_to_install(home):
    blocker = home / "blocker"
    blocker.mkdir()
    (blocker / "psycopg.py").write_text("raise ImportError('psycopg is not installed')\n")
    (home / "devmsg.toml").write_text('database = "postgresql://devmsg@127.0.0.1:1/devmsg"\n')
    result = run("list", cwd=home, env={"PYTHONPATH": str(blocker)})
    assert result.returncode == 1
    assert result.stderr == (
        "Error: postgresql://devmsg@127.0.0.1:1/devmsg: PostgreSQL needs the psycopg driver: "
        "pip install 'devmsg[postgres]'\n"
    )


@pytest.mark.postgres_only
def test_password_sources(home, smtp, monkeypatch):
    cli = Cli(write_project(home, smtp.port))
    assert cli(*SEND, "--to", "a@example.com").exit_code == 0
    monkeypatch.delenv("PGPASSWORD")
    result = cli("list", "--json")
    assert result.exit_code == 1
    assert "cannot use the store" in result.stderr and result.stderr.count("\n") == 1
    monkeypatch.setenv("DEVMSG_DATABASE_PASSWORD", PG_PASSWORD)
    assert len(json.loads(cli("list", "--json").stdout)) == 1
    monkeypatch.delenv("DEVMSG_DATABASE_PASSWORD")
    pgpass = home / ".pgpass"  # HOME is the test's folder
    pgpass.write_text(f"*:*:*:devmsg_test:{PG_PASSWORD}\n")
    pgpass.chmod(0o600)
    assert len(json.loads(cli("list", "--json").stdout)) == 1
    pgpass.unlink()
    monkeypatch.setenv("DEVMSG_DATABASE_PASSWORD", "wrong-password-123")
    result = cli("list")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {STORE['url']}: cannot use the store: ")
    assert "password authentication failed" in result.stderr
    assert "wrong-password-123" not in result.output


@pytest.mark.postgres_only
def test_same_schema_on_both_backends(home, smtp):
    from devmsg.db import open_database, open_store
    from devmsg.models import MODELS

    pg = open_store(load_config(write_project(home, smtp.port)), bind=False)
    lite = open_database(home / "lite.sqlite3", bind=False)
    try:
        for model in MODELS:
            table = model._meta.table_name
            pg_columns = {c.name: c.null for c in pg.get_columns(table)}
            lite_columns = {c.name: c.null for c in lite.get_columns(table)}
            assert pg_columns == lite_columns, table
            primary = (model._meta.primary_key.column_name,)
            pg_indexes = {tuple(i.columns) for i in pg.get_indexes(table)} - {primary}
            lite_indexes = {tuple(i.columns) for i in lite.get_indexes(table)} - {primary}
            assert pg_indexes == lite_indexes, table
        applied = [r[0] for r in pg.execute_sql("select name from schema_migration order by id")]
        assert applied == [r[0] for r in lite.execute_sql("select name from schema_migration")]
    finally:
        pg.close()
        lite.close()


def _rows(config=None):
    return {
        table: sql(f"select * from {table} order by 1", config=config)
        for table in ("message", "receiver", "content", "failure")
    }


def _normal(rows):
    """Compare across backends: times as text, bytes as bytes."""
    import datetime as dt

    def cell(value):
        if isinstance(value, dt.datetime):
            return value.isoformat(sep=" ")
        if isinstance(value, memoryview):
            return bytes(value)
        return value

    return {t: [tuple(cell(v) for v in row) for row in r] for t, r in rows.items()}


@pytest.mark.postgres_only
def test_store_copy_sqlite_to_postgresql_and_back(home, smtp):
    pg_url = STORE["url"]
    # a SQLite store with history: sent, failed with failures, error, queued
    (home / "lite").mkdir()
    STORE["url"] = None
    lite = Cli(write_project(home / "lite", smtp.port, extra='retry_backoff = "0s"\n'))
    STORE["url"] = pg_url
    smtp.refuse("later@example.com", "451 4.3.0 later")
    smtp.refuse("gone@example.com", "550 5.1.1 gone")
    lite(*SEND, "--to", "ok@example.com", "--to", "later@example.com", "--to", "gone@example.com")
    lite("resend-failed")
    lite(*SEND, "--queue", "--to", "queued@example.com", "--metadata", '{"k": [1, "å"]}')
    source = _normal(_rows(lite.config))
    assert len(source["failure"]) == 3

    result = lite("store", "copy", "--to", pg_url, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "message": 2, "receiver": 4, "content": 4, "failure": 3, "pause": 0, "rate_limit": 0,
        "rate_permit": 0, "suppression": 1, "secret": 0, "bounce": 0,  # 550 5.1.1: listed
            "blob": 0, "message_blob": 0,
    }  # fmt: skip
    assert _normal(_rows()) == source  # ids, statuses, failures, bytes intact

    pg = Cli(write_project(home, smtp.port))
    assert json.loads(pg("show", "2", "--json").stdout)["failures"][0]["error"] == (
        "recipient refused: 451 4.3.0 later"
    )
    # refuses a non-empty target
    result = lite("store", "copy", "--to", pg_url)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {pg_url}: the target store is not empty (2 messages, 4 receivers, "
        "4 contents, 3 failures, 1 suppression); "
        "--replace empties it first\n"
    )
    # the PostgreSQL store goes on from the copied ids
    assert json.loads(pg(*SEND, "--to", "new@example.com", "--json").stdout)["receivers"] == [5]

    # and back into a new SQLite file
    back = home / "back.sqlite3"
    result = pg("store", "copy", "--to", f"sqlite:///{back}")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"store copy: copied 3 messages, 5 receivers and 3 failures to sqlite:///{back}\n"
    )
    (home / "back").mkdir()
    (home / "back" / "store").mkdir()
    back.rename(home / "back" / "store" / "devmsg.sqlite3")
    STORE["url"] = None
    again = write_project(home / "back", smtp.port)
    STORE["url"] = pg_url
    assert _normal(_rows(again)) == _normal(_rows())
    assert (
        lite(
            "store", "copy", "--to", str(lite.config.parent / "store" / "devmsg.sqlite3")
        ).exit_code
        == 1
    )


@pytest.mark.postgres_only
def test_four_senders_share_one_postgresql_store(home, smtp, closed_port):
    config = write_project(home, closed_port, smtp_extra="connections = 1\n")
    (home / "r.csv").write_text("address\n" + "".join(f"p{i}@example.com\n" for i in range(2000)))
    result = run(*SEND, "--receivers", "r.csv", cwd=home, timeout=300)
    assert result.returncode == 3, result.stderr
    backoff_passes()
    config.write_text(config.read_text().replace(f"port = {closed_port}", f"port = {smtp.port}"))
    smtp.hold_after(100)
    procs = [spawn("resend-failed", "--json", cwd=home) for _ in range(4)]
    smtp.wait_until(lambda s: s.waiting == 4)  # all four are mid-exchange
    smtp.release()
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    delivered = collections.Counter(smtp.recipients())
    assert len(delivered) == 2000 and set(delivered.values()) == {1}, "each exactly once"
    assert all(r["sent"] > 0 for r in reports), reports  # all four took part
    assert sum(r["sent"] for r in reports) == 2000
    assert sql("select status, count(*) from receiver group by status") == [("sent", 2000)]
    print(f"\n4 processes on PostgreSQL, 2000 receivers: {[r['sent'] for r in reports]} sent, "
          f"{sum(delivered.values())} deliveries, 0 duplicates; pid {os.getpid()}")  # fmt: skip
