"""pause and resume: stored in the store, so every process and host sees it at once."""

from __future__ import annotations

import json
import re
import time

from conftest import Cli, backoff_passes, receivers_file, run, spawn, write_project

SEND = ("send", "--type", "t", "--subject", "s", "--text", "t")


def test_pause_send_resend_and_resume(home, smtp):
    cli = Cli(write_project(home, smtp.port))
    paused = cli("pause", "--reason", "relay maintenance")
    assert re.fullmatch(
        r"sending is paused by \S+@\S+ since \d{4}-\d\d-\d\d \d\d:\d\d CET: relay maintenance\n",
        paused.stdout,
    ), paused.stdout
    assert cli("pause").stdout == paused.stdout  # alone: who paused it, and since when

    result = cli(*SEND, "--to", "a@example.com", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["paused"] is True
    assert json.loads(result.stdout)["queued"] is True
    human = cli(*SEND, "--to", "b@example.com")
    assert (
        human.stdout
        == "message 2: queued 1 receiver (devmsg worker or resend-failed delivers them)\n"
    )
    assert human.stderr == "Not sent now: " + paused.stdout
    assert smtp.messages == []

    cron = cli("resend-failed")
    assert (cron.exit_code, cron.stdout) == (0, paused.stdout)
    assert cli("resend-failed", "--quiet").output == ""
    by_hand = cli("resend", "1")
    assert by_hand.exit_code == 1
    assert by_hand.stderr.startswith("Error: sending is paused by ")
    assert by_hand.stderr.endswith("nothing was sent (--force sends anyway)\n")
    assert cli("stats", "--json").stdout.count('"paused": true') == 1
    assert cli("resend", "1", "--force").exit_code == 0
    assert smtp.recipients() == ["a@example.com"]

    assert cli("resume").stdout.startswith("resumed: sending was paused by ")
    assert cli("resume").stdout == "sending was not paused\n"
    assert cli("resend-failed").stdout == "resend-failed: attempted 1, sent 1, failed 0, error 0\n"


def test_pause_for_ends_by_itself(home, smtp):
    cli = Cli(write_project(home, smtp.port))
    assert " until " in cli("pause", "--for", "1s").stdout
    assert json.loads(cli("stats", "--json").stdout)["paused"] is True
    time.sleep(1.2)
    assert json.loads(cli("stats", "--json").stdout)["paused"] is False
    assert cli("pause", "--for", "soon").exit_code == 1


def test_pause_stops_a_running_resend_failed_within_a_batch(home, smtp, closed_port):
    config = write_project(home, closed_port, smtp_extra="connections = 1\n")
    receivers_file(home, 120, "p")
    assert run(*SEND, "--receivers", "r.csv", cwd=home).returncode == 3
    backoff_passes()
    config.write_text(config.read_text().replace(f"port = {closed_port}", f"port = {smtp.port}"))
    smtp.hold_after(3)
    proc = spawn("resend-failed", "--json", cwd=home)
    smtp.wait_until(lambda s: s.waiting == 1)
    assert run("pause", cwd=home).returncode == 0
    smtp.release()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    attempted = json.loads(out)["attempted"]
    assert 4 <= attempted <= 15  # the batch it had (120 / 8 = 15), not one more
    assert len(smtp.messages) == attempted
    assert run("resume", cwd=home).returncode == 0
    rest = json.loads(run("resend-failed", "--json", cwd=home).stdout)
    assert rest["sent"] == 120 - attempted
