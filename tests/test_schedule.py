"""Send later (--at), never send stale mail (--expires, max_age), moved through time: the
devmsg processes run with their clock moved on by libfaketime, as a later cron tick would."""

from __future__ import annotations

import json

from conftest import Cli, run, sql, write_project
from test_clocks import faketime

SEND = ("send", "--type", "t", "--subject", "s", "--text", "t")


def listed(home, env=None):
    out = run("list", "--json", "--limit", "0", cwd=home, env=env).stdout
    return {r["to"]: r for r in json.loads(out)}


def test_at_sends_later_and_expires_never_sends_stale(home, smtp):
    cli = Cli(write_project(home, smtp.port))
    later = cli(*SEND, "--to", "later@example.com", "--at", "+2h")
    assert later.exit_code == 0
    assert later.stdout.startswith("message 1: 1 receiver due at ")
    assert (
        cli(*SEND, "--to", "stale@example.com", "--at", "+1h", "--expires", "+90m").exit_code == 0
    )
    rows = listed(home)
    assert rows["later@example.com"]["status"] == "not_sent"
    assert rows["stale@example.com"]["expires_at"] is not None
    assert json.loads(cli("resend-failed", "--json").stdout)["attempted"] == 0
    assert smtp.messages == []

    in_1h = faketime("+65m")
    result = run("resend-failed", "--json", cwd=home, env=in_1h)
    assert json.loads(result.stdout)["sent"] == 1  # stale@ is due, later@ not yet
    assert smtp.recipients() == ["stale@example.com"]

    cli(*SEND, "--to", "late@example.com", "--queue", "--expires", "+30m")
    in_3h = faketime("+3h")
    result = run("resend-failed", "--json", cwd=home, env=in_3h)
    assert json.loads(result.stdout)["sent"] == 1  # later@; late@ expired first
    rows = listed(home)
    assert rows["late@example.com"]["status"] == "expired"
    shown = json.loads(cli("show", str(rows["late@example.com"]["id"]), "--json").stdout)
    assert shown["status_reason"].startswith("expired: not sent by its --expires time ")
    assert sorted(smtp.recipients()) == ["later@example.com", "stale@example.com"]
    assert cli(*SEND, "--to", "x@example.com", "--expires", "2020-01-01T00:00").exit_code == 1
    assert cli(*SEND, "--to", "x@example.com", "--at", "tomorrow").exit_code == 1


def test_max_age_expires_failed_receivers_and_a_hold_does_not_age(home, smtp, closed_port):
    config = write_project(home, closed_port)
    assert (
        run(*SEND, "--to", "old@example.com", "--to", "kept@example.com", cwd=home).returncode == 3
    )
    config.write_text(config.read_text().replace(f"port = {closed_port}", f"port = {smtp.port}"))
    kept = listed(home)["kept@example.com"]["id"]
    assert run("hold", str(kept), cwd=home).returncode == 0
    assert listed(home)["kept@example.com"]["expires_at"] is None  # held: not ageing

    in_6d = faketime("+6d")
    assert run("release", str(kept), cwd=home, env=in_6d).returncode == 0
    result = run("resend-failed", "--json", cwd=home, env=in_6d)
    assert json.loads(result.stdout) == {
        "attempted": 1, "sent": 1, "failed": 0, "error": 0, "deferred": 0, "suppressed": 0,
        "reasons": {},
    }  # fmt: skip
    rows = listed(home)
    assert rows["old@example.com"]["status"] == "expired"  # failed, and past max_age (5d)
    assert rows["kept@example.com"]["status"] == "sent"  # six days held did not count
    [(reason,)] = sql("select status_reason from receiver where status = 'expired'")
    assert reason.startswith("expired: not sent within max_age 5d (created ")
    assert smtp.recipients() == ["kept@example.com"]
