"""What a rate limiter costs: run by hand, not in CI.

    python benchmarks/limits.py                   # N = 2000, 5 repeats
    python benchmarks/limits.py --n 1000 --repeats 3

Delivers N queued receivers with `devmsg resend-failed` (whole processes, one connection, a
loopback server) with no limit configured, and with `"*" = ["1000000/s"]`, a limit that
never binds, and the same with four processes sharing the store. Then a binding limit, to
show the pace it keeps. Prints medians (min-max) and the cost per message measured in this
one run.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (  # noqa: E402  (the benchmark helpers beside this file)
    DEVMSG,
    Results,
    Server,
    copy_store,
    project,
    receivers_csv,
    reset_store,
    run,
    send_args,
)


def with_limits(folder: Path, rates: str) -> Path:
    config = folder / "devmsg.toml"
    text = re.sub(r"\[rate_limits\].*?(?=\[smtp\])", "", config.read_text(), flags=re.S)
    text = text.replace("[smtp]", (f"[rate_limits]\n{rates}\n" if rates else "") + "[smtp]")
    config.write_text(text)
    return folder


def limiter_alone(folder: Path, batches: int = 400, size: int = 25) -> float:
    """Microseconds per receiver of the limiter's own transactions, with a limit that
    never binds, in a fresh SQLite store."""
    from devmsg import store
    from devmsg.config import load_config
    from devmsg.db import open_store

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "devmsg.toml").write_text('database = "s.sqlite3"\n')
    db = open_store(load_config(folder / "devmsg.toml"))
    spec = {"* 1s": (1_000_000, 1.0)}
    try:
        started = time.perf_counter()
        for batch in range(batches):
            holder = f"bench#{batch}"
            store.take_permits([("* 1s",)] * size, spec, holder, 300.0)
            store.release_permits(holder)
        return (time.perf_counter() - started) * 1e6 / (batches * size)
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="receivers per run (default 2000)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per case (default 5)")
    args = parser.parse_args()
    n, repeats = args.n, args.repeats
    work = Path(tempfile.mkdtemp(prefix="devmsg-bench-limits-"))
    print(f"devmsg rate-limit benchmarks: N={n}, {repeats} repeats, in {work}")
    results = Results()
    server = Server()
    try:
        folder = project(work / "one", server.port)
        run(send_args(receivers_csv(work / "n.csv", n), queue=True), folder)
        base = work / "queued.sqlite3"
        copy_store(folder / "devmsg.sqlite3", base)

        def deliver(processes: int = 1) -> float:
            reset_store(folder, base)
            before = server.received
            started = time.perf_counter()
            procs = [
                subprocess.Popen([DEVMSG, "resend-failed", "--quiet"], cwd=folder)
                for _ in range(processes)
            ]
            if any(proc.wait() for proc in procs):
                raise RuntimeError("resend-failed failed")
            wall = time.perf_counter() - started
            assert server.received - before == n, (server.received - before, n)
            return wall

        # The cases take turns, run after run, so that the machine's drift hits them alike.
        runs = {
            "none": ("", 1),
            "never binds": ('"*" = ["1000000/s"]', 1),
            "never binds, + a domain": ('"*" = ["1000000/s"]\n"example.com" = ["1000000/h"]', 1),
            "4 none": ("", 4),
            "4 never binds": ('"*" = ["1000000/s"]', 4),
        }
        walls: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(repeats):
            for name, (rates, processes) in runs.items():
                with_limits(folder, rates)
                walls[name].append(deliver(processes))
        print("\nresend-failed over N due, one connection each, the cases taking turns")
        cases = {}
        for name, values in walls.items():
            label = f"4 processes, limit: {name[2:]}" if name.startswith("4 ") else f"limit: {name}"
            cases[name] = results.add(label, "s", values)
        print("\nthe limiter alone, in one process: a grant and a release per batch of 25")
        alone = [limiter_alone(work / "alone") for _ in range(repeats)]
        per_receiver = results.add("grant + release, per receiver", "µs", alone)

        rate = max(50, n // 8)
        print(f'\na binding limit, "*" = ["{rate}/s"], four processes')
        with_limits(folder, f'"*" = ["{rate}/s"]')
        bound = results.add("binding limit", "s", [deliver(4) for _ in range(max(1, repeats // 2))])
        with_limits(folder, "")
        run(["limits"], folder)
    finally:
        server.close()

    per = 1e6 / n
    print("\ncost per message (medians of this run; end to end, the machine's noise included)")
    print(
        f"  never binds, one process     {(cases['never binds'] - cases['none']) * per:8.1f} µs"
        f"   ({cases['never binds'] / cases['none']:.2f}x the time with no limit)"
    )
    two = cases["never binds, + a domain"]
    print(
        f"  never binds, two limits      {(two - cases['none']) * per:8.1f} µs"
        f"   ({two / cases['none']:.2f}x)"
    )
    four = cases["4 never binds"] - cases["4 none"]
    print(
        f"  never binds, four processes  {four * per:8.1f} µs"
        f"   ({cases['4 never binds'] / cases['4 none']:.2f}x)"
    )
    print(f"  the limiter alone            {per_receiver:8.1f} µs")
    print(
        f"  binding {rate}/s: {n / bound:.1f} messages/s kept "
        f"({n / bound / rate:.0%} of the limit; the first window's burst included)"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
