"""Whole-process start-up: how long a user waits for ``arcticcodex --version`` and ``--help``.

Run: ``.venv/bin/python benchmarks/startup.py [--runs 7]``

Each command runs as its own process (the installed console script, as a user types it), ``--runs``
times, interleaved so a noisy moment hits all three alike; the median wall time of each is printed
with its peak RSS (from ``wait4``, the child's own).  The baseline is a bare interpreter importing
what any click-and-rich command line must: ``python -c 'import click, rich'``.
Bound: ``arcticcodex --version`` within 2 × the baseline (``--help`` is reported beside it).
Exit status 1 when the bound is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS = {
    "python -c 'import click, rich'": [sys.executable, "-c", "import click, rich"],
    "arcticcodex --version": [str(BIN / "arcticcodex"), "--version"],
    "arcticcodex --help": [str(BIN / "arcticcodex"), "--help"],
}
BOUND = 2.0


def run_once(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {process.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="processes per command (at least 5)")
    args = parser.parse_args()
    runs = max(5, args.runs)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    rss: dict[str, float] = dict.fromkeys(COMMANDS, 0.0)
    for argv in COMMANDS.values():  # warm the file cache once, unmeasured
        run_once(argv)
    for _ in range(runs):
        for name, argv in COMMANDS.items():
            elapsed, peak = run_once(argv)
            times[name].append(elapsed)
            rss[name] = max(rss[name], peak)
    baseline = statistics.median(next(iter(times.values())))
    print(f"whole-process start-up, median of {runs} runs each:")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"    {name:32s} {median * 1000:6.1f} ms  {median / baseline:4.2f} × baseline"
            f"   peak RSS {rss[name]:5.1f} MB"
        )
    ratio = statistics.median(times["arcticcodex --version"]) / baseline
    ok = ratio <= BOUND
    print(f"arcticcodex --version: {ratio:.2f} × the bare interpreter (bound ≤ {BOUND:g})")
    print("PASS" if ok else "FAIL: the bound was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
