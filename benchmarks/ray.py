"""`arcticcodex distill --engine ray` against the single-process engine and the ideal, in the same run.

Run: ``.venv/bin/python benchmarks/ray.py [--prompts 10000] [--repeats 3] [--latency 0.2] [--shards 2]``

``--prompts`` prompts with evidence, ``--latency`` seconds per call from the fake OpenAI server (its
own process), the offline extractive drafter, the fake as critic and verifier (it accepts each answer
in round one: two calls a prompt).  Each repeat runs, each in a fresh workspace (so the request cache
answers nothing) and each as a whole ``arcticcodex distill`` process timed from outside:

* the prompts on a local Ray with ``--shards`` shards (``--engine ray``; Ray starts one worker per
  core, two here, and each shard is one worker's task),
* the same prompts on the single-process engine (``--engine local``), with the same concurrency per
  process (``--concurrency``; the teacher endpoint's concurrency is that times the processes running,
  since on Ray the endpoint's one governor shares it among the shards),
* a fifth of the prompts on Ray again, for the driver's peak RSS, which must not grow with the run.

Printed: the Ray wall time as a ratio of the ideal (calls × latency ÷ the calls in flight, i.e.
shards running at once × concurrency) and of the single-process run, the single-process run's ratio
of its own ideal, the driver's peak RSS at both sizes and their ratio, the calls per prompt the fake's
request log counted, and the shard databases' bytes per task and per cached teacher call (for
docs/scale.md).  Medians of ``--repeats``; exit status 1 when a bound is missed.

Why ``--shards 2`` by default: two workers, and a shard's only fixed costs are its own (open the
shard's journal and teacher client, drain its last tasks while fewer than ``--concurrency`` remain):
one shard per worker pays them once.  More shards than workers buys balance between unequal workers
and smaller retries, neither of which this one machine needs; a retried shard repeats no paid call in
any case (its request cache answers them).

Naming: this file is ``ray.py``, so ``import ray`` in a process started as ``python benchmarks/ray.py``
would import this file.  The benchmark itself never imports Ray; every ``arcticcodex`` it runs is a
child started with ``python -c`` in the scratch folder, whose import path (and so its Ray workers',
which inherit the driver's) does not hold ``benchmarks/``.
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
import urllib.request
from pathlib import Path
from typing import Any

from child_runs import fake_teacher_workspace, run_cli, write_rain_prompts
from teachers import FakeServer  # benchmarks/teachers.py: the fake in its own process

CALLS_PER_PROMPT = 2  # critique + claim check; the fake accepts in round one
# Bounds for this 2-core machine, where the two workers, the fake, the driver and its signing workers
# share two cores.  The ideal counts only the teacher calls; a whole run also pays, on top, Ray's start
# and stop (~6 s), the shard plan and merge (< 1 s at 10,000 tasks) and publishing, which is the same
# in both engines and at 10,000 pairs mostly the near-duplicate check (~29 s of ~34 s, quadratic).
RAY_BOUND = 3.0  # Ray's wall time ÷ its ideal (calls × latency ÷ calls in flight)
SPEEDUP_BOUND = 1.0  # Ray's wall time ÷ the single-process engine's, repeat by repeat: Ray must pay for itself
RSS_BOUND = 1.25  # the driver's peak RSS at --prompts ÷ at a fifth of them: flat


# The child: the command line in-process, then its own peak RSS (VmHWM: ru_maxrss would carry the
# parent's across exec) written to the file named first.  sys.path[0] is '' (the scratch folder).
def workspace(scratch: Path, name: str, base_url: str, concurrency: int) -> Path:
    return fake_teacher_workspace(scratch, name, base_url, concurrency)


def chat_calls(server: FakeServer) -> int:
    with urllib.request.urlopen(server.root + "/_fake/requests", timeout=60) as reply:
        log = json.loads(reply.read())
    return sum(1 for request in log if request["path"].endswith("/chat/completions"))


def distill(
    scratch: Path, server: FakeServer, name: str, prompts: Path, concurrency: int, processes: int, engine: list[str]
) -> dict[str, Any]:
    """One whole ``arcticcodex distill`` in a fresh workspace: wall time, driver's peak RSS, calls, summary.

    ``concurrency`` per process; the endpoint takes ``processes`` times that (on Ray its governor
    shares the teacher's ``concurrency`` among the shards, so the endpoint's is the total in flight).
    """
    root = workspace(scratch, name, server.base_url, concurrency * processes)
    server.reset()
    started = time.perf_counter()
    measured, stdout = run_cli(
        scratch, "-w", str(root), "distill", "--prompts", str(prompts), "--out", str(root / "dataset"),
        "--teachers", "fake", "--drafter", "extractive", "--concurrency", str(concurrency), "--json", *engine,
    )  # fmt: skip
    wall = time.perf_counter() - started
    summary = json.loads(stdout)
    if summary["status"] != "complete" or summary["failed"] or summary["written"] == 0:
        raise SystemExit(f"the {name} run did not complete: {stdout[:2000]}")
    return {"root": root, "wall": wall, "rss_mb": measured["hwm_kb"] / 1024, "calls": chat_calls(server), **summary}


def shard_storage(root: Path, run_id: str) -> dict[str, float]:
    """Bytes per task and per cached teacher call in a run's shard databases (tables with their indexes)."""
    tables = {"distill_tasks": 0, "teacher_cache": 0}
    rows = dict.fromkeys(tables, 0)
    files = 0
    shards = sorted((root / ".arcticcodex" / "runs" / run_id / "shards").glob("shard-*.sqlite"))
    for path in shards:
        files += path.stat().st_size
        conn = sqlite3.connect(path)
        try:
            sizes = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
            for table in tables:
                indexes = [
                    row[0] for row in conn.execute("SELECT name FROM sqlite_schema WHERE tbl_name = ?", (table,))
                ]
                tables[table] += sum(sizes.get(name, 0) for name in indexes)
                rows[table] += conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            conn.close()
    return {
        "shards": len(shards),
        "file_bytes_per_shard": files / max(1, len(shards)),
        "bytes_per_task": tables["distill_tasks"] / max(1, rows["distill_tasks"]),
        "bytes_per_cached_call": tables["teacher_cache"] / max(1, rows["teacher_cache"]),
        "cached_calls": rows["teacher_cache"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per call at the fake server")
    parser.add_argument("--shards", type=int, default=2, help="--shards of the Ray runs (default: one per worker)")
    parser.add_argument("--concurrency", type=int, default=64, help="prompts and calls in flight per process")
    args = parser.parse_args()
    workers = min(args.shards, os.cpu_count() or 1)  # a local Ray runs one shard per core at once
    ray = ["--engine", "ray", "--shards", str(args.shards)]
    small_count = max(1, args.prompts // 5)
    load_before = os.getloadavg()[0]
    server = FakeServer(args.latency)
    runs: dict[str, list[dict[str, Any]]] = {"ray": [], "local": [], "ray-small": []}
    storage: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            scratch = Path(folder)
            prompts = write_rain_prompts(scratch / "prompts.jsonl", args.prompts)
            small = write_rain_prompts(scratch / "small.jsonl", small_count)
            for repeat in range(args.repeats):
                sides: tuple[tuple[str, Path, int, list[str]], ...] = (
                    ("ray", prompts, workers, ray),
                    ("local", prompts, 1, []),
                    ("ray-small", small, workers, ray),
                )
                for side, given, processes, engine in sides:
                    run = distill(scratch, server, f"{side}-{repeat}", given, args.concurrency, processes, engine)
                    runs[side].append(run)
                    print(
                        f"  run {repeat + 1} {side:9}: {run['wall']:6.2f} s, driver peak RSS {run['rss_mb']:.0f} MB, "
                        f"{run['calls']} calls, {run['written']} written",
                        flush=True,
                    )
                    if side == "ray" and not storage:
                        storage = shard_storage(run["root"], run["run_id"])
    finally:
        server.close()
    median = {side: {key: statistics.median(run[key] for run in done) for key in ("wall", "rss_mb", "calls")}
              for side, done in runs.items()}  # fmt: skip
    calls = median["ray"]["calls"]
    ideal_ray = calls * args.latency / (workers * args.concurrency)
    ideal_local = median["local"]["calls"] * args.latency / args.concurrency
    ray_ratio = median["ray"]["wall"] / ideal_ray
    # ray ÷ single-process taken repeat by repeat (the two run back to back), then the median: steadier
    # on a shared machine than the ratio of the medians
    pairs = zip(runs["ray"], runs["local"], strict=True)
    speedup = statistics.median(sharded["wall"] / single["wall"] for sharded, single in pairs)
    rss_ratio = median["ray"]["rss_mb"] / median["ray-small"]["rss_mb"]
    print(
        f"{args.prompts} prompts, {calls / args.prompts:.2f} calls each, {args.latency * 1000:.0f} ms latency, "
        f"concurrency {args.concurrency} per process, median of {args.repeats} (load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after):"
    )
    print(
        f"  ray ({args.shards} shards, {workers} workers): {median['ray']['wall']:.2f} s; ideal {ideal_ray:.2f} s "
        f"({workers * args.concurrency} in flight): ray ÷ ideal {ray_ratio:.2f} (bound ≤ {RAY_BOUND})"
    )
    print(
        f"  single process: {median['local']['wall']:.2f} s; ideal {ideal_local:.2f} s: "
        f"÷ ideal {median['local']['wall'] / ideal_local:.2f}; ray ÷ single-process {speedup:.2f} "
        f"(repeat by repeat, median; bound ≤ {SPEEDUP_BOUND})"
    )
    print(
        f"  driver peak RSS (ray): {median['ray-small']['rss_mb']:.0f} MB at {small_count} prompts, "
        f"{median['ray']['rss_mb']:.0f} MB at {args.prompts}: ratio {rss_ratio:.2f} (bound ≤ {RSS_BOUND}); "
        f"single process at {args.prompts}: {median['local']['rss_mb']:.0f} MB"
    )
    print(
        f"  shard databases: {storage['shards']:.0f} of {storage['file_bytes_per_shard'] / 1e6:.1f} MB each; "
        f"{storage['bytes_per_task']:.0f} bytes per task, {storage['bytes_per_cached_call']:.0f} bytes per cached "
        f"call ({storage['cached_calls']:.0f} cached), tables with their indexes"
    )
    missed = ray_ratio > RAY_BOUND or speedup > SPEEDUP_BOUND or rss_ratio > RSS_BOUND
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
