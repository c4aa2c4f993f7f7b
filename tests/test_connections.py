"""Several connections by default, and they adapt: a server that refuses the extra ones
(421 at the greeting, or a connection closed at once) fails no receiver while another
connection of the same run works. Only when no connection can be had is it a failure."""

from __future__ import annotations

import collections
import json

import pytest
from conftest import Cli, write_project
from proxy import DelayProxy

SEND = ("send", "--type", "t", "--subject", "s", "--text", "t", "--json")


def receivers(count):
    return [arg for i in range(count) for arg in ("--to", f"c{i}@example.com")]


def test_four_connections_by_default(home, smtp):
    with DelayProxy(smtp.port, delay=0.002) as proxy:
        cli = Cli(write_project(home, proxy.port))
        smtp.hold_after(0)
        import threading

        result = {}
        thread = threading.Thread(target=lambda: result.update(r=cli(*SEND, *receivers(40))))
        thread.start()
        smtp.wait_until(lambda s: s.waiting == 4)  # four exchanges at once
        smtp.release()
        thread.join(timeout=60)
    assert result["r"].exit_code == 0
    assert len(smtp.messages) == 40


@pytest.mark.parametrize("refusal", [b"421 4.7.0 too many connections\r\n", b""],
                         ids=["421-greeting", "closed"])  # fmt: skip
def test_refused_extra_connections_fail_nothing(home, smtp, refusal):
    with DelayProxy(smtp.port, max_connections=1, refuse_with=refusal) as proxy:
        cli = Cli(write_project(home, proxy.port, smtp_extra="connections = 4\n"))
        result = cli(*SEND, *receivers(120))
        assert proxy.refused >= 1  # the server did refuse some
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sent"] == 120
    delivered = collections.Counter(smtp.recipients())
    assert len(delivered) == 120 and set(delivered.values()) == {1}
    shown = json.loads(cli("list", "--json", "--status", "failed", "--status", "error").stdout)
    assert shown == []


def test_no_connection_at_all_fails_the_batch(home, closed_port):
    cli = Cli(write_project(home, closed_port, smtp_extra="connections = 4\n"))
    result = cli(*SEND, *receivers(8))
    assert result.exit_code == 3
    assert json.loads(result.stdout)["failed"] == 8
