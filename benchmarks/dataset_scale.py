"""`dataset verify` and `dataset export` at 100k and 1M records: rate, peak RSS of the process tree, cores used.

Run: ``.venv/bin/python benchmarks/dataset_scale.py [--sizes 100000,1000000] [--dir /tmp/acx-dataset-scale]``

The datasets are written once (``DatasetWriter.add_many`` with an Ed25519 key, one worker a core)
and kept in ``--dir`` for later invocations, so each invocation times only what it measures; pass
``--clean`` to delete them at the end.  Each pair is a distinct question with its content id: 300-byte
instruction, 600-byte completion, two teachers, two evidence references, two revisions (~2.3 KB a
line: ~2.3 GB of ``train.jsonl`` at 1M; ``dataset.py``'s 3 KB texts would make 7.4 GB).

Each measurement runs in a fresh process (its peak RSS is its own) that calls ``verify_dataset`` or
``export_dataset(..., "messages")`` with one worker a core, as the command line does, while a thread
samples its worker processes every 50 ms (psutil): the peak of the largest worker, the peak of the
sum of the tree, and each worker's CPU seconds (``RUSAGE_CHILDREN`` cannot see them: the workers are
children of multiprocessing's fork server, which outlives the call).  Printed for each size: records
a second, the main process's peak RSS, the tree's, and CPU use (CPU seconds of the process and its
workers over the wall: the number of cores kept busy); then the ratios 1M/100k of the time a record
(goal ≤ 1.2: linear) and of the peak RSS (goal ≤ 1.2: flat), and CPU use at the largest size against
0.7 × the workers.  Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from arcticcodex.dataset import DatasetWriter
from arcticcodex.dataset.export import export_dataset
from arcticcodex.dataset.verify import verify_dataset
from arcticcodex.provenance import Ed25519Signer, Ed25519Verifier, KeyRing
from dataset import numbered, sample_pair  # benchmarks/dataset.py: the same pairs, smaller

WORKERS = max(1, min(len(os.sched_getaffinity(0)), 8))  # as the command line uses
SHAPE = "v1: 300 B instruction, 600 B completion, 2 teachers, 2 evidence, 2 revisions"
GOAL_TIME_RATIO = 1.2
GOAL_RSS_RATIO = 1.2
GOAL_CPU_SHARE = 0.7  # of the workers: CPU use at the largest size ≥ 0.7 × WORKERS


def prepare(folder: Path, records: int) -> Path:
    """The dataset of ``records`` pairs in ``folder`` (written unless a finished one of this shape is there)."""
    marker = folder / "benchmark-shape.txt"
    dataset = folder / "ds"
    if marker.is_file() and marker.read_text() == f"{SHAPE}\n{records}\n":
        return dataset
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    template = sample_pair(6, 10)  # ~0.3 KB and ~0.6 KB: 3.1 KB a line signed, 3.1 GB at 1M
    with DatasetWriter(dataset, Ed25519Signer.generate()) as writer:
        writer.add_many((numbered(template, number) for number in range(records)), workers=WORKERS)
    size = (dataset / "train.jsonl").stat().st_size
    print(f"wrote {records:,} records ({size / 1e9:.2f} GB) in {time.perf_counter() - started:.0f} s", flush=True)
    marker.write_text(f"{SHAPE}\n{records}\n")
    return dataset


class TreeSampler:
    """Samples this process's descendants every ``interval`` seconds: peak RSS and last CPU seconds of each."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.cpu: dict[int, float] = {}
        self.child_peak = 0
        self.tree_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._me = psutil.Process()

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            total = self._me.memory_info().rss
            for child in self._me.children(recursive=True):
                try:
                    rss = child.memory_info().rss
                    times = child.cpu_times()
                except psutil.Error:  # it ended between the listing and the reading
                    continue
                total += rss
                self.child_peak = max(self.child_peak, rss)
                self.cpu[child.pid] = max(self.cpu.get(child.pid, 0.0), times.user + times.system)
            self.tree_peak = max(self.tree_peak, total)


def one_run(operation: str, dataset: Path, output: Path) -> dict[str, Any]:
    """Verify or export ``dataset`` in this process; the wall, rate, peaks and CPU seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    with TreeSampler() as sampler:
        started = time.perf_counter()
        if operation == "verify":
            report = verify_dataset(dataset, workers=WORKERS)
            if not report.ok:
                raise SystemExit(f"verification failed: {report.problems[:3]}")
            records = report.records
        else:
            (public_key,) = (dataset / "keys").glob("*.pub")
            keyring = KeyRing.only([(Ed25519Verifier.from_public_pem(public_key.read_bytes()), "the benchmark's")])
            records = export_dataset(dataset, output, "messages", keyring=keyring, workers=WORKERS)
        wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    own_cpu = (after.ru_utime + after.ru_stime) - (own.ru_utime + own.ru_stime)
    output.unlink(missing_ok=True)
    return {
        "records": records,
        "wall": wall,
        "per_second": records / wall,
        "main_peak_mb": after.ru_maxrss / 1024,
        "worker_peak_mb": sampler.child_peak / 2**20,
        "tree_peak_mb": max(sampler.tree_peak, after.ru_maxrss * 1024) / 2**20,
        "cpu_use": (own_cpu + sum(sampler.cpu.values())) / wall,
    }


def in_child(operation: str, dataset: Path, scratch: Path) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", operation, str(dataset), str(scratch / "export.jsonl")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="record counts, smallest first")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/acx-dataset-scale"))
    parser.add_argument("--prepare-only", action="store_true", help="write the datasets and stop")
    parser.add_argument("--clean", action="store_true", help="delete the datasets at the end")
    parser.add_argument("--operations", default="verify,export", help="what to measure")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        operation, dataset, output = args.child
        print(json.dumps(one_run(operation, Path(dataset), Path(output))))
        return 0

    sizes = [int(size) for size in args.sizes.split(",")]
    datasets = {size: prepare(args.dir / f"n{size}", size) for size in sizes}
    if args.prepare_only:
        return 0
    print(f"load average {os.getloadavg()[0]:.2f}, {WORKERS} workers, {os.cpu_count()} cores", flush=True)
    results: dict[tuple[str, int], dict[str, Any]] = {}
    operations = args.operations.split(",")
    for operation in operations:
        for size in sizes:
            result = results[operation, size] = in_child(operation, datasets[size], args.dir)
            print(
                f"{operation:6} {size:>9,}: {result['wall']:7.1f} s  {result['per_second']:8,.0f} records/s  "
                f"peak RSS main {result['main_peak_mb']:5.0f} MB, largest worker {result['worker_peak_mb']:4.0f} MB, "
                f"tree {result['tree_peak_mb']:5.0f} MB  CPU use {result['cpu_use']:.2f}",
                flush=True,
            )
    missed = []
    small, large = sizes[0], sizes[-1]
    for operation in operations:
        a, b = results[operation, small], results[operation, large]
        time_ratio = (b["wall"] / b["records"]) / (a["wall"] / a["records"])
        rss_ratio = b["main_peak_mb"] / a["main_peak_mb"]
        tree_ratio = b["tree_peak_mb"] / a["tree_peak_mb"]
        cpu_goal = GOAL_CPU_SHARE * min(WORKERS, os.cpu_count() or 1)
        print(
            f"{operation:6} {large:,}/{small:,}: time a record {time_ratio:.2f} (goal ≤ {GOAL_TIME_RATIO}), "
            f"peak RSS main {rss_ratio:.2f}, tree {tree_ratio:.2f} (goal ≤ {GOAL_RSS_RATIO}), "
            f"CPU use {b['cpu_use']:.2f} (goal ≥ {cpu_goal:.1f})"
        )
        if time_ratio > GOAL_TIME_RATIO:
            missed.append(f"{operation} time a record")
        if max(rss_ratio, tree_ratio) > GOAL_RSS_RATIO:
            missed.append(f"{operation} peak RSS")
        if b["cpu_use"] < cpu_goal:
            missed.append(f"{operation} CPU use")
    if args.clean:
        shutil.rmtree(args.dir, ignore_errors=True)
    print("every goal met" if not missed else f"MISSED: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
