"""An operator's controls: hold, release and cancel, with selectors, reasons, dry runs and
JSON; and cancel during a running send, which stops it within a receiver or two per
connection and never delivers what it cancelled."""

from __future__ import annotations

import json

from conftest import Cli, receivers_file, run, spawn, sql, write_project

SEND = ("send", "--type", "t", "--subject", "s", "--text", "t")


def statuses(cli):
    return {r["id"]: r["status"] for r in json.loads(cli("list", "--json", "-n", "0").stdout)}


def test_hold_release_cancel_with_selectors_and_reasons(home, smtp):
    cli = Cli(write_project(home, smtp.port))
    smtp.refuse("b@example.com", "451 4.3.0 later")
    cli(*SEND, "--to", "a@example.com", "--to", "b@example.com")  # 1 sent, 2 failed
    cli(*SEND, "--type", "news", "--queue", "--to", "c@example.com", "--to", "d@example.com")
    assert cli("hold").exit_code == 2  # a bare control is a usage error

    result = cli("hold", "--all", "--dry-run", "--json")
    assert json.loads(result.stdout) == {"changed": [2, 3, 4], "skipped": [1], "in_flight": []}
    assert statuses(cli) == {1: "sent", 2: "failed", 3: "not_sent", 4: "not_sent"}

    result = cli("hold", "--type", "news", "--reason", "wrong deadline")
    assert result.stdout == "hold: 2 changed, 0 skipped, 0 in flight\n"
    shown = json.loads(cli("show", "3", "--json").stdout)
    assert shown["status"] == "held"
    assert shown["status_reason"].startswith("held by ")
    assert shown["status_reason"].endswith(": wrong deadline")
    assert json.loads(cli("resend-failed", "--json").stdout)["attempted"] == 0  # held stays
    assert smtp.recipients() == ["a@example.com"]

    assert cli("cancel", "4", "--to", "c@example.com").stdout == (
        "cancel: 0 changed, 0 skipped, 0 in flight\n"  # selectors AND: nothing matches both
    )
    assert cli("cancel", "4").stdout == "cancel: 1 changed, 0 skipped, 0 in flight\n"
    assert cli("cancel", "4", "99").exit_code == 1  # unknown id: nothing changes
    assert cli("release", "--status", "held", "--status", "cancelled").stdout == (
        "release: 1 changed, 1 skipped, 0 in flight\n"
    )
    assert statuses(cli) == {1: "sent", 2: "failed", 3: "not_sent", 4: "cancelled"}
    assert cli("hold", "2").exit_code == 0
    cli("release", "2")  # attempted before: failed, and due at once
    shown = json.loads(cli("show", "2", "--json").stdout)
    assert shown["status"] == "failed"
    assert shown["status_reason"].startswith("released by ")
    smtp.accept("b@example.com")
    assert json.loads(cli("resend-failed", "--json").stdout)["sent"] == 2  # 2 and 3, not 4
    assert cli("resend", "4").exit_code == 0  # a person's decision: sent whatever the status
    assert sorted(smtp.recipients()) == [
        "a@example.com", "b@example.com", "c@example.com", "d@example.com",
    ]  # fmt: skip


def test_cancel_during_a_running_send(home, smtp):
    write_project(home, smtp.port, smtp_extra="connections = 2\n")
    receivers_file(home, 300, "c")
    smtp.hold_after(50)
    proc = spawn(*SEND, "--receivers", "r.csv", cwd=home)
    smtp.wait_until(lambda s: s.waiting == 2)  # both connections mid-exchange
    result = run("cancel", "--message", "1", "--json", cwd=home)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["in_flight"]) == 2  # one a connection: they may still be sent
    smtp.release()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == "message 1: attempted 52, sent 52, failed 0, error 0\n"
    sent = {rid for (rid,) in sql("select id from receiver where status = 'sent'")}
    cancelled = {rid for (rid,) in sql("select id from receiver where status = 'cancelled'")}
    assert set(report["changed"]) == cancelled and len(sent) == 52
    assert len(cancelled) + len(report["in_flight"]) + 50 == 300
    assert len(smtp.messages) == 52  # nothing cancelled was delivered
    assert sql("select count(*) from receiver where claimed_by is not null") == [(0,)]


def test_a_control_with_nothing_chosen_is_a_one_line_usage_error(cli):
    for action in ("hold", "release", "cancel"):
        result = cli(action)
        assert (result.exit_code, result.stderr) == (
            2, "Error: choose receivers: give IDs, --message, --type, --to, --status or --all\n"
        ), action  # fmt: skip
