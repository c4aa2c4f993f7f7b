"""How fast `devmsg worker` delivers what an application queues: run by hand, not in CI.

    python benchmarks/latency.py                        # SQLite; PostgreSQL too with --postgres URL
    python benchmarks/latency.py --duration 10 --idle 20 --burst 500

An application process with a long-lived Outbox queues one single-receiver message per
event, at --rate events a second for --duration seconds, while the installed `devmsg worker`
runs. The latency of each is the time from the `send(queue=True)` call's return to the SMTP
server's acceptance (its own process, on loopback; the same clock). Cases: loopback, and
through a proxy that delays each direction by --delay ms (`devmsg/proxy.py`). Then the
worker's CPU and RSS over --idle seconds with nothing due, and a burst: --burst receivers
queued at once, delivered by the worker, against `devmsg resend-failed` with the same
connections.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVMSG = str(Path(sys.executable).with_name("devmsg"))
sys.path.insert(0, str(ROOT))


def _serve(port: int, conn, ready) -> None:
    """The SMTP server: records when it accepted each recipient; sends them on request."""
    from aiosmtpd.controller import Controller

    accepted: dict[str, float] = {}

    class Sink:
        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            session.host_name = hostname
            responses.insert(-1, "250-PIPELINING")
            return responses

        async def handle_DATA(self, server, session, envelope):
            now = time.time()
            for rcpt in envelope.rcpt_tos:
                accepted[rcpt] = now
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        command = conn.recv()
        if command == "stop":
            break
        if command == "count":
            conn.send(len(accepted))
        elif command == "get":
            conn.send(dict(accepted))
        elif command == "clear":
            accepted.clear()
            conn.send(True)
    controller.stop()


class Server:
    def __init__(self) -> None:
        from devmsg.smtpserver import free_port

        self.port = free_port()
        self.conn, child = multiprocessing.Pipe()
        ready = multiprocessing.Event()
        self.proc = multiprocessing.Process(target=_serve, args=(self.port, child, ready))
        self.proc.start()
        ready.wait(30)

    def ask(self, command: str):
        self.conn.send(command)
        return self.conn.recv()

    def wait_for(self, count: int, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while self.ask("count") < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"the server got {self.ask('count')} of {count}")
            time.sleep(0.01)

    def stop(self) -> None:
        self.conn.send("stop")
        self.proc.join(30)


def project(folder: Path, port: int, database: str, connections: int) -> Path:
    shutil.copytree(ROOT / "examples" / "templates", folder / "templates")
    shutil.copytree(ROOT / "examples" / "locales", folder / "locales")
    path = folder / "devmsg.toml"
    path.write_text(
        f'database = "{database}"\nlanguages = ["en", "nb"]\n'
        'sender = "Devilry <noreply@devilry.example>"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nconnections = {connections}\n'
    )
    return path


def pg_database(admin: str, name: str) -> str:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    base, _, query = admin.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")


def start_worker(config: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [DEVMSG, "--config", str(config), "worker", "--log-format", "json"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in proc.stderr:
        if json.loads(line)["event"] == "idle":
            break
    # keep reading its log, so that it never blocks on a full pipe
    import threading

    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(round(p / 100 * (len(ordered) - 1))), len(ordered) - 1)]


def latency_case(config: Path, server: Server, rate: float, duration: float, tag: str) -> dict:
    from devmsg import Outbox

    context = json.loads((ROOT / "examples/templates/deadline_moved/context.json").read_text())
    server.ask("clear")
    returned: dict[str, float] = {}
    with Outbox.open(config) as outbox:
        count = int(rate * duration)
        start = time.monotonic()
        for i in range(count):
            wait = start + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            to = f"{tag}{i}@example.com"
            outbox.send(type="bench", template="deadline_moved", recipients=[to],
                        context=context, queue=True)  # fmt: skip
            returned[to] = time.time()
    server.wait_for(len(returned))
    accepted = server.ask("get")
    ms = [(accepted[to] - t) * 1000 for to, t in returned.items()]
    return {"p50": statistics.median(ms), "p99": percentile(ms, 99), "max": max(ms), "n": len(ms)}


def peer_case(
    python: str, database: str, server: Server, rate: float, duration: float, folder: Path
) -> dict:
    """The same case with django-mailer (benchmarks/peer_django_mailer.py), same server."""
    server.ask("clear")
    proc = subprocess.Popen(
        [python, str(ROOT / "benchmarks" / "peer_django_mailer.py"), "--database", database,
         "--port", str(server.port), "--rate", str(rate), "--duration", str(duration)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=folder,
    )  # fmt: skip
    result = json.loads(proc.stdout.readline())
    returned = result["returned"]
    deadline = time.monotonic() + duration + 90  # runmailer sleeps 30 s between looks
    while server.ask("count") < len(returned) and time.monotonic() < deadline:
        time.sleep(0.05)
    accepted = server.ask("get")
    proc.stdin.close()
    proc.wait(60)
    ms = [(accepted[to] - t) * 1000 for to, t in returned.items() if to in accepted]
    if not ms:
        return {"p50": math.nan, "p99": math.nan, "max": math.nan, "n": 0,
                "of": len(returned), "command": result["command"]}  # fmt: skip
    return {"p50": statistics.median(ms), "p99": percentile(ms, 99), "max": max(ms),
            "n": len(ms), "of": len(returned), "command": result["command"]}  # fmt: skip


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def queue_burst(config: Path, count: int, tag: str) -> None:
    rows = "address\n" + "".join(f"{tag}{i}@example.com\n" for i in range(count))
    path = config.parent / f"{tag}.csv"
    path.write_text(rows)
    context = "@" + str(ROOT / "examples/templates/deadline_moved/context.json")
    subprocess.run(
        [DEVMSG, "--config", str(config), "send", "--template", "deadline_moved", "--type",
         "bench", "--context", context, "--receivers", str(path), "--queue"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def run_backend(name: str, database: str, args, folder: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))  # the tests' delaying proxy, not installed
    from proxy import DelayProxy

    server = Server()
    config = project(folder, server.port, database, args.connections)
    print(f"\n== {name} ==")
    worker = start_worker(config)
    try:
        result = latency_case(config, server, args.rate, args.duration, "loop")
        print(f"loopback: {result['n']} events at {args.rate:g}/s: p50 {result['p50']:.1f} ms, "
              f"p99 {result['p99']:.1f} ms, max {result['max']:.1f} ms")  # fmt: skip
        before = cpu_seconds(worker.pid)
        time.sleep(args.idle)
        used = cpu_seconds(worker.pid) - before
        print(f"idle {args.idle:g}s: {used / args.idle * 100:.2f}% of one core, "
              f"RSS {rss_mb(worker.pid):.1f} MB")  # fmt: skip
        if args.burst:
            server.ask("clear")
            worker.send_signal(signal.SIGSTOP)  # queued at once: then the worker sees them
            queue_burst(config, args.burst, "burst")
            start = time.monotonic()
            worker.send_signal(signal.SIGCONT)
            server.wait_for(args.burst)
            worker_rate = args.burst / (time.monotonic() - start)
    finally:
        worker.terminate()
        worker.wait(60)
    if args.burst:
        server.ask("clear")
        queue_burst(config, args.burst, "cron")
        start = time.monotonic()
        subprocess.run([DEVMSG, "--config", str(config), "resend-failed", "--quiet"], check=True)
        cron_rate = args.burst / (time.monotonic() - start)
        print(f"burst of {args.burst}, {args.connections} connections: worker {worker_rate:.0f}/s, "
              f"resend-failed {cron_rate:.0f}/s: "
              f"{worker_rate / cron_rate:.2f}x")  # fmt: skip
    if args.delay:
        with DelayProxy(server.port, delay=args.delay / 1000) as proxy:
            text = config.read_text().replace(f"port = {server.port}", f"port = {proxy.port}")
            config.write_text(text)
            worker = start_worker(config)
            try:
                result = latency_case(config, server, args.rate, args.duration, "proxy")
            finally:
                worker.terminate()
                worker.wait(60)
        print(f"through a {args.delay:g} ms-each-way proxy: p50 {result['p50']:.1f} ms, "
              f"p99 {result['p99']:.1f} ms, max {result['max']:.1f} ms")  # fmt: skip
    if args.peer_python:
        peer_db = str(folder / "django.sqlite3")
        if database.startswith("postgresql://"):
            peer_db = pg_database(args.postgres, "devmsg_latency_peer")
        peer = peer_case(args.peer_python, peer_db, server, args.rate, args.duration, folder)
        print(f"django-mailer {peer['command']}, loopback: {peer['n']} of {peer['of']} "
              "delivered in time: "
              f"p50 {peer['p50']:.1f} ms, p99 {peer['p99']:.1f} ms, "
              f"max {peer['max']:.1f} ms")  # fmt: skip
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--delay", type=float, default=10.0, help="ms each way; 0: no proxy")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--postgres", help="an admin URL: a scratch database is made there")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--peer-python", help="a Python with django-mailer: compare with it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_sqlite:
            folder = Path(tmp) / "sqlite"
            folder.mkdir()
            run_backend("SQLite", str(folder / "devmsg.sqlite3"), args, folder)
        if args.postgres:
            folder = Path(tmp) / "pg"
            folder.mkdir()
            run_backend("PostgreSQL", pg_database(args.postgres, "devmsg_latency"), args, folder)


if __name__ == "__main__":
    main()
