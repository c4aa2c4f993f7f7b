"""Concurrent writers wait for each other and none fails: a web application's worker
processes each enqueue through a long-lived Outbox, and shell loops run `devmsg send
--queue`, all at once, against one store. Only a wait longer than busy_timeout may fail,
and then as one line."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import devmsg_command, sql, write_project

WORKER = """
import sys
from devmsg import Outbox, Recipient

worker = int(sys.argv[1])
with Outbox.open("devmsg.toml") as outbox:
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    sys.stdin.readline()  # every worker starts at the same moment
    for i in range(60):
        outbox.send(type="event", subject="s", text="t", queue=True,
                    recipients=[Recipient(f"w{worker}-{i}@example.com")])
"""


def test_eight_application_processes_enqueue_at_once(home, smtp):
    write_project(home, smtp.port)
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(n)], cwd=home, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for n in range(8)
    ]  # fmt: skip
    for proc in procs:
        assert proc.stdout.readline() == "ready\n", proc.stderr.read()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert err == ""
    assert sql("select count(*) from receiver") == [(480,)]
    assert sql("select count(distinct address) from receiver") == [(480,)]


def test_eight_shell_loops_of_send_queue(home, smtp):
    write_project(home, smtp.port)
    loop = (
        # Eight writers at once, two sends each: 16 processes show the same contention
        # (the first ones even create the store together) that 64 did.
        'for i in 1 2; do "$DEVMSG" send --queue --type t --subject s --text t '
        '--to "l$0-$i@example.com" || echo "exit $?" >&2; done'
    )
    env = {**os.environ, "DEVMSG": devmsg_command()}
    procs = [
        subprocess.Popen(["sh", "-c", loop, str(n)], cwd=home, env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for n in range(8)
    ]  # fmt: skip
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert (proc.returncode, err) == (0, "")
        assert out.count("queued 1 receiver") == 2
    assert sql("select count(*) from receiver") == [(16,)]
