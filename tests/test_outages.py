"""A relay outage loses nothing: a failure that says nothing about the receiver (no
connection, a refusal at MAIL FROM, a connection lost before RCPT TO) is recorded with its
class and does not count toward resend_limit; what the server said about the receiver
(RCPT TO, after DATA) counts as before. The default policy (resend_limit 2, backoff 5m) is
the one under test; time passes by moving the stored times, as a later cron run finds."""

from __future__ import annotations

import datetime as dt
import json

from conftest import Cli, backoff_passes, receivers_file, sql, write_project

from devmsg.smtpserver import CapturingServer

SEND = ("send", "--type", "t", "--subject", "s", "--text", "hello")


def receivers() -> list[tuple]:
    return sql("select status, failed_count, relay_failures from receiver order by id")


def test_a_relay_down_for_hours_leaves_its_receivers_failed_and_loses_nothing(home, closed_port):
    cli = Cli(write_project(home, closed_port))
    receivers_file(home, 3)
    assert cli(*SEND, "--receivers", "r.csv").exit_code == 3
    for _ in range(5):  # 5 + 10 + 20 + 40 + 80 minutes of backoff: over two hours down
        backoff_passes()
        assert cli("resend-failed", "--quiet").exit_code == 0
    assert receivers() == [("failed", 0, 6)] * 3  # six attempts each, none counted
    history = sql("select error, counts from failure order by id")
    assert len(history) == 18
    assert set(history) == {(f"127.0.0.1:{closed_port}: connection refused", 0)}
    stats = json.loads(cli("stats", "--json").stdout)["relay"]
    assert (stats["up"], stats["last_success_at"]) == (False, None)
    assert stats["last_failure"] == f"127.0.0.1:{closed_port}: connection refused"
    assert "devmsg_relay_up 0" in cli("stats", "--prometheus").stdout
    show = cli("show", "1").stdout
    assert "(the relay's: not counted toward resend_limit)" in show

    with CapturingServer(port=closed_port) as server:  # the relay is back
        server.refuse("r2@example.com", "550 5.1.1 no such user")
        backoff_passes()
        result = cli("resend-failed", "--json")
        assert json.loads(result.stdout)["sent"] == 2
        assert sorted(server.recipients()) == ["r0@example.com", "r1@example.com"]
    # A refusal of the receiver itself counts, as before: 5xx at RCPT is error at once.
    assert receivers() == [("sent", 0, 6), ("sent", 0, 6), ("error", 1, 6)]
    stats = json.loads(cli("stats", "--json").stdout)["relay"]
    assert stats["up"] is True and stats["last_success_at"] is not None
    assert "devmsg_relay_up 1" in cli("stats", "--prometheus").stdout


def test_a_relay_down_for_longer_than_max_age_ends_expired_not_error(home, closed_port):
    cli = Cli(write_project(home, closed_port))
    assert cli(*SEND, "--to", "ola@example.com").exit_code == 3
    for _ in range(3):
        backoff_passes()
        cli("resend-failed", "--quiet")
    old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=6)
    sql("update receiver set created_at = ?", (old,))
    backoff_passes()
    assert cli("resend-failed", "--quiet").exit_code == 0
    ((status, reason, failed_count),) = sql(
        "select status, status_reason, failed_count from receiver"
    )
    assert (status, failed_count) == ("expired", 0)
    assert reason.startswith("expired: not sent within max_age 5d")


def test_a_relay_that_refuses_the_sender_stops_the_run_within_one_batch(home):
    with CapturingServer() as server:
        cli = Cli(write_project(home, server.port, smtp_extra="connections = 1\n"))
        server.refuse("MAIL FROM", "450 4.7.1 Error: too much mail from 127.0.0.1", after=5)
        receivers_file(home, 40)
        assert cli(*SEND, "--receivers", "r.csv", "--queue").exit_code == 0
        report = json.loads(cli("resend-failed", "--json").stdout)
        assert len(server.messages) == 5
    statuses = dict(sql("select status, count(*) from receiver group by status"))
    # 40 due: batches of 5 on one connection. The first went out; at the second, the relay
    # refused the sender: that batch is failed, not counted, and nothing more was taken.
    assert statuses == {"sent": 5, "failed": 5, "not_sent": 30}
    assert (report["sent"], report["failed"], report["error"]) == (5, 5, 0)
    assert sql("select distinct failed_count from receiver") == [(0,)]
    assert sql("select distinct counts from failure") == [(0,)]
    assert sql("select count(*) from failure") == [(5,)]
    due = sql("select min(next_attempt_at) from receiver where status = 'failed'")[0][0]
    assert due is not None  # back due after the backoff, not at once
    refused = sql("select max(at) from failure")[0][0]
    assert str(due) > str(refused)


def test_552_mailbox_full_at_rcpt_is_temporary_and_never_suppressed(home):
    with CapturingServer() as server:
        cli = Cli(write_project(home, server.port))
        server.refuse("full@example.com", "552 5.2.2 mailbox full", times=1)
        assert cli(*SEND, "--to", "full@example.com").exit_code == 3
        assert receivers() == [("failed", 1, 0)]  # about this receiver: it counts
        assert sql("select count(*) from suppression") == [(0,)]
        backoff_passes()
        assert cli("resend-failed", "--quiet").exit_code == 0
        assert server.recipients() == ["full@example.com"]


def test_size_is_declared_and_a_message_over_it_is_refused_before_its_body(home):
    with CapturingServer() as server:
        cli = Cli(write_project(home, server.port))
        assert cli(*SEND, "--to", "ola@example.com").exit_code == 0
        (size,) = [o for o in server.messages[0].mail_options if o.startswith("SIZE=")]
        assert int(size[5:]) >= len(server.messages[0].content)
    with CapturingServer(size_limit=200) as small:
        cli = Cli(write_project(home, small.port))
        result = cli(*SEND, "--to", "kari@example.com")
        assert result.exit_code == 3
        assert small.messages == []
    ((status, error),) = sql(
        "select r.status, f.error from receiver r join failure f on f.receiver_id = r.id"
    )
    assert status == "error"  # it will never fit: not retried
    assert error.startswith("message refused: 552")
