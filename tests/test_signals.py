"""A polite stop: SIGTERM (systemd, docker, Kubernetes) and SIGINT (Ctrl-C) end a running
devmsg with every outcome recorded and nothing held, so that a resend-failed started at
once delivers the rest. Real processes and signals; the server holds messages at DATA, so
each signal lands at a known moment."""

from __future__ import annotations

import collections
import signal

import pytest
from conftest import receivers_file, run, spawn, sql, write_project

SEND = ("send", "--type", "t", "--subject", "s", "--text", "t", "--receivers", "r.csv")


def held():
    [(count,)] = sql("select count(*) from receiver where claimed_by is not null")
    return count


def deliver_the_rest(home, smtp, total, connections):
    """A resend-failed started at once (no lease to wait for) delivers every receiver left,
    with at most one duplicate per connection."""
    result = run("resend-failed", cwd=home)
    assert result.returncode == 0, result.stderr
    delivered = collections.Counter(smtp.recipients())
    assert len(delivered) == total, "every receiver delivered"
    assert sum(n - 1 for n in delivered.values()) <= connections
    assert sql("select status, count(*) from receiver group by status") == [("sent", total)]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_exchange_finishes_it_records_and_releases_everything(home, smtp, signum, code):
    write_project(home, smtp.port, smtp_extra="connections = 2\n")
    receivers_file(home, 200, "s")
    smtp.hold_after(40)
    proc = spawn(*SEND, cwd=home)
    smtp.wait_until(lambda s: s.waiting == 2)  # both connections mid-exchange
    proc.send_signal(signum)
    smtp.release()  # the exchanges in flight finish
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    name = signal.Signals(signum).name
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"Error: stopped by {name}: attempted 42 (sent 42, failed 0, ")
    assert lines[0].endswith("158 receivers not attempted, left as they were, none held")
    assert held() == 0
    assert len(smtp.messages) == 42
    deliver_the_rest(home, smtp, 200, connections=2)


def test_server_that_never_answers_is_abandoned_after_the_grace(home, smtp):
    config = write_project(home, smtp.port, smtp_extra="connections = 1\n")
    config.write_text(config.read_text().replace("timeout = 5", "timeout = 60"))
    receivers_file(home, 30, "s")
    smtp.hold_after(5)
    proc = spawn(*SEND, cwd=home)
    smtp.wait_until(lambda s: s.waiting == 1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)  # the grace is 5 s; the server never answers
    assert proc.returncode == 143, err
    assert "attempted 6 (sent 5, failed 1, error 0); 24 receivers not attempted" in err
    assert held() == 0
    [(error, status)] = sql(
        "select f.error, r.status from failure f join receiver r on r.id = f.receiver_id"
    )
    assert status == "failed"
    assert error.startswith(
        "interrupted attempt: stopped by SIGTERM, the SMTP exchange was abandoned after 5s;"
    )
    smtp.release()  # the held message reaches the server after all: one duplicate
    deliver_the_rest(home, smtp, 30, connections=1)


def test_signal_to_resend_failed_between_receivers(home, smtp, closed_port):
    config = write_project(home, closed_port, smtp_extra="connections = 3\n")
    receivers_file(home, 120, "s")
    assert run(*SEND, cwd=home).returncode == 3
    sql("update receiver set next_attempt_at = null")  # their backoff has passed
    config.write_text(config.read_text().replace(f"port = {closed_port}", f"port = {smtp.port}"))
    smtp.hold_after(25)
    proc = spawn("resend-failed", cwd=home)
    smtp.wait_until(lambda s: s.waiting == 3)
    proc.send_signal(signal.SIGINT)
    smtp.release()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Error: stopped by SIGINT: attempted 28 (sent 28" in err
    assert held() == 0
    deliver_the_rest(home, smtp, 120, connections=3)


def test_a_second_signal_ends_at_once_and_the_leases_cover_the_rest(home, smtp):
    write_project(home, smtp.port, smtp_extra="connections = 1\n")
    receivers_file(home, 50, "s")
    smtp.hold_after(3)
    proc = spawn(*SEND, cwd=home)
    smtp.wait_until(lambda s: s.waiting == 1)
    # Two different signals, so that the kernel cannot merge them into one pending signal.
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode in (130, 143)
    assert err.startswith("Error: second SIG"), err
    assert "stopped at once; what it held is retried when its lease runs out" in err
    assert held() == 47  # its leases cover them until they run out
    smtp.release()


@pytest.mark.parametrize("after", [1, 17, 60])
def test_a_signal_at_any_moment_leaves_nothing_held(home, smtp, after):
    """No gate here: the signal lands wherever the run is (a commit, an exchange, between
    batches of claims), as soon as the server has seen `after` messages."""
    write_project(home, smtp.port, smtp_extra="connections = 2\n")
    receivers_file(home, 150, "s")
    proc = spawn(*SEND, cwd=home)
    smtp.wait_until(lambda s: len(s.messages) >= after)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130), err  # 0: it had finished before the signal came
    assert "Traceback" not in err
    assert held() == 0
    deliver_the_rest(home, smtp, 150, connections=2)
