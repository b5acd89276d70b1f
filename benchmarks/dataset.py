"""Signed dataset throughput: sign + write, and verify, in pairs per second, with peak memory.

Run: ``.venv/bin/python benchmarks/dataset.py [--pairs 100000] [--repeats 3]``

Each repeat runs in a fresh process (so its peak RSS is its own): it writes ``--pairs`` accepted
pairs (1 KB instruction, 2 KB completion, two teachers, two evidence references, two revisions)
through :class:`~arcticcodex.dataset.DatasetWriter` with an Ed25519 key, then verifies the folder
with :func:`~arcticcodex.dataset.verify_dataset`.  Printed: the median rate of each as a ratio of
the 5,000 pairs/s bound, what a Studio page view's verdict costs once cached (issue 11), and the peak
RSS at a tenth of the size and at full size (streaming: the two should be close, not ten times
apart).  Exit status 1 when a bound is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from arcticcodex.dataset import DatasetWriter, PairSource, Revision, TrainingPair, pair_id_for, verify_dataset
from arcticcodex.dataset.verdicts import VerdictCache
from arcticcodex.forge.record_frames import EvidenceRef
from arcticcodex.provenance import Ed25519Signer, KeyRing
from child_runs import run_in_child

BOUND_PAIRS_PER_SECOND = 5_000.0
WORKERS = max(1, min(len(os.sched_getaffinity(0)), 8))  # as the command line uses


def sample_pair(instruction_repeats: int = 22, completion_repeats: int = 33) -> TrainingPair:
    """A pair shaped like a distilled one: about 1 KB of instruction and 2 KB of completion by default."""
    evidence = tuple(
        EvidenceRef(f"c-{n}", f"d-{n}", hashlib.sha256(str(n).encode()).hexdigest(), (0, 900), f"doc-{n}.md")
        for n in range(2)
    )
    return TrainingPair(
        id="tp-0",
        index=0,
        instruction="Explain the retention policy for audit logs. " * instruction_repeats,
        completion="Audit logs are kept for ninety days and then archived [c-0]. " * completion_repeats,
        quality=Decimal("0.91"),
        signer_id="teacher-01",
        created_at="2026-11-25T12:00:00Z",
        source=PairSource("prompts", "prompts.jsonl:1"),
        feedback="Grounded in c-0 and c-1.",
        revisions=(
            Revision(1, "Ninety days.", 0.6, {"faithfulness": 0.7}, ("kept ninety days",), ("deepseek",), 420, 0.0005),
            Revision(2, "Audit logs are kept…", 0.91, {"faithfulness": 0.95}, (), ("deepseek",), 610, 0.0007),
        ),
        evidence=evidence,
        teachers=("deepseek", "local-judge"),
    )


def numbered(template: TrainingPair, number: int) -> TrainingPair:
    """The template as the ``number``-th distinct question, with its content id (as distillation makes them)."""
    instruction = f"{template.instruction}(#{number})"
    return replace(
        template, instruction=instruction, id=pair_id_for(instruction, template.completion, template.evidence)
    )


def one_run(pairs: int) -> dict[str, float]:
    """Write and verify ``pairs`` pairs in this process; return the rates and this process's peak RSS."""
    signer = Ed25519Signer.generate()
    template = sample_pair()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "ds"
        started = time.perf_counter()
        with DatasetWriter(out, signer) as writer:
            writer.add_many((numbered(template, number) for number in range(pairs)), workers=WORKERS)
        write_seconds = time.perf_counter() - started
        started = time.perf_counter()
        report = verify_dataset(out, workers=WORKERS)
        verify_seconds = time.perf_counter() - started
        if not report.ok or report.records != pairs:
            raise SystemExit(f"verification failed: {report.problems[:3]}")
        verdicts, keyring = VerdictCache(), KeyRing.only([(signer.verifier(), "the benchmark's key")])
        verdicts.verify(out, keyring=keyring, workers=WORKERS)  # what the Studio's first view of it costs
        started = time.perf_counter()
        for _ in range(100):  # every later view, while the folder is unchanged
            if not verdicts.verify(out, keyring=keyring).trusted:
                raise SystemExit("the cached verdict lost its trust")
        cached_seconds = (time.perf_counter() - started) / 100
        size_mb = (out / "train.jsonl").stat().st_size / 1e6
    return {
        "write_per_second": pairs / write_seconds,
        "verify_per_second": pairs / verify_seconds,
        "verify_seconds": verify_seconds,
        "cached_verdict_ms": cached_seconds * 1000,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "file_mb": size_mb,
    }


def in_child(pairs: int) -> dict[str, float]:
    return run_in_child(__file__, pairs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args.child)))
        return 0

    small = in_child(max(1, args.pairs // 10))
    runs = [in_child(args.pairs) for _ in range(args.repeats)]
    write = statistics.median(run["write_per_second"] for run in runs)
    verify = statistics.median(run["verify_per_second"] for run in runs)
    print(f"{args.pairs:,} pairs ({runs[0]['file_mb']:.0f} MB of train.jsonl), median of {args.repeats} runs")
    print(f"sign + write {write:8,.0f} pairs/s  ratio to bound {write / BOUND_PAIRS_PER_SECOND:.2f}")
    print(f"verify       {verify:8,.0f} pairs/s  ratio to bound {verify / BOUND_PAIRS_PER_SECOND:.2f}")
    full = statistics.median(run["verify_seconds"] for run in runs)
    cached = statistics.median(run["cached_verdict_ms"] for run in runs)
    print(f"a page view's verdict: {full:.1f} s verified, then {cached:.2f} ms from the cache while unchanged")
    rss = statistics.median(run["peak_rss_mb"] for run in runs)
    print(f"peak RSS {small['peak_rss_mb']:.0f} MB at {args.pairs // 10:,} pairs, {rss:.0f} MB at {args.pairs:,}")
    return 0 if min(write, verify) >= BOUND_PAIRS_PER_SECOND else 1


if __name__ == "__main__":
    sys.exit(main())
