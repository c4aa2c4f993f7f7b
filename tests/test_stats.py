"""`devmsg stats`: the queue at a glance, as a table, JSON, and Prometheus text that a
real parser reads."""

from __future__ import annotations

import json
import re

from conftest import Cli, mask, spawn, write_project
from prometheus_client.parser import text_string_to_metric_families

SEND = ("send", "--subject", "s", "--text", "t")


def make_history(cli, smtp):
    smtp.refuse("later@example.com", "451 4.3.0 later")
    smtp.refuse("gone@example.com", "550 5.1.1 gone")
    cli(*SEND, "--type", "news", "--to", "a@example.com", "--to", "b@example.com",
        "--to", "later@example.com", "--to", "gone@example.com")  # fmt: skip
    cli(*SEND, "--type", "digest", "--queue", "--to", "q@example.com")


def test_stats_json_and_table(home, smtp):
    cli = Cli(write_project(home, smtp.port))
    make_history(cli, smtp)
    data = json.loads(cli("stats", "--json").stdout)
    assert data["last_attempt_at"] is not None
    assert 0 <= data.pop("oldest_unsent_age_seconds") < 3600
    last_attempt = data.pop("last_attempt_at")
    relay = data.pop("relay")  # the relay took every connection: up, no failure of its own
    assert relay == {"up": True, "last_success_at": relay["last_success_at"],
                     "last_failure_at": None, "last_failure": None}  # fmt: skip
    assert relay["last_success_at"] <= last_attempt
    assert data == {
        "receivers": {"not_sent": 1, "failed": 1, "error": 1, "sent": 2, "held": 0,
                      "cancelled": 0, "expired": 0, "suppressed": 0, "bounced": 0, "sending": 0},
        "due": 1,  # the queued one; the failed one waits out its backoff
        "sent_last_hour": 2, "failed_last_hour": 2, "error_last_hour": 1,
        "sent_last_24h": 2, "failed_last_24h": 2, "error_last_24h": 1,
        "paused": False, "workers": [], "bounces_last_24h": 0,
    }  # fmt: skip
    by_type = json.loads(cli("stats", "--json", "--by", "type").stdout)["receivers"]
    none = {"held": 0, "cancelled": 0, "expired": 0, "suppressed": 0, "bounced": 0, "sending": 0}
    assert by_type == {
        "digest": {"not_sent": 1, "failed": 0, "error": 0, "sent": 0, **none},
        "news": {"not_sent": 0, "failed": 1, "error": 1, "sent": 2, **none},
    }
    table = re.sub(r"\d+(\.\d)?[smhd] old", "<age> old", mask(cli("stats").stdout))
    assert table == (
        "                  \n"
        " Status       all \n"
        " ━━━━━━━━━━━━━━━━ \n"
        " not_sent       1 \n"
        " failed         1 \n"
        " error          1 \n"
        " sent           2 \n"
        " held           0 \n"
        " cancelled      0 \n"
        " expired        0 \n"
        " suppressed     0 \n"
        " bounced        0 \n"
        " sending        0 \n"
        "                  \n"
        "Due now: 1\n"
        "Oldest not yet sent: <age> old\n"
        "Last hour: 2 sent, 2 failed attempts, 1 became error\n"
        "Last 24 hours: 2 sent, 2 failed attempts, 1 became error\n"
        "Sending is not paused\n"
        "Last attempt: <time>\n"
        "Workers: 0 live\n"
    )
    assert cli("stats", "--by", "status").exit_code == 1


def test_prometheus_text_parses_and_counts_live_claims_as_sending(home, smtp):
    cli = Cli(write_project(home, smtp.port, smtp_extra="connections = 1\n"))
    make_history(cli, smtp)
    smtp.hold_after(0)
    proc = spawn(*SEND, "--type", "news", "--to", "h1@example.com", "--to", "h2@example.com",
                 cwd=home)  # fmt: skip
    try:
        smtp.wait_until(lambda s: s.waiting == 1)
        text = cli("stats", "--prometheus", "--by", "type").stdout
    finally:
        smtp.release()
        proc.communicate(timeout=60)
    metrics = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge"
        for sample in family.samples:
            metrics[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    news = {status: metrics[("devmsg_receivers", (("status", status), ("type", "news")))]
            for status in ("not_sent", "failed", "error", "sent", "sending")}  # fmt: skip
    assert news == {"not_sent": 0, "failed": 1, "error": 1, "sent": 2, "sending": 2}
    assert metrics[("devmsg_due", ())] == 1
    assert metrics[("devmsg_sent_last_hour", ())] == 2
    assert metrics[("devmsg_failed_last_hour", ())] == 2
    assert metrics[("devmsg_paused", ())] == 0
    assert metrics[("devmsg_oldest_unsent_age_seconds", ())] >= 0
    assert metrics[("devmsg_last_attempt_timestamp_seconds", ())] > 1.7e9
