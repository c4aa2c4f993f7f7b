"""Temporary vs permanent failures, backoff, and the server being unreachable: each through
the real SMTP server's replies."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading

import pytest
from conftest import Cli, sql, write_project

from devmsg.smtpserver import CapturingServer

SEND = ("send", "--type", "t", "--subject", "s", "--text", "t")


@pytest.fixture(params=[True, False], ids=["pipelining", "lockstep"])
def smtp(request):
    """Every failure class through a server that offers PIPELINING and one that does not."""
    with CapturingServer(pipelining=request.param) as server:
        yield server


def show(cli, rid=1):
    return json.loads(cli("show", str(rid), "--json").stdout)


@pytest.mark.parametrize(
    ("rule", "reply", "status", "error"),
    [
        ("a@example.com", "451 4.2.1 mailbox busy", "failed", "recipient refused: 451 4.2.1 mailbox busy"),
        ("a@example.com", "550 5.1.1 no such user", "error", "recipient refused: 550 5.1.1 no such user"),
        ("DATA a@example.com", "554 5.6.0 message rejected", "error", "message refused: 554 5.6.0 message rejected"),
        ("DATA a@example.com", "452 4.3.1 out of space", "failed", "message refused: 452 4.3.1 out of space"),
        ("MAIL FROM", "553 5.7.1 sender not allowed", "failed", "sender refused: 553 5.7.1 sender not allowed"),
        ("MAIL FROM", "421 4.3.2 shutting down", "failed", "sender refused: 421 4.3.2 shutting down"),
        ("MAIL FROM", "451 4.3.0 try later", "failed", "sender refused: 451 4.3.0 try later"),
        ("a@example.com", "552 5.2.2 mailbox full", "failed", "recipient refused: 552 5.2.2 mailbox full"),
        ("DATA a@example.com", "550 5.2.2 over quota", "failed", "message refused: 550 5.2.2 over quota"),
    ],
)  # fmt: skip
def test_reply_classes(cli, smtp, rule, reply, status, error):
    smtp.refuse(rule, reply)
    result = cli(*SEND, "--to", "a@example.com")
    assert result.exit_code == 3
    shown = show(cli)
    # A 4xx at MAIL FROM (421 included) is the relay's: it says nothing about the receiver,
    # and does not count toward resend_limit. Every other reply here does.
    counted = not (rule == "MAIL FROM" and reply.startswith("4"))
    assert (shown["status"], shown["failed_count"]) == (status, int(counted))
    assert shown["failures"][0]["error"] == error
    assert shown["failures"][0]["counts"] is counted
    assert smtp.messages == []
    assert (shown["next_attempt_at"] is None) == (status == "error")


def test_permanent_failure_is_error_at_once_and_cron_leaves_it(cli, smtp):
    smtp.refuse("gone@example.com", "550 5.1.1 no such user")
    cli(*SEND, "--to", "gone@example.com", "--to", "ok@example.com")
    result = cli("resend-failed", "--json")
    assert json.loads(result.stdout)["attempted"] == 0
    assert [r["status"] for r in json.loads(cli("list", "--json").stdout)] == ["sent", "error"]


def test_non_ascii_local_part_uses_smtputf8_or_fails_clearly(home):
    with CapturingServer() as utf8:
        cli = Cli(write_project(home, utf8.port))
        assert cli(*SEND, "--to", "Åse <åse@eksempel.no>").exit_code == 0
        [received] = utf8.messages
        assert received.rcpt_tos == ["åse@eksempel.no"]
        assert "To: Åse <åse@eksempel.no>" in received.content.decode()
    with CapturingServer(smtputf8=False) as plain:
        (home / "b").mkdir()
        cli = Cli(write_project(home / "b", plain.port))
        assert cli(*SEND, "--to", "åse@eksempel.no").exit_code == 3
        shown = show(cli)
        assert shown["status"] == "error"
        assert shown["failures"][0]["error"] == (
            "the server does not offer SMTPUTF8, needed for åse@eksempel.no"
        )
        assert plain.messages == []


class RefusingServer:
    """A TCP server that answers every connection with a 421 greeting and closes: an SMTP
    server that is up but refuses service. Counts connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.sendall(b"421 4.3.2 Service not available, closing channel\r\n")
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_unreachable_server_costs_one_connection_per_batch_not_per_receiver(home):
    server = RefusingServer()
    try:
        cli = Cli(write_project(home, server.port))
        to = [arg for i in range(120) for arg in ("--to", f"r{i}@example.com")]
        result = cli(*SEND, *to)
        assert result.exit_code == 3
        assert result.stdout == (
            "message 1: attempted 120, sent 0, failed 120, error 0\n"
            f"failed 120: 127.0.0.1:{server.port} replied 421 4.3.2 Service not available, "
            "closing channel (120)\n"
        )
        assert server.connections <= 4  # one a batch (4 connections, 30 each), not 120
        for rid in (1, 60, 120):
            shown = show(cli, rid)
            assert shown["status"] == "failed"
            assert shown["failures"][0]["error"].endswith(
                "replied 421 4.3.2 Service not available, closing channel"
            )
    finally:
        server.close()


def test_closed_port_is_recorded_for_every_receiver(home, closed_port):
    cli = Cli(write_project(home, closed_port))
    result = cli(*SEND, "--to", "a@example.com", "--to", "b@example.com", "--json")
    assert json.loads(result.stdout)["failed"] == 2
    for rid in (1, 2):
        assert (
            show(cli, rid)["failures"][0]["error"] == f"127.0.0.1:{closed_port}: connection refused"
        )


def _set_next_attempt_in_past(home):
    sql("update receiver set next_attempt_at = ?", (dt.datetime(2000, 1, 1),))


def _delay_hours(shown, failed_at):
    next_at = dt.datetime.fromisoformat(shown["next_attempt_at"])
    return (next_at - failed_at).total_seconds() / 3600


def test_backoff_doubles_with_jitter_and_a_cap(home, smtp):
    cli = Cli(
        write_project(home, smtp.port, extra='retry_backoff = "1h"\nretry_backoff_max = "3h"\n')
    )
    text = (
        cli.config.read_text()
        .replace('retry_backoff = "0s"\n', "")
        .replace("resend_limit = 2", "resend_limit = 5")
    )
    cli.config.write_text(text)
    smtp.refuse("a@example.com", "451 4.3.0 try later")
    cli(*SEND, "--to", "a@example.com")
    expected = [(0.8, 1.2), (1.6, 2.4), (3.0, 3.0), (3.0, 3.0)]  # 1h, 2h, min(4h, 3h), cap
    for attempt, (low, high) in enumerate(expected, start=1):
        shown = show(cli)
        failed_at = dt.datetime.fromisoformat(shown["failures"][-1]["at"])
        assert shown["failed_count"] == attempt
        assert low - 0.001 <= _delay_hours(shown, failed_at) <= high + 0.001, attempt
        # not due yet: cron leaves it alone
        assert json.loads(cli("resend-failed", "--json").stdout)["attempted"] == 0
        _set_next_attempt_in_past(home)
        assert json.loads(cli("resend-failed", "--json").stdout)["attempted"] == 1
    # resend by hand ignores backoff
    smtp.accept("a@example.com")
    assert json.loads(cli("resend", "1", "--json").stdout)["sent"] == 1
    assert show(cli)["next_attempt_at"] is None


def test_zero_backoff_retries_on_every_run(home, smtp):
    cli = Cli(write_project(home, smtp.port, extra='retry_backoff = "0s"\n'))
    smtp.refuse("a@example.com", "451 4.3.0 try later")
    cli(*SEND, "--to", "a@example.com")
    assert json.loads(cli("resend-failed", "--json").stdout)["attempted"] == 1
    assert json.loads(cli("resend-failed", "--json").stdout) == {
        "attempted": 1, "sent": 0, "failed": 0, "error": 1, "deferred": 0, "suppressed": 0,
        "reasons": {"recipient refused: 451 4.3.0 try later": 1},
    }  # fmt: skip


def test_parallel_connections_record_each_outcome_once(home, smtp):
    cli = Cli(write_project(home, smtp.port, smtp_extra="connections = 4\n"))
    smtp.delay = 0.005
    for i in range(0, 200, 7):
        smtp.refuse(f"r{i}@example.com", "451 4.3.0 try later")
    to = [arg for i in range(200) for arg in ("--to", f"r{i}@example.com")]
    result = cli(*SEND, *to, "--json")
    report = json.loads(result.stdout)
    assert (report["attempted"], report["sent"], report["failed"]) == (200, 171, 29)
    assert sorted(smtp.recipients()) == sorted(f"r{i}@example.com" for i in range(200) if i % 7)
    rows = sql("select sent_count, failed_count, claimed_by from receiver")
    [(failures,)] = sql("select count(*) from failure")
    assert sorted({(s, f) for s, f, _ in rows}) == [(0, 1), (1, 0)]
    assert all(claim is None for _, _, claim in rows)
    assert failures == 29
    assert smtp.sessions >= 2  # really several connections
