"""The status rules: failed below resend_limit, error above it, sent keeps the history;
`resend` whatever the status, `resend-failed` for cron."""

from __future__ import annotations

import json

from conftest import backoff_passes, sql

SEND = ("send", "--subject", "s", "--text", "t", "--type", "t")


def status_of(cli, receiver_id=1):
    return json.loads(cli("show", str(receiver_id), "--json").stdout)


def test_fail_fail_then_error_on_the_third_failure(cli, smtp):
    smtp.refuse("a@example.com", "451 4.3.0 try later")
    assert cli(*SEND, "--to", "a@example.com").exit_code == 3
    assert (status_of(cli)["status"], status_of(cli)["failed_count"]) == ("failed", 1)
    # Within its backoff (retry_backoff, 5 minutes by default), cron leaves it alone.
    assert json.loads(cli("resend-failed", "--json").stdout)["attempted"] == 0

    backoff_passes()
    result = cli("resend-failed")
    assert result.exit_code == 0
    assert result.stdout == (
        "resend-failed: attempted 1, sent 0, failed 1, error 0\n"
        "failed 1: recipient refused: 451 4.3.0 try later (1)\n"
    )
    assert (status_of(cli)["status"], status_of(cli)["failed_count"]) == ("failed", 2)

    backoff_passes()
    result = cli("resend-failed", "--json")
    assert json.loads(result.stdout) == {
        "attempted": 1, "sent": 0, "failed": 0, "error": 1, "deferred": 0, "suppressed": 0,
        "reasons": {"recipient refused: 451 4.3.0 try later": 1},
    }  # fmt: skip
    assert (status_of(cli)["status"], status_of(cli)["failed_count"]) == ("error", 3)

    # error is left for a person: cron ignores it ...
    result = cli("resend-failed", "--json")
    assert json.loads(result.stdout) == {
        "attempted": 0, "sent": 0, "failed": 0, "error": 0, "deferred": 0, "suppressed": 0,
        "reasons": {},
    }  # fmt: skip
    assert len(status_of(cli)["failures"]) == 3
    # ... and a person resends it by hand once the cause is fixed.
    smtp.accept("a@example.com")
    result = cli("resend", "1", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "attempted": 1, "sent": 1, "failed": 0, "error": 0, "deferred": 0, "suppressed": 0,
        "reasons": {},
    }  # fmt: skip
    shown = status_of(cli)
    assert (shown["status"], shown["sent_count"], shown["failed_count"]) == ("sent", 1, 3)
    assert [f["error"] for f in shown["failures"]] == ["recipient refused: 451 4.3.0 try later"] * 3
    assert shown["sent_at"] is not None
    assert smtp.recipients() == ["a@example.com"]


def test_resend_limit_zero_makes_the_first_failure_an_error(home, smtp):
    from conftest import Cli, write_project

    cli = Cli(write_project(home, smtp.port))
    text = cli.config.read_text().replace("resend_limit = 2", "resend_limit = 0")
    cli.config.write_text(text)
    smtp.refuse("a@example.com", "550 5.1.1 no such user")
    assert cli(*SEND, "--to", "a@example.com").exit_code == 3
    assert status_of(cli)["status"] == "error"


def test_resend_sends_again_whatever_the_status(cli, smtp):
    cli(*SEND, "--to", "a@example.com", "--to", "b@example.com")
    result = cli("resend", "1", "2", "1")
    assert result.exit_code == 0
    assert result.stdout == "resend: attempted 2, sent 2, failed 0, error 0\n"
    assert status_of(cli, 1)["sent_count"] == 2
    assert len(smtp.messages) == 4


def test_resend_unknown_id_sends_nothing(cli, smtp):
    cli(*SEND, "--to", "a@example.com")
    result = cli("resend", "1", "99", "98")
    assert result.exit_code == 1
    assert result.stderr == "Error: no receiver with id 98, 99\n"
    assert len(smtp.messages) == 1
    assert cli("resend").exit_code == 2  # usage error: Typer's own


def test_resend_failed_quiet_prints_only_when_something_failed(cli, smtp):
    cli(*SEND, "--to", "a@example.com")
    result = cli("resend-failed", "--quiet")
    assert (result.exit_code, result.output) == (0, "")

    smtp.refuse("b@example.com", "451 4.3.0 try later", times=1)
    smtp.refuse("c@example.com", "451 4.3.0 try later", times=2)
    cli(*SEND, "--to", "b@example.com", "--to", "c@example.com")
    backoff_passes()
    result = cli("resend-failed", "--quiet")  # b goes, c fails again
    assert result.exit_code == 0
    assert result.stdout == (
        "resend-failed: attempted 2, sent 1, failed 1, error 0\n"
        "failed 1: recipient refused: 451 4.3.0 try later (1)\n"
    )
    backoff_passes()
    result = cli("resend-failed", "--quiet")  # c goes: nothing to report
    assert (result.exit_code, result.output) == (0, "")


def test_resend_failed_against_a_down_server_exits_zero_and_records(home, closed_port):
    from conftest import Cli, write_project

    cli = Cli(write_project(home, closed_port))
    assert cli(*SEND, "--to", "a@example.com").exit_code == 3
    backoff_passes()
    result = cli("resend-failed")
    assert result.exit_code == 0
    assert result.stdout == (
        "resend-failed: attempted 1, sent 0, failed 1, error 0\n"
        f"failed 1: 127.0.0.1:{closed_port}: connection refused (1)\n"
    )
    assert status_of(cli)["failed_count"] == 0  # the relay was down: nothing counted
    assert sql("select relay_failures from receiver") == [(2,)]


def test_failure_traceback_is_shown_highlighted_and_readable(cli, smtp):
    smtp.refuse("a@example.com", "550 5.1.1 no such user")
    cli(*SEND, "--to", "a@example.com")
    result = cli("show", "1")
    assert result.exit_code == 0
    out = result.stdout
    assert "Failure 1 of 1 at" in out
    assert "recipient refused: 550 5.1.1 no such user" in out
    assert "Traceback (most recent call last):" in out
    assert "devmsg.transport.SMTPRefused: RCPT refused: 550 5.1.1 no such user" in out
