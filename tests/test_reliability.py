"""Nothing lost, nothing sent twice: claims shared by concurrent processes, a real SIGKILL
mid-run, queued mail, and resend of a receiver another process holds. Real processes, a real
SMTP server on loopback, a real SQLite file or PostgreSQL database, the default
`retry_backoff`. The tests synchronise on what the server has seen (it holds messages at
DATA until told), never on how fast the machine is."""

from __future__ import annotations

import collections
import datetime as dt
import json
import signal
import time

from conftest import backoff_passes, run, spawn, sql, write_project

from devmsg.store import INTERRUPTED


def statuses(home):
    return collections.Counter(s for (s,) in sql("select status from receiver"))


def make_failed(home, port, count, closed_port, extra=""):
    """`count` receivers that failed once (server down), due again (their backoff passed),
    then point the config at `port`."""
    config = write_project(home, closed_port, extra=extra, smtp_extra="connections = 1\n")
    (home / "r.csv").write_text("address\n" + "".join(f"r{i}@example.com\n" for i in range(count)))
    result = run("send", "--type", "t", "--subject", "s", "--text", "t", "--receivers", "r.csv",
                 cwd=home)  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert statuses(home) == {"failed": count}
    backoff_passes()
    config.write_text(config.read_text().replace(f"port = {closed_port}", f"port = {port}"))
    return config


def held():
    [(count,)] = sql("select count(*) from receiver where claimed_by is not null")
    return count


def wait_out_leases():
    """Sleep until every stored lease has run out (the leases are 2 s in these tests)."""
    [(latest,)] = sql("select max(lease_until) from receiver")
    if latest is not None:
        latest = dt.datetime.fromisoformat(str(latest)).replace(tzinfo=dt.UTC)
        time.sleep(max(0.0, (latest - dt.datetime.now(dt.UTC)).total_seconds()) + 0.2)


def test_three_concurrent_resend_failed_deliver_each_receiver_exactly_once(home, smtp, closed_port):
    make_failed(home, smtp.port, 500, closed_port)
    smtp.hold_after(30)
    procs = [spawn("resend-failed", "--json", cwd=home) for _ in range(3)]
    # All three are in the middle of an SMTP exchange, held by the server ...
    smtp.wait_until(lambda s: s.waiting == 3)
    # ... and meanwhile an application queues new mail: it must not wait on the senders.
    started = time.monotonic()
    queued = run("send", "--queue", "--type", "t", "--subject", "s", "--text", "t",
                 "--to", "late@example.com", cwd=home)  # fmt: skip
    queue_seconds = time.monotonic() - started
    assert queued.returncode == 0, queued.stderr
    assert smtp.waiting == 3, "the queue went in while all three senders were mid-exchange"
    smtp.release()
    outs = [p.communicate(timeout=120) for p in procs]
    reports = []
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err
        reports.append(json.loads(out))
    delivered = collections.Counter(smtp.recipients())
    late = delivered.pop("late@example.com", 0)  # queued meanwhile: a run may take it too
    assert len(delivered) == 500 and set(delivered.values()) == {1}, "each exactly once"
    assert all(r["attempted"] > 0 for r in reports), reports  # all three took part
    assert sum(r["sent"] for r in reports) == 500 + late
    assert statuses(home) == ({"sent": 501} if late else {"sent": 500, "not_sent": 1})
    print(
        f"\n3 processes, 500 receivers: {[r['sent'] for r in reports]} sent each, "
        f"{sum(delivered.values())} deliveries, 0 duplicates; send --queue {queue_seconds:.2f}s"
    )


def _kill_in_flight(smtp, proc, after):
    """SIGKILL `proc` while the server holds its exchange after `after` deliveries; the
    server then takes the held message (as a server may, the sender never hearing so)."""
    smtp.hold_after(after)
    smtp.wait_until(lambda s: s.waiting == 1)
    assert len(smtp.messages) == after
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    smtp.release()


def _check_recovered(smtp, total):
    """One resend-failed after the kill left every receiver sent, the one in flight at
    most twice, and it recorded as one interrupted attempt, which does not count toward the
    limit (it says nothing about the receiver)."""
    delivered = collections.Counter(smtp.recipients())
    assert len(delivered) == total, "every receiver delivered"
    duplicates = sum(n - 1 for n in delivered.values())
    assert duplicates <= 1, "only the receiver in flight can be delivered twice"
    [(unsent,)] = sql("select count(*) from receiver where status != 'sent'")
    assert unsent == 0
    interrupted = [rid for rid, error in sql("select receiver_id, error from failure")
                   if error == INTERRUPTED]  # fmt: skip
    assert len(interrupted) == 1
    return duplicates, interrupted[0]


def test_killed_send_loses_nothing(home, smtp):
    write_project(home, smtp.port, extra='claim_lease = "2s"\n', smtp_extra="connections = 1\n")
    (home / "r.csv").write_text("address\n" + "".join(f"k{i}@example.com\n" for i in range(150)))
    smtp.hold_after(40)
    proc = spawn("send", "--type", "t", "--subject", "s", "--text", "t", "--receivers", "r.csv",
                 cwd=home)  # fmt: skip
    smtp.wait_until(lambda s: s.waiting == 1)
    # The running send holds its receivers: cron and a resend by hand leave them alone.
    cron = run("resend-failed", "--json", cwd=home)
    assert json.loads(cron.stdout)["attempted"] == 0
    busy = run("resend", "150", cwd=home)
    assert busy.returncode == 1
    assert "is being delivered by" in busy.stderr and "nothing was sent" in busy.stderr
    listed = json.loads(
        run("list", "--json", "--status", "sending", "--limit", "0", cwd=home).stdout
    )
    assert len(listed) == 110  # 40 delivered; the 41st in flight and the rest still held

    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    smtp.release()
    wait_out_leases()
    result = run("resend-failed", "--json", cwd=home)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 110
    duplicates, interrupted = _check_recovered(smtp, 150)
    assert {rid for (rid,) in sql("select receiver_id from failure")} == {interrupted}, (
        "receivers whose attempt had not started: no record"
    )
    print(f"\nsend killed after 40/150 delivered; recovery delivered the rest; "
          f"{duplicates} duplicate(s), 1 interrupted attempt recorded")  # fmt: skip


def test_killed_resend_failed_loses_nothing(home, smtp, closed_port):
    make_failed(home, smtp.port, 120, closed_port, extra='claim_lease = "2s"\n')
    proc = spawn("resend-failed", cwd=home)
    _kill_in_flight(smtp, proc, after=30)
    wait_out_leases()
    result = run("resend-failed", "--json", cwd=home)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 90
    duplicates, interrupted = _check_recovered(smtp, 120)
    # Its first failure (the closed port) and the interrupted attempt are both the relay's:
    # neither counts toward resend_limit.
    counts = sql("select failed_count, relay_failures from receiver where id = ?", (interrupted,))
    assert counts == [(0, 2)]
    print(f"\nresend-failed killed after 30/120; {duplicates} duplicate(s)")


def test_queued_mail_goes_out_with_resend_failed(home, smtp):
    write_project(home, smtp.port)
    result = run("send", "--queue", "--type", "t", "--subject", "s", "--text", "t",
                 "--to", "a@example.com", "--to", "b@example.com", cwd=home)  # fmt: skip
    assert (result.returncode, result.stdout) == (
        0, "message 1: queued 2 receivers (devmsg worker or resend-failed delivers them)\n",
    )  # fmt: skip
    assert smtp.messages == []
    listed = json.loads(run("list", "--json", cwd=home).stdout)
    assert [(r["status"], r["next_attempt_at"] is not None) for r in listed] == [
        ("not_sent", True), ("not_sent", True),
    ]  # fmt: skip
    result = run("resend-failed", cwd=home)
    assert result.stdout == "resend-failed: attempted 2, sent 2, failed 0, error 0\n"
    assert sorted(smtp.recipients()) == ["a@example.com", "b@example.com"]
    assert statuses(home) == {"sent": 2}
