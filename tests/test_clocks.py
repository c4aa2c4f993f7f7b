"""Hosts whose clocks disagree never take each other's live claims: on PostgreSQL, leases
are set and compared on the database's clock. A second devmsg whose clock runs 10 minutes
ahead (libfaketime; more than the 5-minute lease) must leave a running send's receivers
alone."""

from __future__ import annotations

import collections
import glob
import json
import os

import pytest
from conftest import run, spawn, write_project

pytestmark = pytest.mark.postgres_only


def faketime(offset: str) -> dict:
    found = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("CI needs libfaketime (Debian's faketime package, .ci/run installs it)")
        pytest.skip("libfaketime is not installed (apt-get install faketime)")
    return {"LD_PRELOAD": found[0], "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def test_a_host_whose_clock_runs_ahead_leaves_live_claims_alone(home, smtp):
    ahead = faketime("+10m")
    skewed_now = run("--version", cwd=home, env=ahead)  # libfaketime loads
    assert skewed_now.returncode == 0, skewed_now.stderr
    write_project(
        home, smtp.port, smtp_extra="connections = 1\n"
    )  # the default claim_lease: 5 minutes
    (home / "r.csv").write_text("address\n" + "".join(f"c{i}@example.com\n" for i in range(50)))
    smtp.hold_after(5)
    proc = spawn("send", "--type", "t", "--subject", "s", "--text", "t", "--receivers", "r.csv",
                 cwd=home)  # fmt: skip
    smtp.wait_until(lambda s: s.waiting == 1)

    cron = run("resend-failed", "--json", cwd=home, env=ahead)
    assert cron.returncode == 0, cron.stderr
    assert json.loads(cron.stdout)["attempted"] == 0
    listed = run("list", "--json", "--status", "sending", "--limit", "0", cwd=home, env=ahead)
    assert len(json.loads(listed.stdout)) == 45
    by_hand = run("resend", "50", cwd=home, env=ahead)
    assert by_hand.returncode == 1 and "is being delivered by" in by_hand.stderr

    smtp.release()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    delivered = collections.Counter(smtp.recipients())
    assert len(delivered) == 50 and set(delivered.values()) == {1}, "each exactly once"
