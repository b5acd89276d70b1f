"""Whole `arcticcodex distill` runs at growing sizes: linear in time, flat in memory (issue 19).

Run: ``.venv/bin/python benchmarks/scale.py [--sizes 1000,10000,100000] [--repeats 1] [--latency 0]``

Each run is one ``arcticcodex distill`` process in a fresh workspace (so the request cache answers
nothing), against the fake OpenAI-compatible server in its own process (``--latency`` seconds a call:
0 by default, 0.02 as the issue's second setting), with the offline extractive drafter and the fake as
critic and verifier (it accepts each answer in round one: two calls a prompt), concurrency 64.

Printed for each size: pairs written a second (wall time of the whole process), the share of the wall
spent after the last teacher call, and the process's peak RSS (VmHWM, read by the child itself: a
parent's ``ru_maxrss`` would carry over across exec).  Then the ratios largest ÷ smallest size of the
time per prompt (goal ≤ 1.2) and of the peak RSS (reported; the kept vectors grow with the pairs by
design, 128 bytes a pair with the ``hashing-64`` embedder used here).  Medians of ``--repeats``; exit
status 1 when a goal is missed.

When the last teacher call ended: the latest ``finished_at`` of the run's tasks in the journal
(``distill_tasks`` in the workspace database, millisecond timestamps).  A task is journaled right after
its last call returns, so that instant is the end of the teaching and everything after it, until the
process exits, is the pipeline's own tail.  Since issue 19 a run publishes while its workers teach (a
thread follows the journal in task order), so the tail is what publishing has left when the teaching
ends — the pairs it has not caught up with, the last batch, the manifest — and the interpreter's exit;
before, it was the whole publishing pass (the near-duplicate screen, the sensitive-data gate,
signing).  (The fake's request log would give the same instant but is a JSON list of every request
body, hundreds of MB at 100k prompts.)
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from child_runs import fake_teacher_workspace, run_cli, write_rain_prompts
from teachers import FakeServer  # benchmarks/teachers.py: the fake in its own process

CONCURRENCY = 64
TAIL_GOAL = 0.10  # share of the wall after the last teacher call
TIME_RATIO_GOAL = 1.2  # time per prompt, largest size ÷ smallest


# The child: the command line in-process, then its own peak RSS and the instant it finished, written to
# the file named first.  sys.path[0] is '' (the scratch folder), so no benchmark module shadows a package.
def workspace(scratch: Path, name: str, base_url: str) -> Path:
    return fake_teacher_workspace(scratch, name, base_url, CONCURRENCY)


def last_teacher_call(root: Path, run_id: str) -> float:
    """The instant (epoch seconds) the run's last task was journaled, i.e. its last teacher call returned."""
    database = next(root.rglob("arcticcodex.db"))
    conn = sqlite3.connect(database)
    try:
        (latest,) = conn.execute("SELECT max(finished_at) FROM distill_tasks WHERE run_id = ?", (run_id,)).fetchone()
    finally:
        conn.close()
    return datetime.fromisoformat(latest).timestamp()


def distill(scratch: Path, server: FakeServer, name: str, prompts: Path) -> dict[str, Any]:
    root = workspace(scratch, name, server.base_url)
    server.reset()  # the fake's request log would otherwise hold every earlier run's requests
    started_epoch, started = time.time(), time.perf_counter()
    measured, stdout = run_cli(
        scratch, "-w", str(root), "distill", "--prompts", str(prompts), "--out", str(root / "dataset"),
        "--teachers", "fake", "--drafter", "extractive", "--concurrency", str(CONCURRENCY), "--json",
    )  # fmt: skip
    wall = time.perf_counter() - started
    summary = json.loads(stdout)
    if summary["status"] != "complete" or summary["failed"] or summary["written"] == 0:
        raise SystemExit(f"the {name} run did not complete: {stdout[:2000]}")
    last = last_teacher_call(root, summary["run_id"])
    tail = max(0.0, measured["ended"] - last) / (measured["ended"] - started_epoch)
    written = summary["written"]
    pairs = written.get("record_count", 0) + written.get("validation_count", 0) if isinstance(written, dict) else 0
    return {"wall": wall, "rss_mb": measured["hwm_kb"] / 1024, "tail": tail, "pairs": pairs or summary["accepted"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="prompt counts, comma-separated, smallest first")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per call at the fake server (0.02: 20 ms)")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    load_before = os.getloadavg()[0]
    server = FakeServer(args.latency)
    runs: dict[int, list[dict[str, Any]]] = {size: [] for size in sizes}
    try:
        with tempfile.TemporaryDirectory() as folder:
            scratch = Path(folder)
            for size in sizes:
                prompts = write_rain_prompts(scratch / f"prompts-{size}.jsonl", size)
                for repeat in range(args.repeats):
                    run = distill(scratch, server, f"run-{size}-{repeat}", prompts)
                    runs[size].append(run)
                    print(
                        f"  {size} prompts, run {repeat + 1}: {run['wall']:.1f} s, {run['pairs']} pairs, "
                        f"after the last teacher call {run['tail']:.1%}, peak RSS {run['rss_mb']:.0f} MB",
                        flush=True,
                    )
    finally:
        server.close()
    median = {size: {key: statistics.median(run[key] for run in done) for key in ("wall", "rss_mb", "tail", "pairs")}
              for size, done in runs.items()}  # fmt: skip
    print(
        f"{args.latency * 1000:.0f} ms latency, concurrency {CONCURRENCY}, median of {args.repeats} "
        f"(load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after):"
    )
    for size, figures in median.items():
        print(
            f"  {size:>7} prompts: {figures['pairs'] / figures['wall']:.0f} pairs/s, "
            f"{figures['wall'] / size * 1000:.2f} ms a prompt, "
            f"after the last teacher call {figures['tail']:.1%} (goal ≤ {TAIL_GOAL:.0%}), "
            f"peak RSS {figures['rss_mb']:.0f} MB"
        )
    small, large = sizes[0], sizes[-1]
    if small == large:
        return 1 if median[small]["tail"] > TAIL_GOAL else 0
    time_ratio = (median[large]["wall"] / large) / (median[small]["wall"] / small)
    rss_ratio = median[large]["rss_mb"] / median[small]["rss_mb"]
    rss_slope = (median[large]["rss_mb"] - median[small]["rss_mb"]) / (large - small) * 1000
    print(
        f"  {large}/{small}: time per prompt ratio {time_ratio:.2f} (goal ≤ {TIME_RATIO_GOAL}), "
        f"peak RSS ratio {rss_ratio:.2f} ({rss_slope:.2f} MB per 1,000 prompts)"
    )
    missed = time_ratio > TIME_RATIO_GOAL or any(figures["tail"] > TAIL_GOAL for figures in median.values())
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
