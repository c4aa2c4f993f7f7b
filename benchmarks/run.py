"""devmsg benchmarks: run by hand, not in CI.

    python benchmarks/run.py                      # N = 2000, 5 repeats, and the 1M-row scale case
    python benchmarks/run.py --n 500 --repeats 3 --scale 0 --network-n 0

Starts its own SMTP server on loopback (aiosmtpd, in a separate process, optionally taking a
few milliseconds a message), builds its own stores in a temporary folder, runs each case
several times as whole `devmsg` processes, and prints medians with min-max, the ratios
between cases measured in this same run, and the targets.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import shutil
import smtplib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVMSG = str(Path(sys.executable).with_name("devmsg"))
CONTEXT = (
    '{"assignment": "Oblig 2", "deadline": "2026-12-04T23:59:00+01:00", '
    '"reason": "The exam office asked for one more week. ' + "More words. " * 35 + '", '
    '"url": "https://devilry.example/assignment/2"}'
)


# --- the SMTP server, in its own process ---------------------------------------------------


def _serve(port: int, delay: float, counter, ready, stop, pipelining: bool) -> None:
    import asyncio

    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            session.host_name = hostname
            if pipelining:
                responses.insert(-1, "250-PIPELINING")
            return responses

        async def handle_DATA(self, server, session, envelope):
            if delay:
                await asyncio.sleep(delay)
            with counter.get_lock():
                counter.value += len(envelope.rcpt_tos)
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


class Server:
    def __init__(self, delay: float = 0.0, pipelining: bool = True) -> None:
        from devmsg.smtpserver import free_port

        self.port = free_port()
        self.counter = multiprocessing.Value("q", 0)
        ready, self.stop_event = multiprocessing.Event(), multiprocessing.Event()
        self.process = multiprocessing.Process(
            target=_serve,
            args=(self.port, delay, self.counter, ready, self.stop_event, pipelining),
        )
        self.process.start()
        if not ready.wait(30):
            raise RuntimeError("the SMTP server did not start")

    @property
    def received(self) -> int:
        return self.counter.value

    def close(self) -> None:
        self.stop_event.set()
        self.process.join(10)


# --- helpers ------------------------------------------------------------------------------


def run(args: list[str], cwd: Path, check: bool = True) -> tuple[float, float]:
    """Run a whole devmsg process: (wall seconds, peak RSS in MB).

    The peak RSS comes from GNU time, which waits for devmsg itself: a child started by
    this (larger) Python process would report this process's size as its own peak."""
    with tempfile.NamedTemporaryFile("r") as rss, tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, DEVMSG, *args],
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors,
        )  # fmt: skip
        wall = time.perf_counter() - started
        if check and proc.returncode != 0:
            errors.seek(0)
            message = errors.read().decode()
            raise RuntimeError(f"devmsg {' '.join(args)} exited {proc.returncode}: {message}")
        peak_kb = int(rss.read().split()[-1])
    return wall, peak_kb / 1024


def project(folder: Path, port: int, connections: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("templates", "locales"):
        shutil.copytree(ROOT / "examples" / part, folder / part, dirs_exist_ok=True)
    (folder / "devmsg.toml").write_text(
        'database = "devmsg.sqlite3"\nlanguages = ["en", "nb"]\nretry_backoff = "0s"\n'
        'sender = "Devilry <noreply@devilry.example>"\ntimezone = "Europe/Oslo"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nconnections = {connections}\n'
    )
    return folder


def receivers_csv(path: Path, n: int) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["address", "name", "language"])
        for i in range(n):
            writer.writerow([f"user{i}@example.com", f"User Number {i}", ("nb", "en")[i % 2]])
    return path


def reset_store(folder: Path, base: Path | None = None) -> None:
    for file in folder.glob("devmsg.sqlite3*"):
        file.unlink()
    if base is not None:
        copy_store(base, folder / "devmsg.sqlite3")


def copy_store(source: Path, target: Path) -> None:
    """A consistent copy, WAL included (SQLite's backup API)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def send_args(n_csv: Path, queue: bool = False) -> list[str]:
    args = ["send", "--template", "deadline_moved", "--type", "deadline_moved",
            "--context", CONTEXT, "--receivers", str(n_csv)]  # fmt: skip
    return args + (["--queue"] if queue else [])


class Results:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, list[float]]] = []

    def add(self, name: str, unit: str, values: list[float]) -> float:
        self.rows.append((name, unit, values))
        median = statistics.median(values)
        print(f"  {name:<44} {median:>10.3f} {unit:<6} (min {min(values):.3f}, "
              f"max {max(values):.3f}, n={len(values)})", flush=True)  # fmt: skip
        return median


# --- the cases ----------------------------------------------------------------------------


def ceiling(server: Server, n: int, sample: bytes) -> float:
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", server.port) as smtp:
        for i in range(n):
            smtp.sendmail("noreply@devilry.example", [f"user{i}@example.com"], sample)
    return time.perf_counter() - started


def raw_threads(server: Server, n: int, sample: bytes, threads: int) -> float:
    """Reference: plain smtplib over `threads` connections, no store at all."""
    import threading

    def worker(k: int) -> None:
        with smtplib.SMTP("127.0.0.1", server.port) as smtp:
            for i in range(k, n, threads):
                smtp.sendmail("noreply@devilry.example", [f"user{i}@example.com"], sample)

    started = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - started


def sample_message(folder: Path) -> bytes:
    from devmsg.content import email

    with sqlite3.connect(folder / "devmsg.sqlite3") as conn:
        packed = conn.execute("select email from content order by receiver_id limit 1").fetchone()
    return email(packed[0])


def bytes_per_receiver(folder: Path, n: int) -> float:
    """The store file's size over its receivers, after a checkpoint (the WAL folded in)."""
    store = folder / "devmsg.sqlite3"
    with sqlite3.connect(store) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return store.stat().st_size / n


API = """
import statistics, sys, time
from devmsg import Outbox, Recipient

context = {"assignment": "Oblig 2", "deadline": "2026-12-04T23:59:00+01:00",
           "reason": "The exam office asked for one more week.",
           "url": "https://devilry.example/assignment/2"}
times = []
with Outbox.open("devmsg.toml") as outbox:
    for i in range(int(sys.argv[1])):
        started = time.perf_counter()
        outbox.send(template="deadline_moved", type="deadline_moved", context=context,
                    queue=True, recipients=[Recipient(f"u{i}@example.com", f"User {i}",
                                                      ("nb", "en")[i % 2])])
        times.append(time.perf_counter() - started)
print(statistics.median(times[20:]) * 1000)
"""


def api_call_ms(folder: Path, calls: int) -> float:
    """An application: one long-lived Outbox, one single-receiver send(queue=True) per
    event; the median ms a call (the first 20 calls, which compile, left out)."""
    reset_store(folder)
    out = subprocess.run([sys.executable, "-c", API, str(calls)], cwd=folder, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return float(out)


def network_case(work: Path, n: int, results: Results) -> dict:
    """A relay a network round trip away: a proxy adds 10 ms each way (20 ms round trip)
    between devmsg and the server. resend-failed over N queued receivers, messages/s."""
    sys.path.insert(0, str(ROOT / "tests"))  # the tests' delaying proxy, not installed
    from proxy import DelayProxy

    print(f"\nnetwork: 10 ms each way (a 20 ms round trip), N={n}, messages/s")
    csv_n = receivers_csv(work / f"net{n}.csv", n)
    out = {}
    for pipelining in (True, False):
        server = Server(pipelining=pipelining)
        try:
            with DelayProxy(server.port, delay=0.010) as proxy:
                for connections in (1, 4, 16):
                    folder = project(work / f"net-{pipelining}-{connections}", proxy.port,
                                     connections)  # fmt: skip
                    reset_store(folder)
                    run(send_args(csv_n, queue=True), folder)
                    before = server.received
                    wall, _ = run(["resend-failed", "--quiet"], folder)
                    assert server.received - before == n, (server.received - before, n)
                    mode = "PIPELINING" if pipelining else "lockstep"
                    name = f"{connections} connection{'s' * (connections > 1)}, {mode}"
                    out[(connections, pipelining)] = results.add(name, "msg/s", [n / wall])
        finally:
            server.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="receivers per run (default 2000)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per case (default 5)")
    parser.add_argument(
        "--scale",
        type=int,
        default=1_000_000,
        help="receivers in the scale store; 0 skips it (default 1,000,000)",
    )
    parser.add_argument(
        "--send-rss",
        type=int,
        default=100_000,
        help="receivers for the send peak-RSS case; 0 skips it",
    )
    parser.add_argument(
        "--network-n", type=int, default=1000,
        help="receivers for the network case (20 ms round trip); 0 skips it",
    )  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=None, help="where to build the stores")
    args = parser.parse_args()
    n, repeats = args.n, args.repeats
    work = Path(args.workdir or tempfile.mkdtemp(prefix="devmsg-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"devmsg benchmarks: N={n}, {repeats} repeats, in {work} "
          f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]})")  # fmt: skip
    results = Results()
    fast, slow = Server(), Server(delay=0.005)
    try:
        csv_n = receivers_csv(work / f"{n}.csv", n)
        one = project(work / "one", fast.port)
        # a store of N queued receivers, to copy for each delivery run
        run(send_args(csv_n, queue=True), one)
        base = work / "queued.sqlite3"
        copy_store(one / "devmsg.sqlite3", base)
        sample = sample_message(one)
        print(f"\nmessage size {len(sample)} bytes (text + HTML)\n")
        print("store")
        size = results.add("0a store bytes per receiver (N queued)", "B",
                           [bytes_per_receiver(one, n)])  # fmt: skip
        print("\napplication: a long-lived Outbox, one receiver per call")
        api_dir = project(work / "api", fast.port)
        api = results.add("0b api: send(queue=True), median per call", "ms",
                          [api_call_ms(api_dir, 500) for _ in range(repeats)])  # fmt: skip
        print()

        print("throughput (whole processes, seconds for N)")
        ceil = results.add("1 ceiling: smtplib, one connection", "s",
                           [ceiling(fast, n, sample) for _ in range(repeats)])  # fmt: skip

        def deliver(folder: Path, server: Server) -> float:
            reset_store(folder, base)
            before = server.received
            wall, _ = run(["resend-failed", "--quiet"], folder)
            assert server.received - before == n, (server.received - before, n)
            return wall

        dlv = results.add("2 deliver: resend-failed over N due", "s",
                          [deliver(one, fast) for _ in range(repeats)])  # fmt: skip

        def send() -> float:
            reset_store(one)
            before = fast.received
            wall, _ = run(send_args(csv_n), one)
            assert fast.received - before == n
            return wall

        snd = results.add("3 send: render 2 languages + store + deliver", "s",
                          [send() for _ in range(repeats)])  # fmt: skip

        def queue() -> float:
            reset_store(one)
            wall, _ = run(send_args(csv_n, queue=True), one)
            return n / wall

        que = results.add("4 queue: send --queue", "rcv/s", [queue() for _ in range(repeats)])

        print("\nparallel connections, a server taking 5 ms a message")
        par1_dir, par4_dir = (
            project(work / "par1", slow.port, 1),
            project(work / "par4", slow.port, 4),
        )
        half = max(1, repeats // 2)
        par1 = results.add("5a deliver, 1 connection", "s",
                           [deliver(par1_dir, slow) for _ in range(half)])  # fmt: skip
        par4 = results.add("5b deliver, 4 connections", "s",
                           [deliver(par4_dir, slow) for _ in range(repeats)])  # fmt: skip
        raw1 = results.add("5c reference: smtplib, 1 connection", "s",
                           [raw_threads(slow, n, sample, 1) for _ in range(half)])  # fmt: skip
        raw4 = results.add("5d reference: smtplib, 4 threads", "s",
                           [raw_threads(slow, n, sample, 4) for _ in range(repeats)])  # fmt: skip

        print("\nidle cron tick: resend-failed with nothing due (10 runs)")
        ticks = [run(["resend-failed", "--quiet"], one) for _ in range(10)]
        idle_wall = results.add("6a idle tick wall", "s", [t[0] for t in ticks])
        idle_rss = results.add("6b idle tick peak RSS", "MB", [t[1] for t in ticks])

        net = network_case(work, args.network_n, results) if args.network_n else {}

        scale = {}
        if args.scale:
            scale = scale_cases(work, fast, args.scale, repeats, results)
        if args.send_rss:
            print(f"\nsend with {args.send_rss:,} receivers")
            big = receivers_csv(work / "big.csv", args.send_rss)
            rss_dir = project(work / "rss", fast.port)
            wall, rss = run(send_args(big), rss_dir)
            results.add(f"7c send {args.send_rss:,}: wall", "s", [wall])
            scale["send_rss"] = results.add(f"7c send {args.send_rss:,}: peak RSS", "MB", [rss])
    finally:
        fast.close()
        slow.close()

    print("\nratios and targets (medians of this run)")
    checks = [
        ("deliver / ceiling (throughput)", ceil / dlv, ">=", 0.6),
        ("send / ceiling (throughput)", ceil / snd, ">=", 0.4),
        ("queue, receivers/s", que, ">=", 3000),
        ("parallel 4 / 1 connections", par1 / par4, ">=", 3.2),
        ("  reference: smtplib 4 / 1 threads", raw1 / raw4, "", 0),
        ("idle tick wall, ms", idle_wall * 1000, "<=", 150),
        ("idle tick peak RSS, MB", idle_rss, "<=", 45),
        ("store bytes per receiver", size, "<=", 1536),
        ("api: ms per single-receiver send(queue=True)", api, "<=", 1.5),
    ]
    if net:
        checks += [
            ("network: 1 connection, PIPELINING, msg/s", net[(1, True)], ">=", 0.8 / 0.04),
            ("network: default (4, PIPELINING), msg/s", net[(4, True)], ">=", 80),
            ("network: 16 / 1 connections, PIPELINING", net[(16, True)] / net[(1, True)],
             ">=", 12),
            ("  network: PIPELINING / lockstep, 1 connection",
             net[(1, True)] / net[(1, False)], "", 0),
        ]  # fmt: skip
    if "list" in scale:
        checks += [
            (f"list first page at {args.scale:,}, ms", scale["list"] * 1000, "<=", 250),
            (f"purge {args.scale:,}, s", scale["purge"], "<=", 30),
            (f"stats --prometheus at {args.scale:,}, ms", scale["stats"] * 1000, "<=", 300),
            (f"purge {args.scale:,} peak RSS, MB", scale["purge_rss"], "<=", 150),
        ]
    if "send_rss" in scale:
        checks.append((f"send {args.send_rss:,} peak RSS, MB", scale["send_rss"], "<=", 150))
    for name, value, op, target in checks:
        if not op:
            print(f"  {name:<44} {value:>10.2f}   (what this machine allows)")
            continue
        ok = value >= target if op == ">=" else value <= target
        print(f"  {name:<44} {value:>10.2f}   target {op} {target:<6} {'ok' if ok else 'MISSED'}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


def scale_cases(work: Path, server: Server, total: int, repeats: int, results: Results) -> dict:
    print(f"\nscale: a store of {total:,} receivers")
    folder = project(work / "scale", server.port)
    seed = min(total, 10_000)
    started = time.perf_counter()
    run(send_args(receivers_csv(work / "seed.csv", seed), queue=True), folder)
    store = folder / "devmsg.sqlite3"
    conn = sqlite3.connect(store, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    columns = [row[1] for row in conn.execute("PRAGMA table_info(receiver)") if row[1] != "id"]
    count = seed
    while count < total:
        take = min(count, total - count)
        copied = ", ".join(c if c != "message_id_header" else f"message_id_header || '.{count}'"
                           for c in columns)  # fmt: skip
        conn.execute(f"INSERT INTO receiver ({', '.join(columns)}) "
                     f"SELECT {copied} FROM receiver ORDER BY id LIMIT {take}")  # fmt: skip
        count += take
    conn.execute(
        "INSERT INTO content (receiver_id, email, bodies) "
        "SELECT r.id, c.email, c.bodies FROM receiver r JOIN content c "
        f"ON c.receiver_id = ((r.id - 1) % {seed}) + 1 WHERE r.id > {seed}"
    )
    # 99% sent long ago, 1% failed: what a store looks like after years.
    conn.execute("UPDATE receiver SET status = 'sent', sent_count = 1, claimed_by = NULL, "
                 "lease_until = NULL, created_at = '2020-01-01 00:00:00', "
                 "sent_at = '2020-01-01 00:00:01'")  # fmt: skip
    conn.execute("UPDATE receiver SET status = 'failed', sent_count = 0, failed_count = 3 "
                 "WHERE id % 100 = 0")  # fmt: skip
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = store.stat().st_size / 2**30
    print(f"  built in {time.perf_counter() - started:.0f} s ({size:.1f} GiB)")
    out = {}
    out["list"] = results.add("7a list --status failed, first page", "s",
                              [run(["list", "--status", "failed"], folder)[0]
                               for _ in range(repeats)])  # fmt: skip
    results.add(
        "7a list, first page (no filter)", "s", [run(["list"], folder)[0] for _ in range(repeats)]
    )
    out["stats"] = results.add(
        "7a stats --prometheus at scale", "s",
        [run(["stats", "--prometheus"], folder)[0] for _ in range(repeats)],
    )  # fmt: skip
    results.add(
        "7a idle tick at scale",
        "s",
        [run(["resend-failed", "--quiet"], folder)[0] for _ in range(repeats)],
    )
    wall, rss = run(["purge", "--older-than", "30d"], folder)
    out["purge"] = results.add(f"7b purge --older-than of {total:,}", "s", [wall])
    out["purge_rss"] = results.add("7b purge peak RSS", "MB", [rss])
    return out


if __name__ == "__main__":
    main()
