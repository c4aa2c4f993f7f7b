"""Delivery throughput with 1, 2 and 4 sender processes sharing one store, on SQLite and
(with --postgres URL or $DEVMSG_BENCH_POSTGRES) on PostgreSQL, against an SMTP server
that takes a few milliseconds a message, as a real one does. Run by hand:

    python benchmarks/senders.py --n 2000 --delay 0.003 --postgres postgresql://user@host/db

The PostgreSQL database given is emptied (its devmsg tables dropped) before each run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import DEVMSG, Server, copy_store, project, receivers_csv, run, send_args  # noqa: E402


def reset_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS failure, receiver, message, schema_migration CASCADE")


def configure(folder: Path, database: str) -> None:
    config = folder / "devmsg.toml"
    text = config.read_text().replace('database = "devmsg.sqlite3"', f'database = "{database}"')
    config.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="due receivers (default 2000)")
    parser.add_argument("--delay", type=float, default=0.003, help="server seconds a message")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("DEVMSG_BENCH_POSTGRES"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="devmsg-senders-"))
    server = Server(delay=args.delay)
    print(f"{args.n} due receivers, SMTP server taking {args.delay * 1000:g} ms a message, "
          f"{os.cpu_count()} CPUs; medians of {args.repeats}")  # fmt: skip
    try:
        csv_n = receivers_csv(work / "n.csv", args.n)
        seed = project(work / "seed", server.port)
        run(send_args(csv_n, queue=True), seed)
        backends = [("SQLite", None)] + ([("PostgreSQL", args.postgres)] if args.postgres else [])
        results = {}
        for name, url in backends:
            for processes in (1, 2, 4):
                times = []
                for _ in range(args.repeats):
                    folder = project(work / f"{name}{processes}", server.port)
                    for old in folder.glob("devmsg.sqlite3*"):
                        old.unlink()
                    if url:
                        reset_postgres(url)
                        configure(folder, url)
                        run(send_args(csv_n, queue=True), folder)  # the same queued store
                    else:
                        copy_store(seed / "devmsg.sqlite3", folder / "devmsg.sqlite3")
                    before = server.received
                    started = time.perf_counter()
                    procs = [
                        subprocess.Popen([DEVMSG, "resend-failed", "--quiet"], cwd=folder)
                        for _ in range(processes)
                    ]
                    for proc in procs:
                        if proc.wait() != 0:
                            raise RuntimeError("resend-failed failed")
                    times.append(time.perf_counter() - started)
                    assert server.received - before == args.n, "each receiver exactly once"
                median = statistics.median(times)
                results[(name, processes)] = median
                print(f"  {name:<11} {processes} process(es)  {median:7.2f} s  "
                      f"{args.n / median:7.0f} receivers/s  (min {min(times):.2f}, "
                      f"max {max(times):.2f})", flush=True)  # fmt: skip
        for name, _ in backends:
            base = results[(name, 1)]
            print(f"  {name}: speed-up 2 processes {base / results[(name, 2)]:.2f}x, "
                  f"4 processes {base / results[(name, 4)]:.2f}x")  # fmt: skip
    finally:
        server.close()


if __name__ == "__main__":
    main()
