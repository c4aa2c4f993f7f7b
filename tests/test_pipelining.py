"""RFC 2920 PIPELINING: MAIL FROM, RCPT TO and DATA leave in one write when the server
offers the extension, and in lockstep when it does not; the failure classes are the same
either way, for refusals in the middle of a batch. A recording proxy between devmsg and
the real server shows what was written."""

from __future__ import annotations

import json

import pytest
from conftest import Cli, write_project
from proxy import DelayProxy

from devmsg.smtpserver import CapturingServer

SEND = ("send", "--type", "t", "--subject", "s", "--text", "t", "--json")


@pytest.fixture(params=[True, False], ids=["pipelining", "lockstep"])
def server(request):
    with CapturingServer(pipelining=request.param) as smtp:
        yield smtp


@pytest.fixture
def proxy(server):
    with DelayProxy(server.port) as proxy:
        yield proxy


def commands_in_one_write(proxy) -> bool:
    return any(b"MAIL FROM:" in c and b"RCPT TO:" in c and c.endswith(b"DATA\r\n")
               for c in proxy.client_chunks)  # fmt: skip


def statuses(cli):
    return {r["to"]: r["status"] for r in json.loads(cli("list", "--json").stdout)}


def test_envelope_goes_in_one_write_only_when_offered(home, server, proxy):
    cli = Cli(write_project(home, proxy.port))
    to = [arg for i in range(5) for arg in ("--to", f"p{i}@example.com")]
    assert cli(*SEND, *to).exit_code == 0
    assert commands_in_one_write(proxy) == server.pipelining
    assert sorted(server.recipients()) == [f"p{i}@example.com" for i in range(5)]
    lines = b"".join(proxy.client_chunks).count(b"\r\n.\r\n")
    assert lines == 5  # one message each, nothing sent twice


@pytest.mark.parametrize(
    ("rule", "reply", "status", "error"),
    [
        ("r3@example.com", "550 5.1.1 no such user", "error", "recipient refused: 550 5.1.1 no such user"),
        ("r3@example.com", "451 4.2.1 mailbox busy", "failed", "recipient refused: 451 4.2.1 mailbox busy"),
        ("DATA r3@example.com", "554 5.6.0 rejected", "error", "message refused: 554 5.6.0 rejected"),
        ("DATA r3@example.com", "452 4.3.1 out of space", "failed", "message refused: 452 4.3.1 out of space"),
    ],
)  # fmt: skip
def test_refusal_in_the_middle_of_a_batch(home, server, proxy, rule, reply, status, error):
    cli = Cli(write_project(home, proxy.port))
    server.refuse(rule, reply, times=1)
    to = [arg for i in range(6) for arg in ("--to", f"r{i}@example.com")]
    result = cli(*SEND, *to)
    assert result.exit_code == 3
    got = statuses(cli)
    assert got.pop("r3@example.com") == status
    assert set(got.values()) == {"sent"}
    shown = [r for r in json.loads(cli("list", "--json").stdout) if r["status"] != "sent"]
    detail = json.loads(cli("show", str(shown[0]["id"]), "--json").stdout)
    assert [f["error"] for f in detail["failures"]] == [error]
    assert "r3@example.com" not in server.recipients()
    assert commands_in_one_write(proxy) == server.pipelining


def test_a_reply_that_never_comes_is_a_timeout(home, server):
    config = write_project(home, server.port)
    config.write_text(config.read_text().replace("timeout = 5", "timeout = 1"))
    cli = Cli(config)
    server.hold_after(0)  # the reply to the message never comes
    try:
        result = cli(*SEND, "--to", "slow@example.com")
    finally:
        server.release()
    assert result.exit_code == 3
    [row] = json.loads(cli("list", "--json").stdout)
    assert row["status"] == "failed"
    detail = json.loads(cli("show", str(row["id"]), "--json").stdout)
    assert detail["failures"][0]["error"] == f"127.0.0.1:{server.port}: timed out after 1s"
