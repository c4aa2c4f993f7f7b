"""Nothing lost, nothing sent twice: claims shared by concurrent processes, a real SIGKILL
mid-run, queued mail, and resend of a receiver another process holds. Real processes, a real
SMTP server on loopback, a real SQLite file."""

from __future__ import annotations

import collections
import json
import signal
import time

from conftest import run, spawn, sql, write_project

from devmsg.store import INTERRUPTED


def statuses(home):
    return collections.Counter(s for (s,) in sql("select status from receiver"))


def make_failed(home, port, count, closed_port):
    """`count` receivers that failed once (server down), then point the config at `port`."""
    config = write_project(home, closed_port)
    (home / "r.csv").write_text("address\n" + "".join(f"r{i}@example.com\n" for i in range(count)))
    result = run("send", "--type", "t", "--subject", "s", "--text", "t", "--receivers", "r.csv",
                 cwd=home)  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert statuses(home) == {"failed": count}
    config.write_text(config.read_text().replace(f"port = {closed_port}", f"port = {port}"))
    return config


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def test_three_concurrent_resend_failed_deliver_each_receiver_exactly_once(home, smtp, closed_port):
    make_failed(home, smtp.port, 500, closed_port)
    smtp.delay = 0.005  # a few milliseconds a message, as a real server takes
    procs = [spawn("resend-failed", "--json", cwd=home) for _ in range(3)]
    # Meanwhile an application queues new mail: it must not wait on the senders.
    time.sleep(0.3)
    started = time.monotonic()
    queued = run("send", "--queue", "--type", "t", "--subject", "s", "--text", "t",
                 "--to", "late@example.com", cwd=home)  # fmt: skip
    queue_seconds = time.monotonic() - started
    outs = [p.communicate(timeout=120) for p in procs]
    assert queued.returncode == 0, queued.stderr
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
    assert queue_seconds < 1.5, queue_seconds
    assert statuses(home) == ({"sent": 501} if late else {"sent": 500, "not_sent": 1})
    print(
        f"\n3 processes, 500 receivers: {[r['sent'] for r in reports]} sent each, "
        f"{sum(delivered.values())} deliveries, 0 duplicates; send --queue {queue_seconds:.2f}s"
    )


def _kill_mid_run(home, smtp, proc, at_least):
    wait_for(lambda: len(smtp.messages) >= at_least)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    return len(smtp.messages)


def _check_recovered(home, smtp, total):
    delivered = collections.Counter(smtp.recipients())
    assert len(delivered) == total, "every receiver delivered"
    duplicates = sum(n - 1 for n in delivered.values())
    assert duplicates <= 1, "only the receiver in flight can be delivered twice"
    failures = sql("select receiver_id, error from failure")
    [unsent] = sql("select count(*) from receiver where status != 'sent'")
    interrupted = [rid for rid, error in failures if error == INTERRUPTED]
    assert len(interrupted) <= 1
    assert unsent == (0,)
    return duplicates, interrupted


def test_killed_send_loses_nothing(home, smtp):
    config = write_project(home, smtp.port, extra='claim_lease = "2s"\n')
    assert config.exists()
    (home / "r.csv").write_text("address\n" + "".join(f"k{i}@example.com\n" for i in range(150)))
    smtp.delay = 0.02
    proc = spawn("send", "--type", "t", "--subject", "s", "--text", "t", "--receivers", "r.csv",
                 cwd=home)  # fmt: skip
    wait_for(lambda: len(smtp.messages) >= 10)
    # The running send holds its receivers: cron and a resend by hand leave them alone.
    cron = run("resend-failed", "--json", cwd=home)
    assert json.loads(cron.stdout)["attempted"] == 0
    held = run("resend", "150", cwd=home)
    assert held.returncode == 1
    assert "is being delivered by" in held.stderr and "nothing was sent" in held.stderr
    listed = json.loads(
        run("list", "--json", "--status", "sending", "--limit", "0", cwd=home).stdout
    )
    assert len(listed) > 100

    before_kill = _kill_mid_run(home, smtp, proc, at_least=40)
    assert before_kill < 150
    assert json.loads(run("resend-failed", "--json", cwd=home).stdout)["attempted"] == 0
    time.sleep(2.2)  # the lease runs out
    smtp.delay = 0
    result = run("resend-failed", "--json", cwd=home)
    assert result.returncode == 0, result.stderr
    duplicates, interrupted = _check_recovered(home, smtp, 150)
    failed_ids = {rid for (rid,) in sql("select receiver_id from failure")}
    assert failed_ids == set(interrupted), "receivers whose attempt had not started: no record"
    print(
        f"\nsend killed after {before_kill}/150 delivered; recovery delivered the rest; "
        f"{duplicates} duplicate(s), {len(interrupted)} interrupted attempt(s) recorded"
    )


def test_killed_resend_failed_loses_nothing(home, smtp, closed_port):
    config = make_failed(home, smtp.port, 120, closed_port)
    config.write_text(config.read_text().replace("[smtp]", 'claim_lease = "2s"\n[smtp]'))
    smtp.delay = 0.02
    proc = spawn("resend-failed", cwd=home)
    before_kill = _kill_mid_run(home, smtp, proc, at_least=30)
    time.sleep(2.2)
    smtp.delay = 0
    assert run("resend-failed", cwd=home).returncode == 0
    duplicates, interrupted = _check_recovered(home, smtp, 120)
    if interrupted:
        [(count,)] = sql("select failed_count from receiver where id = ?", (interrupted[0],))
        assert count == 2  # the interrupted attempt counts toward resend_limit
    print(f"\nresend-failed killed after {before_kill}/120; {duplicates} duplicate(s)")


def test_queued_mail_goes_out_with_resend_failed(home, smtp):
    write_project(home, smtp.port)
    result = run("send", "--queue", "--type", "t", "--subject", "s", "--text", "t",
                 "--to", "a@example.com", "--to", "b@example.com", cwd=home)  # fmt: skip
    assert (result.returncode, result.stdout) == (
        0, "message 1: queued 2 receivers (devmsg resend-failed delivers them)\n",
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
