"""A store that cannot be used gives one clear line, never a traceback."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time

import pytest
from conftest import Cli, run, write_project

pytestmark = pytest.mark.sqlite_only


def test_store_locked_past_the_busy_timeout(home, smtp):
    cli = Cli(write_project(home, smtp.port, extra='busy_timeout = "1s"\n'))
    assert cli("send", "--queue", "--type", "t", "--subject", "s", "--text", "t",
               "--to", "a@example.com").exit_code == 0  # fmt: skip
    holder = sqlite3.connect(home / "store" / "devmsg.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        result = cli("resend-failed")
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {home}/store/devmsg.sqlite3: the store is locked by another process (waited 1s)\n"
    )
    assert waited >= 0.9  # it waited busy_timeout before giving up
    assert smtp.messages == []


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr to make a file immutable")
def test_read_only_store(home, smtp):
    cli = Cli(write_project(home, smtp.port))
    cli("send", "--queue", "--type", "t", "--subject", "s", "--text", "t", "--to", "a@example.com")
    store = home / "store" / "devmsg.sqlite3"
    # As root, permissions do not stop a write; an immutable file does.
    if subprocess.run(["chattr", "+i", str(store)], capture_output=True).returncode:
        pytest.skip("this file system does not support immutable files")
    try:
        assert cli("list").exit_code == 0  # reading still works
        result = run("resend-failed", cwd=home)
        assert result.returncode == 1
        assert result.stderr == f"Error: {store}: the store is read-only\n"
        assert smtp.messages == []
    finally:
        subprocess.run(["chattr", "-i", str(store)], check=True)
