"""Sensitive-data gate throughput: pairs screened per second, streamed, with peak memory.

Run: ``.venv/bin/python benchmarks/sensitive_gate.py [--pairs 100000] [--repeats 3]``

Each repeat runs in a fresh process (so its peak RSS is its own): ``--pairs`` pairs shaped like
``benchmarks/dataset.py``'s (1 KB instruction, 2 KB completion, feedback, two revisions with a
claim), one in fifty carrying an AWS key, an e-mail address, a phone number and a Luhn-valid card
number in its completion, stream through :class:`~arcticcodex.dataset.sensitive_gate.SensitiveDataGate`
under ``redact`` (the policy that does the most work: scan, then rebuild the pair) as a generator,
as ``distill`` publishes them; nothing is kept.  Printed: the median rate as a ratio of the bound —
5,000 pairs/s, the dataset writer's own bound, so that the gate does not become the slower half of
publishing — and the peak RSS at a tenth of the size and at full size (streaming: the two should be
close).  The rate bounded is per CPU second of this process (the gate is one thread, so on a quiet
machine it equals the wall-clock rate, also printed; on a shared one the wall clock measures the
neighbours).  Making the pairs is timed in a pass of its own and taken out.  The findings are counted
and checked, so the timed work is real.  Exit status 1 when the
bound is missed.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import replace

from arcticcodex.dataset import TrainingPair, pair_id_for
from arcticcodex.dataset.sensitive_gate import SensitiveDataGate
from child_runs import run_in_child
from dataset import numbered, sample_pair  # benchmarks/dataset.py: the same pairs the writer is timed on

BOUND_PAIRS_PER_SECOND = 5_000.0
PLANTED_EVERY = 50
PLANTED = " Keys: AKIAIOSFODNN7EXAMPLE, mail jane.roe@example.org, call +1 650-253-0000, card 4111 1111 1111 1111."


def pairs(count: int) -> Iterator[TrainingPair]:
    template = sample_pair()
    for number in range(count):
        pair = numbered(template, number)
        if number % PLANTED_EVERY == 0:
            completion = pair.completion + PLANTED
            pair = replace(pair, completion=completion, id=pair_id_for(pair.instruction, completion, pair.evidence))
        yield pair


def one_run(count: int) -> dict[str, float]:
    started, cpu_started = time.perf_counter(), time.process_time()
    made = sum(1 for _ in pairs(count))  # making the pairs alone, to take out of the gate's time
    making = time.perf_counter() - started
    making_cpu = time.process_time() - cpu_started
    gate = SensitiveDataGate("redact")
    started, cpu_started = time.perf_counter(), time.process_time()
    screened = sum(1 for _ in gate.screen_all(pairs(count)))
    seconds = time.perf_counter() - started - making
    cpu_seconds = time.process_time() - cpu_started - making_cpu
    planted = len(range(0, count, PLANTED_EVERY))
    if screened != made or gate.redacted != planted or gate.findings["aws_access_key"] != planted:
        raise SystemExit(f"the gate found {dict(gate.findings)} in {gate.redacted} pairs, not {planted} of each")
    return {
        "per_second": count / seconds,
        "per_cpu_second": count / cpu_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def in_child(count: int) -> dict[str, float]:
    return run_in_child(__file__, count)


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
    rate = statistics.median(run["per_cpu_second"] for run in runs)
    wall = statistics.median(run["per_second"] for run in runs)
    rss = statistics.median(run["peak_rss_mb"] for run in runs)
    rates = " / ".join(f"{run['per_cpu_second']:,.0f}" for run in runs)
    print(f"{args.pairs:,} pairs (3 KB of text each, 1 in {PLANTED_EVERY} planted), median of {args.repeats} runs")
    ratio = rate / BOUND_PAIRS_PER_SECOND
    print(f"screen (redact) {rate:8,.0f} pairs per CPU second  ratio to bound {ratio:.2f}  ({rates})")
    print(f"                {wall:8,.0f} pairs per wall-clock second (lower when other processes share the cores)")
    print(f"peak RSS {small['peak_rss_mb']:.0f} MB at {args.pairs // 10:,} pairs, {rss:.0f} MB at {args.pairs:,}")
    return 0 if rate >= BOUND_PAIRS_PER_SECOND else 1


if __name__ == "__main__":
    sys.exit(main())
