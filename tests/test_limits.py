"""Shared rate limits ([rate_limits]): exact sliding windows across processes, deferral past a
minute's wait, domain scopes, and `devmsg limits`. Against the real server, SQLite and
PostgreSQL."""

from __future__ import annotations

import bisect
import datetime as dt
import json

from conftest import Cli, mask, receivers_file, spawn, sql, write_project

SEND = ("send", "--type", "t", "--subject", "s", "--text", "hello")


def limits(rates: str) -> str:
    return f"[rate_limits]\n{rates}\n"


def busiest_window(times: list[float], seconds: float) -> int:
    """The most messages the server received in any window of `seconds`."""
    times = sorted(times)
    return max(bisect.bisect_left(times, t + seconds) - i for i, t in enumerate(times))


def test_four_processes_share_one_limit_exactly(home, smtp):
    # 160 at 40/s: four seconds of pacing shows the same sharing as 600 at 20/s did in 30.
    config = write_project(home, smtp.port, extra=limits('"*" = ["40/s"]'))
    cli = Cli(config)
    receivers_file(home, 160)
    assert cli(*SEND, "--receivers", "r.csv", "--queue").exit_code == 0

    procs = [spawn("resend-failed", "--json", cwd=home) for _ in range(4)]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))

    assert sum(r["sent"] for r in reports) == 160
    assert sum(r["deferred"] for r in reports) == 0  # the wait was always under a minute
    assert all(r["sent"] for r in reports)  # every process took a share
    assert sorted(smtp.recipients()) == sorted(f"r{i}@example.com" for i in range(160))
    times = [m.at for m in smtp.messages]
    assert busiest_window(times, 1.0) <= 40
    assert busiest_window(times, 1.0) >= 20  # paced to the limit, not far below it
    assert sql("select count(*) from failure") == [(0,)]


def test_a_quota_used_up_defers_the_rest_until_it_frees(home, smtp):
    cli = Cli(write_project(home, smtp.port, extra=limits('"*" = ["5/24h"]')))
    receivers_file(home, 8)
    before = dt.datetime.now(dt.UTC)

    result = cli(*SEND, "--receivers", "r.csv", "--json")

    assert result.exit_code == 0, result.output  # nothing failed: three wait for the quota
    report = json.loads(result.stdout)
    assert (report["attempted"], report["sent"], report["deferred"]) == (5, 5, 3)
    assert len(smtp.messages) == 5
    waiting = json.loads(cli("list", "--status", "not_sent", "--json").stdout)
    assert len(waiting) == 3
    for row in waiting:  # due when the first permits leave the 24-hour window
        due = dt.datetime.fromisoformat(row["next_attempt_at"])
        assert before + dt.timedelta(hours=24) - dt.timedelta(seconds=2) <= due
        assert due <= dt.datetime.now(dt.UTC) + dt.timedelta(hours=24, seconds=2)
        assert (row["failed_count"], row["status"]) == (0, "not_sent")
    assert sql("select count(*) from failure") == [(0,)]

    (usage,) = json.loads(cli("limits", "--json").stdout)
    assert (usage["scope"], usage["limit"], usage["used"], usage["available"]) == (
        "*", "5/24h", 5, 0)  # fmt: skip
    assert usage["window_seconds"] == 86400
    assert dt.datetime.fromisoformat(usage["next_permit_at"]) > before + dt.timedelta(hours=23)

    # A cron run in the meantime attempts nothing and fails nothing.
    again = json.loads(cli("resend-failed", "--json").stdout)
    assert (again["attempted"], again["deferred"]) == (0, 0)

    # A day later (the store's clocks moved back by a day): the rest goes.
    sql("update rate_permit set taken = taken - 86401, until = until - 86401")
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=1)
    sql("update receiver set next_attempt_at = ? where status = 'not_sent'", (past,))
    result = cli("resend-failed", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["sent"] == 3
    assert sorted(smtp.recipients()) == sorted(f"r{i}@example.com" for i in range(8))


def test_a_domain_limit_leaves_other_domains_at_full_speed(home, smtp):
    cli = Cli(write_project(home, smtp.port, extra=limits('"slow.example" = ["1/1h"]')))
    to = ["a@slow.example", "b@mx.SLOW.example", "c@slow.example"]
    to += [f"r{i}@example.com" for i in range(10)] + ["d@notslow.example"]
    (home / "r.csv").write_text("address\n" + "\n".join(to) + "\n")

    result = cli(*SEND, "--receivers", "r.csv", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["sent"], report["deferred"], report["failed"]) == (12, 2, 0)
    got = smtp.recipients()
    assert len([r for r in got if r.lower().endswith("slow.example")]) == 2  # 1 + notslow
    assert "d@notslow.example" in got
    assert all(f"r{i}@example.com" in got for i in range(10))
    # The receivers it deferred are not taken again in this window by a cron run.
    assert json.loads(cli("resend-failed", "--json").stdout)["attempted"] == 0


def test_limits_shows_each_limit(home, smtp):
    rates = '"*" = ["14/h", "50000/24h"]\n"example.com" = "2/m"'
    cli = Cli(write_project(home, smtp.port, extra=limits(rates)))
    assert cli(*SEND, "--to", "a@example.com", "--to", "b@example.com").exit_code == 0

    result = cli("limits")

    assert result.exit_code == 0
    lines = [line.rstrip() for line in mask(result.stdout).splitlines()]
    assert lines[2] == " " + "━" * (len(lines[2]) - 1)
    assert lines[:2] + lines[3:] == [
        "",
        " Scope          Limit         Used   Free  Next permit",
        " all receivers  14/h          2/14     12  now",
        " all receivers  50000/24h  2/50000  49998  now",
        " example.com    2/m            2/2      0  <time>",
        "",
    ]
    data = json.loads(cli("limits", "--json").stdout)
    assert [(d["scope"], d["limit"], d["used"], d["available"]) for d in data] == [
        ("*", "14/h", 2, 12), ("*", "50000/24h", 2, 49998), ("example.com", "2/m", 2, 0),
    ]  # fmt: skip


def test_no_limits_configured(home, smtp, cli):
    result = cli("limits")
    assert (result.exit_code, result.stdout) == (
        0, "No rate limits configured ([rate_limits] in devmsg.toml).\n")  # fmt: skip
    assert cli("limits", "--json").stdout == "[]\n"


def test_a_bad_rate_is_one_line_naming_the_key(home, smtp):
    for rate, says in (
        ('"*" = ["14/x"]', "key rate_limits.'*': not a rate: '14/x'"),
        ('"example.no" = ["0/s"]', "key rate_limits.'example.no': not a rate: '0/s'"),
        ('"example.no" = [14]', "key rate_limits.'example.no': not a rate: 14"),
    ):
        cli = Cli(write_project(home, smtp.port, extra=limits(rate)))
        result = cli("limits")
        assert result.exit_code == 1
        assert says in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
