"""The installed `devmsg` command, run as a user would, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import run, write_project


def test_installed_command_sends_lists_and_reports_errors(home, smtp):
    write_project(home, smtp.port)
    smtp.refuse("kari@example.no", "550 5.1.1 no such user")
    result = run("send", "--template", "deadline_moved", "--type", "deadline_moved",
                 "--context", '{"assignment": "A", "deadline": "2026-12-01", "reason": "", "url": "u"}',
                 "--to", "ola@example.no", "--to", "kari@example.no", "--language", "nb",
                 cwd=home)  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert result.stdout == (
        "message 1: attempted 2, sent 1, failed 0, error 1\n"
        "error 1: recipient refused: 550 5.1.1 no such user (1)\n"
    )
    assert smtp.recipients() == ["ola@example.no"]

    listed = json.loads(run("list", "--json", cwd=home).stdout)
    assert [(r["to"], r["status"]) for r in listed] == [
        ("kari@example.no", "error"), ("ola@example.no", "sent"),
    ]  # fmt: skip

    result = run("--config", "nowhere.toml", "list", cwd=home)
    assert result.returncode == 1
    assert result.stderr == "Error: nowhere.toml: config file not found\n"

    result = run("list", "--limit", "many", cwd=home)
    assert result.returncode == 2  # usage error

    assert run("--version", cwd=home).stdout.startswith("devmsg ")


def test_python_m_devmsg(home):
    result = subprocess.run([sys.executable, "-m", "devmsg", "--help"], capture_output=True,
                            text=True, cwd=home, timeout=60)  # fmt: skip
    assert result.returncode == 0
    assert "resend-failed" in result.stdout
