"""What already holds under faults, kept by tests: a full disk, a corrupt store file,
PostgreSQL restarted under a running resend-failed, and a connection lost after DATA. (The
store for the full disk is on a 2 MB tmpfs, filled by another file.)"""

from __future__ import annotations

import collections
import json
import os
import sqlite3
import subprocess
import time

import pytest
from conftest import Cli, backoff_passes, run, spawn, sql, write_project

SEND = ("send", "--type", "t", "--subject", "s", "--text", "t")


@pytest.mark.sqlite_only
def test_full_disk_is_one_line_stores_nothing_visible_and_the_store_recovers(home, smtp):
    disk = home / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs as root and must mount a tmpfs: {mounted.stderr}")
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        config = write_project(home, smtp.port, extra='claim_lease = "1s"\n')
        config.write_text(config.read_text().replace("store/devmsg.sqlite3", "disk/s.sqlite3"))
        cli = Cli(config)
        assert cli(*SEND, "--to", "first@example.com").exit_code == 0
        (disk / "filler").write_bytes(b"\0" * 1_500_000)  # another program's file
        (home / "r.csv").write_text(
            "address\n" + "".join(f"big{i}@example.com\n" for i in range(3000))
        )
        result = cli("send", "--type", "t", "--subject", "s", "--text", "x" * 2000,
                     "--receivers", "r.csv")  # fmt: skip
        assert result.exit_code == 1
        assert result.stderr == f"Error: {disk}/s.sqlite3: the disk is full\n"
        assert "Traceback" not in result.output

        def rows():
            conn = sqlite3.connect(disk / "s.sqlite3")
            try:
                return conn.execute(
                    "select m.state, count(*) from receiver r join message m"
                    " on m.id = r.message_id group by m.state"
                ).fetchall()
            finally:
                conn.close()

        # Nothing of that send can be seen or sent; what it stored before the disk filled
        # (if it could not even delete it) is removed by recovery once its lease runs out.
        assert [r["to"] for r in json.loads(cli("list", "--json").stdout)] == ["first@example.com"]
        # Space comes back: the store works and is intact.
        (disk / "filler").unlink()
        time.sleep(1.5)  # the failed send's lease (1 s) runs out
        assert cli("resend-failed").exit_code == 0
        again = cli(*SEND, "--to", "second@example.com")
        assert again.exit_code == 0, again.output
        conn = sqlite3.connect(disk / "s.sqlite3")
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            conn.close()
        assert rows() == [("stored", 2)]
        assert sorted(smtp.recipients()) == ["first@example.com", "second@example.com"]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.sqlite_only
def test_corrupt_store_file_is_one_line(home, smtp):
    config = write_project(home, smtp.port)
    store = home / "store" / "devmsg.sqlite3"
    store.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    for args in (("list",), (*SEND, "--to", "a@example.com"), ("resend-failed",)):
        result = run("--config", str(config), *args, cwd=home)
        assert result.returncode == 1, args
        assert result.stderr.startswith(f"Error: {store}: "), result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert smtp.messages == []


def test_connection_lost_after_data_fails_only_that_receiver(home, smtp):
    cli = Cli(write_project(home, smtp.port))
    smtp.refuse("DATA d5@example.com", "drop", times=1)  # taken, then the reply is lost
    to = [arg for i in range(10) for arg in ("--to", f"d{i}@example.com")]
    result = cli(*SEND, *to, "--json")
    assert result.exit_code == 3
    rows = {r["to"]: r for r in __import__("json").loads(cli("list", "--json").stdout)}
    assert {to: r["status"] for to, r in rows.items() if r["status"] != "sent"} == {
        "d5@example.com": "failed"
    }
    [(error,)] = sql("select error from failure")
    assert "connection lost" in error
    backoff_passes()
    assert cli("resend-failed").stdout == "resend-failed: attempted 1, sent 1, failed 0, error 0\n"
    delivered = collections.Counter(smtp.recipients())
    assert len(delivered) == 10
    assert {a for a, n in delivered.items() if n > 1} == {"d5@example.com"}  # only that one


@pytest.mark.postgres_only
def test_postgresql_going_away_under_resend_failed_loses_nothing(home, smtp, closed_port):
    """What a restart of the server does to this store, without restarting the server the
    other test processes use: every connection to the database cut, and none taken for a
    moment."""
    import psycopg
    from conftest import PG_ADMIN, STORE

    config = write_project(
        home, closed_port, extra='claim_lease = "2s"\n', smtp_extra="connections = 1\n"
    )
    (home / "r.csv").write_text("address\n" + "".join(f"p{i}@example.com\n" for i in range(100)))
    assert run(*SEND, "--receivers", "r.csv", cwd=home).returncode == 3
    backoff_passes()
    config.write_text(config.read_text().replace(f"port = {closed_port}", f"port = {smtp.port}"))
    smtp.hold_after(10)
    proc = spawn("resend-failed", cwd=home)
    smtp.wait_until(lambda s: s.waiting == 1)
    name = STORE["url"].rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))  # fmt: skip
        smtp.release()  # the run's next statement finds its connection gone
        proc.wait(timeout=120)
        admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err
    assert proc.returncode == 1 and len(err.splitlines()) == 1, err  # one clear line
    assert err.startswith("Error: postgresql://")
    # After its leases run out, the next run delivers everything: nothing is lost.
    import time

    time.sleep(2.5)
    result = run("resend-failed", "--json", cwd=home)
    assert result.returncode == 0, result.stderr
    delivered = collections.Counter(smtp.recipients())
    assert len(delivered) == 100
    assert sum(n - 1 for n in delivered.values()) <= 1
    assert sql("select status, count(*) from receiver group by status") == [("sent", 100)]
