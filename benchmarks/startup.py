"""How fast devmsg starts, as ratios to Python's own start on the same machine, in one run.

    python benchmarks/startup.py               # 21 runs of each, interleaved
    python benchmarks/startup.py --runs 51

The baseline is `python -c "import sqlite3, smtplib, email.message"`: what any program that
sends mail from a SQLite store imports. Each case runs as a whole process in an idle project
(a store that exists, nothing due), in turn with the others, so a noisy moment hits every
case alike. Prints the median wall time (min-max), the ratio of the medians to the
baseline's, and the peak RSS (the median of the runs' maxima), with the targets.
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

DEVMSG = str(Path(sys.executable).with_name("devmsg"))
BASELINE = [sys.executable, "-c", "import sqlite3, smtplib, email.message"]
# case -> (argv, target ratio to the baseline, target peak RSS in MB or None)
CASES = {
    "baseline": (BASELINE, None, None),
    "devmsg --version": ([DEVMSG, "--version"], None, None),
    "devmsg --help": ([DEVMSG, "--help"], 3.0, None),
    "resend-failed --quiet (idle)": ([DEVMSG, "resend-failed", "--quiet"], 2.5, 30.0),
}


def _once(argv: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read() if proc.stderr else b""
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {err.decode()[:500]}")
    return wall, usage.ru_maxrss / 1024  # Linux: kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "devmsg.toml").write_text('database = "devmsg.sqlite3"\n')
        env = {**os.environ, "COLUMNS": "80"}
        env.pop("DEVMSG_CONFIG", None)
        # A store that exists, with nothing due: the cron tick of a quiet day.
        subprocess.run([DEVMSG, "stats"], cwd=home, env=env, check=False,
                       capture_output=True)  # fmt: skip
        subprocess.run([DEVMSG, "send", "--queue", "--type", "t", "--subject", "s", "--text",
                        "t", "--to", "a@example.com"], cwd=home, env=env, check=True,
                       capture_output=True)  # fmt: skip
        subprocess.run([DEVMSG, "cancel", "--all"], cwd=home, env=env, check=True,
                       capture_output=True)  # fmt: skip
        for argv, _, _ in CASES.values():  # warm the page cache and the .pyc files
            _once(argv, home, env)
        walls: dict[str, list[float]] = {name: [] for name in CASES}
        rss: dict[str, list[float]] = {name: [] for name in CASES}
        for _ in range(args.runs):
            for name, (argv, _, _) in CASES.items():
                wall, peak = _once(argv, home, env)
                walls[name].append(wall)
                rss[name].append(peak)
    base = statistics.median(walls["baseline"])
    print(f"{args.runs} runs each, interleaved; Python {sys.version.split()[0]}")
    print(f"{'case':32} {'median ms (min-max)':>22} {'ratio':>7} {'target':>7} {'RSS MB':>8}")
    for name, (_, ratio_target, rss_target) in CASES.items():
        median = statistics.median(walls[name])
        spread = (
            f"{median * 1000:.0f} ({min(walls[name]) * 1000:.0f}-{max(walls[name]) * 1000:.0f})"
        )
        target = f"<={ratio_target:g}x" if ratio_target else ""
        peak = statistics.median(rss[name])
        rss_text = f"{peak:.1f}" + (f" (<={rss_target:g})" if rss_target else "")
        print(f"{name:32} {spread:>22} {median / base:>6.2f}x {target:>7} {rss_text:>8}")


if __name__ == "__main__":
    main()
