"""`devmsg worker`, the installed command in its own process, on SQLite and PostgreSQL: it
delivers what becomes due with no other command run, honours due times, pauses and
claims, shares the work with other runs, loses nothing to SIGKILL, stops politely, keeps
its connections through a server's idle timeout, and reloads its config on SIGHUP. The
tests synchronise on its JSON log lines and on what the SMTP server has seen."""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import signal
import socket
import threading
import time

import pytest
from conftest import EXAMPLES, receivers_file, spawn, sql, write_project

from devmsg.smtpserver import CapturingServer

TEMPLATE = ["--template", "deadline_moved", "--type", "deadline_moved"]
CONTEXT = "@" + str(EXAMPLES / "templates" / "deadline_moved" / "context.json")


class WorkerProcess:
    """A running `devmsg worker --log-format json`, and the events it has logged."""

    def __init__(self, home, *args: str, env: dict | None = None) -> None:
        self.proc = spawn(
            "--config", str(home / "devmsg.toml"), "worker", "--log-format", "json", *args,
            cwd=home, env=env,
        )  # fmt: skip
        self.events: queue.Queue = queue.Queue()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({"event": "not json", "line": line})
        self.events.put(None)

    def wait_for(self, event: str, timeout: float = 60, **fields) -> dict:
        """The next event of this name (with these fields); fails if the worker ends."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self.events.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                pytest.fail(f"no {event!r} event in {timeout}s; log:\n{''.join(self.lines)}")
            if got is None:
                pytest.fail(f"the worker ended before {event!r}; log:\n{''.join(self.lines)}")
            assert got["event"] != "not json", got
            if got["event"] == event and all(got.get(k) == v for k, v in fields.items()):
                return got

    def stop(self, sig=signal.SIGTERM, timeout: float = 60) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture
def workers():
    started: list[WorkerProcess] = []

    def start(home, *args, env=None) -> WorkerProcess:
        worker = WorkerProcess(home, *args, env=env)
        started.append(worker)
        worker.wait_for("started")
        return worker

    yield start
    for worker in started:
        worker.kill()


def queue_one(cli, to: str, *extra: str):
    result = cli("send", *TEMPLATE, "--context", CONTEXT, "--to", to, "--queue", *extra)
    assert result.exit_code == 0, result.output


def nothing_held() -> None:
    assert sql("select count(*) from receiver where claimed_by is not null") == [(0,)]


def statuses() -> dict[str, int]:
    return dict(sql("select status, count(*) from receiver group by status"))


def test_a_queued_receiver_is_delivered_with_no_other_command(home, smtp, cli, workers):
    worker = workers(home)
    queue_one(cli, "ola@example.com")
    smtp.wait_until(lambda s: len(s.messages) == 1)
    batch = worker.wait_for("batch")
    assert (batch["claimed"], batch["sent"]) == (1, 1)
    worker.wait_for("idle")
    assert worker.stop() == 0
    assert worker.wait_for("stopped")["sent"] == 1
    assert smtp.recipients() == ["ola@example.com"]
    assert statuses() == {"sent": 1}
    nothing_held()
    assert sql("select count(*) from worker") == [(0,)]  # a polite stop leaves no row


def test_a_failed_receiver_is_retried_at_its_time_and_at_is_honoured(home, smtp, cli, workers):
    write_project(home, smtp.port, extra='retry_backoff = "1s"\n')
    smtp.refuse("ola@example.com", "451 4.3.0 try again later", times=1)
    worker = workers(home)
    queue_one(cli, "ola@example.com")
    assert worker.wait_for("batch")["failed"] == 1
    smtp.wait_until(lambda s: len(s.messages) == 1)
    ((failed_at,),) = sql("select at from failure")
    retried = dt.datetime.fromtimestamp(smtp.messages[0].at, dt.UTC).replace(tzinfo=None)
    assert retried >= _naive(failed_at) + dt.timedelta(seconds=1 * 0.8)  # after its backoff

    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    queue_one(cli, "kari@example.com", "--at", at.isoformat(timespec="seconds"))
    smtp.wait_until(lambda s: len(s.messages) == 2)
    assert smtp.messages[1].at >= at.replace(microsecond=0).timestamp()
    assert worker.stop() == 0
    assert statuses() == {"sent": 2}


def _naive(value) -> dt.datetime:
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=None)


def test_stats_lists_live_and_gone_workers(home, smtp, cli, workers):
    from prometheus_client.parser import text_string_to_metric_families

    live = workers(home, "--type", "urgent")
    gone = workers(home)
    gone.kill()  # SIGKILL: its row stays, and stops being refreshed
    old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=10)
    sql("update worker set last_seen_at = ? where pid = ?", (old, gone.proc.pid))
    data = json.loads(cli("stats", "--json").stdout)["workers"]
    assert [(w["pid"], w["live"], w["type"]) for w in data] == [
        (gone.proc.pid, False, None),
        (live.proc.pid, True, "urgent"),
    ]
    assert data[1]["last_seen_age_seconds"] < data[0]["last_seen_age_seconds"]
    text = cli("stats").stdout
    assert "Workers: 1 live, 1 gone" in text and f":{live.proc.pid}:" in text
    metrics = {
        (s.name, s.labels.get("worker")): s.value
        for family in text_string_to_metric_families(cli("stats", "--prometheus").stdout)
        for s in family.samples
    }
    assert metrics[("devmsg_workers", None)] == 1
    seen = metrics[("devmsg_worker_last_seen_timestamp_seconds", data[0]["name"])]
    assert seen == pytest.approx(old.replace(tzinfo=dt.UTC).timestamp(), abs=1)
    assert live.stop() == 0


def test_pause_holds_and_resume_delivers(home, smtp, cli, workers):
    worker = workers(home)
    assert cli("pause", "--reason", "relay maintenance").exit_code == 0
    worker.wait_for("paused", reason="relay maintenance")
    queue_one(cli, "ola@example.com")
    assert cli("stats", "--json").exit_code == 0  # another look meanwhile: still not sent
    resumed_at = time.time()
    assert cli("resume").exit_code == 0
    worker.wait_for("resumed")
    smtp.wait_until(lambda s: len(s.messages) == 1)
    assert smtp.messages[0].at >= resumed_at  # held while paused
    assert worker.stop() == 0
    assert statuses() == {"sent": 1}


def test_two_workers_and_a_resend_failed_send_each_receiver_once(home, smtp, cli, workers):
    from conftest import run

    count = 120
    first, second = workers(home), workers(home, "--connections", "2")
    cron = threading.Thread(target=lambda: run("resend-failed", "--quiet", cwd=home))
    path = receivers_file(home, count)
    result = cli("send", *TEMPLATE, "--context", CONTEXT, "--receivers", str(path), "--queue")
    assert result.exit_code == 0, result.output
    cron.start()
    smtp.wait_until(lambda s: len(s.messages) >= count)
    cron.join(60)
    assert first.stop() == 0 and second.stop() == 0
    assert sorted(smtp.recipients()) == sorted(f"r{i}@example.com" for i in range(count))
    assert statuses() == {"sent": count}
    nothing_held()


def test_a_killed_worker_loses_nothing(home, smtp, cli, workers):
    write_project(home, smtp.port, extra='claim_lease = "3s"\n')
    smtp.hold_after(2)  # two go through; the worker then waits at DATA for the third
    doomed = workers(home, "--connections", "1")
    path = receivers_file(home, 10)
    result = cli("send", *TEMPLATE, "--context", CONTEXT, "--receivers", str(path), "--queue")
    assert result.exit_code == 0, result.output
    smtp.wait_until(lambda s: s.waiting == 1)
    doomed.kill()  # SIGKILL: no polite stop, its claims stay until the lease runs out
    assert sql("select count(*) from worker") == [(1,)]
    smtp.release()
    heir = workers(home)
    smtp.wait_until(lambda s: len(set(s.recipients())) == 10)
    assert heir.stop() == 0
    assert statuses() == {"sent": 10}
    nothing_held()
    # the one in flight when it died is recorded as an interrupted attempt
    reasons = [r for (r,) in sql("select error from failure")]
    assert reasons and all(r.startswith("interrupted attempt") for r in reasons)


def test_sigterm_mid_burst_stops_politely(home, smtp, cli, workers):
    smtp.hold_after(5)
    worker = workers(home, "--connections", "2")
    path = receivers_file(home, 60)
    result = cli("send", *TEMPLATE, "--context", CONTEXT, "--receivers", str(path), "--queue")
    assert result.exit_code == 0, result.output
    smtp.wait_until(lambda s: s.waiting >= 1)
    worker.proc.send_signal(signal.SIGTERM)
    worker.wait_for("stopping", reason="SIGTERM")
    smtp.release()
    assert worker.proc.wait(60) == 0
    nothing_held()
    sent = statuses().get("sent", 0)
    assert sent == len(smtp.messages) and sent < 60
    assert statuses().get("not_sent", 0) == 60 - sent  # left as they were, none lost


def test_a_server_that_closes_idle_connections_causes_no_failure(home, cli, workers):
    with CapturingServer(idle_timeout=1.0) as server:
        write_project(home, server.port)
        worker = workers(home, "--connections", "1")
        queue_one(cli, "ola@example.com")
        server.wait_until(lambda s: len(s.messages) == 1)
        server.wait_until(lambda s: s.closed >= 2)  # the start-up probe, then ours, idle
        queue_one(cli, "kari@example.com")
        server.wait_until(lambda s: len(s.messages) == 2)
        assert worker.stop() == 0
    assert statuses() == {"sent": 2}
    assert sql("select count(*) from failure") == [(0,)]


def test_sighup_reloads_and_a_broken_config_keeps_the_old(home, smtp, cli, workers):
    config = write_project(home, smtp.port, smtp_extra="connections = 1\n")
    worker = workers(home)
    config.write_text(config.read_text().replace("connections = 1", "connections = 3"))
    worker.proc.send_signal(signal.SIGHUP)
    assert worker.wait_for("reloaded")["connections"] == 3
    smtp.hold_after(0)  # every connection waits at DATA: how many are there?
    path = receivers_file(home, 6)
    result = cli("send", *TEMPLATE, "--context", CONTEXT, "--receivers", str(path), "--queue")
    assert result.exit_code == 0, result.output
    smtp.wait_until(lambda s: s.waiting == 3)  # with the old config, one
    smtp.release()
    smtp.wait_until(lambda s: len(s.messages) == 6)

    good = config.read_text()
    config.write_text(good.replace("[smtp]", "[smtp"))
    worker.proc.send_signal(signal.SIGHUP)
    failed = worker.wait_for("reload failed")
    assert "kept the running config" in failed["error"] and "devmsg.toml" in failed["error"]
    config.write_text(good)  # for this test's own send; the worker was not told
    queue_one(cli, "ola@example.com")
    smtp.wait_until(lambda s: len(s.messages) == 7)
    assert worker.stop() == 0
    assert statuses() == {"sent": 7}


def test_a_relay_that_is_down_is_logged_once_and_its_return_too(home, closed_port, cli, workers):
    config = write_project(home, closed_port, extra='retry_backoff = "1s"\n')
    config.write_text(config.read_text().replace("resend_limit = 2", "resend_limit = 5"))
    worker = workers(home, "--connections", "1")
    queue_one(cli, "ola@example.com")
    failed = worker.wait_for("connection failed")
    assert failed["error"] == f"127.0.0.1:{closed_port}: connection refused"
    assert worker.wait_for("batch")["failed"] == 1
    with CapturingServer(port=closed_port) as server:  # the relay is back, same port
        server.wait_until(lambda s: len(s.messages) == 1)
        worker.wait_for("connection restored")
        assert worker.stop() == 0
    assert statuses() == {"sent": 1}
    assert sum('"connection failed"' in line for line in worker.lines) == 1


@pytest.mark.sqlite_only
def test_systemd_notifications(home, config_path, workers, tmp_path):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(30)
        env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
        worker = workers(home, env=env)
        got: list[str] = []
        while not {"READY=1", "WATCHDOG=1"} <= set(got) or not any(
            g.startswith("STATUS=idle") for g in got
        ):
            got.extend(sock.recv(4096).decode().split("\n"))
        assert "STATUS=idle, 0 due" in got
        assert worker.stop() == 0
        while "STOPPING=1" not in got:
            got.extend(sock.recv(4096).decode().split("\n"))
    assert os.path.exists(path)


def test_type_takes_only_receivers_of_that_type(home, smtp, cli, workers):
    worker = workers(home, "--type", "password_reset")
    result = cli("send", "--template", "deadline_moved", "--type", "deadline_moved",
                 "--context", CONTEXT, "--to", "later@example.com", "--queue")  # fmt: skip
    assert result.exit_code == 0, result.output
    result = cli("send", "--template", "deadline_moved", "--type", "password_reset",
                 "--context", CONTEXT, "--to", "now@example.com", "--queue")  # fmt: skip
    assert result.exit_code == 0, result.output
    smtp.wait_until(lambda s: len(s.messages) == 1)  # committed after the other one
    assert worker.stop() == 0
    assert smtp.recipients() == ["now@example.com"]
    assert sql("select address, status from receiver order by id") == [
        ("later@example.com", "not_sent"), ("now@example.com", "sent"),
    ]  # fmt: skip


def test_a_rate_limited_worker_paces_and_never_defers(home, smtp, cli, workers):
    from test_limits import busiest_window, limits

    write_project(home, smtp.port, extra=limits('"*" = ["2/s"]'))
    worker = workers(home)
    path = receivers_file(home, 6)
    result = cli("send", *TEMPLATE, "--context", CONTEXT, "--receivers", str(path), "--queue")
    assert result.exit_code == 0, result.output
    smtp.wait_until(lambda s: len(s.messages) == 6)
    assert worker.stop() == 0
    assert busiest_window([m.at for m in smtp.messages], 1.0) <= 2
    assert not any('"deferred"' in line for line in worker.lines)
    assert statuses() == {"sent": 6}


def test_the_workers_limiter_waits_where_a_one_shot_run_defers(home, config_path):
    """Past PACE_LIMIT (a minute) a one-shot run defers a receiver; the worker waits."""
    from devmsg import Outbox
    from devmsg.limits import Limiter
    from devmsg.rates import parse_limits

    hourly = parse_limits({"*": "1/h"}, "test")
    with Outbox.open(config_path):
        one_shot, worker = Limiter(hourly, "a", 60), Limiter(hourly, "b", 60, defer=False)
        first = worker.admit(["x@example.com"], worker.holder())
        assert first.go == [0]
        later = one_shot.admit(["y@example.com"], one_shot.holder())
        assert later.defer and not later.wait
        paced = worker.admit(["z@example.com"], worker.holder())
        assert paced.wait == [0] and not paced.defer and 0 < paced.pause <= 1.0


def test_a_relay_refusing_the_sender_makes_the_worker_wait_out_the_backoff(home, cli, workers):
    with CapturingServer() as server:
        write_project(home, server.port, extra='retry_backoff = "2s"\n',
                      smtp_extra="connections = 1\n")  # fmt: skip
        server.refuse("MAIL FROM", "450 4.7.1 Error: too much mail from 127.0.0.1", times=1)
        worker = workers(home)
        queue_one(cli, "ola@example.com")
        batch = worker.wait_for("batch")
        assert (batch["claimed"], batch["failed"]) == (1, 1)
        server.wait_until(lambda s: len(s.messages) == 1)  # after the backoff, by itself
        refused_at = sql("select at from failure")[0][0]
        retried = dt.datetime.fromtimestamp(server.messages[0].at, dt.UTC).replace(tzinfo=None)
        assert retried >= _naive(refused_at) + dt.timedelta(seconds=2 * 0.8)
        assert worker.stop() == 0
    assert sql("select status, failed_count, relay_failures from receiver") == [("sent", 0, 1)]


@pytest.mark.postgres_only
def test_a_store_that_goes_away_ends_the_worker_with_one_line(home, smtp, cli, workers):
    import psycopg
    from conftest import PG_ADMIN, STORE

    worker = workers(home)
    worker.wait_for("idle")
    name = STORE["url"].rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:  # as a restart of PostgreSQL
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = %s", (name,))  # fmt: skip
    queue_one(cli, "ola@example.com")  # a NOTIFY the worker cannot take any more
    assert worker.proc.wait(60) == 1
    errors = [line for line in worker.lines if not line.startswith("{")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {STORE['url']}: ")
    # Nothing was lost: the next worker (systemd's Restart=on-failure) delivers it.
    again = workers(home)
    smtp.wait_until(lambda s: s.recipients() == ["ola@example.com"])
    assert again.stop() == 0
