"""Near-duplicate screening: time per pair at 10k, 50k and 100k pairs, which must stay flat.

Run: ``.venv/bin/python benchmarks/dedup.py [--sizes 10000 50000 100000] [--repeats 3] [--mode auto]``

Each run is a fresh process (so its peak RSS is its own): ``size`` accepted pairs stream through
:class:`~arcticcodex.dataset.dedup.NearDuplicateFilter` at the 0.95 threshold with a zero-cost
embedder — 384-dimension random unit vectors, each made from its row number, one pair in twenty a
planted paraphrase of an earlier pair at a cosine of 0.90, 0.94, 0.96 or 0.99.  Making the pairs and
their vectors is timed in a pass of its own and taken out, so the figure is the screening alone.
Printed: the median screening time per pair at each size, the ratio of the largest size's to the
smallest's (bound: ≤ 1.2, i.e. total time linear in the pairs — the filter it replaced was
quadratic: 4.7 ms a pair at 10k, 9.2 ms at 20k), the share of the planted removals (those at 0.96
and 0.99) found (bound: ≥ 99 %; exact mode finds all) and the peak RSS.  Exit status 1 when a bound
is missed.  ``--mode exact`` measures the exact mode alone (where it stops being cheap).  ``--dense``
takes ``benchmarks/scale.py``'s templated pairs instead ("How much rain did station N record?" and
its answer, embedded by the ``hashing-64`` embedder: 64 dimensions, a mean cosine of 0.67 between any
two), with paraphrases planted the same way, where the filter screens through its graph index.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from arcticcodex.dataset.dedup import NearDuplicateFilter
from arcticcodex.dataset.record import PairSource, TrainingPair
from arcticcodex.vault.embeddings import HashingBackend
from child_runs import rain_fact, rain_question  # the prompts scale.py distils

DIMENSIONS = 384
THRESHOLD = 0.95
PLANTED_EVERY = 20
COSINES = (0.90, 0.94, 0.96, 0.99)
BOUND_RATIO = 1.2
BOUND_AGREEMENT = 0.99


DENSE = ["--dense"] if "--dense" in sys.argv else []  # templated pairs, for this process and its children
if DENSE:
    DIMENSIONS = 64
    TEMPLATED = HashingBackend(DIMENSIONS)


def templated(row: int) -> str:
    """``benchmarks/scale.py``'s pair for prompt ``row`` (its question and the extractive answer)."""
    return f"{rain_question(row)}\n{rain_fact(row)}"


def random_unit(row: int, *, spread: bool = False) -> np.ndarray:
    if DENSE and not spread:  # the templated pair's own vector: a mean cosine of 0.67 between two
        templated_vector: np.ndarray = TEMPLATED.embed([templated(row)])[0]
        return templated_vector
    vector = np.random.default_rng(row).standard_normal(DIMENSIONS)
    result: np.ndarray = vector / np.linalg.norm(vector)
    return result


def planted_source(row: int) -> int | None:
    """The earlier row that ``row`` paraphrases (never itself planted), or None."""
    if row < 300 or row % PLANTED_EVERY:
        return None
    source = int(np.random.default_rng(row + 10**9).integers(0, row - 1))
    return source + 1 if source % PLANTED_EVERY == 0 else source


def vector_for(row: int) -> np.ndarray:
    source = planted_source(row)
    if source is None:
        return random_unit(row)
    base, cosine = random_unit(source), COSINES[(row // PLANTED_EVERY) % 4]
    noise = random_unit(row, spread=True)
    noise -= (noise @ base) * base
    noise /= np.linalg.norm(noise)
    result: np.ndarray = cosine * base + np.sqrt(1.0 - cosine * cosine) * noise
    return result


class RowVectors:
    """The zero-cost embedder: a pair's vector is made from its row number (named in the text)."""

    name = "row-vectors"
    dimensions = DIMENSIONS

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([vector_for(int(text.split("\n", 1)[0])) for text in texts]).astype(np.float32)


def pairs(count: int) -> Iterator[TrainingPair]:
    source = PairSource("prompts", "prompts.jsonl")
    for row in range(count):
        yield TrainingPair(
            f"tp-{row}", row, str(row), "an answer", Decimal("0.9"), "teacher", "2026-12-04T12:00:00Z", source
        )


def one_run(count: int, mode: str) -> dict[str, Any]:
    embedder = RowVectors()
    started = time.process_time()
    for batch_start in range(0, count, 256):  # making pairs and vectors alone, to take out
        batch = list(pairs(min(256, count - batch_start)))
        embedder.embed([f"{batch_start + n}\n" for n in range(len(batch))])
    making = time.process_time() - started
    screen = NearDuplicateFilter(embedder, THRESHOLD, mode=mode)  # type: ignore[arg-type]
    started = time.process_time()
    wall_started = time.perf_counter()
    passed = sum(1 for _ in screen.filter(pairs(count)))
    seconds = time.process_time() - started - making
    wall = time.perf_counter() - wall_started
    planted = {
        (f"tp-{row}", f"tp-{source}")
        for row in range(count)
        if (source := planted_source(row)) is not None and COSINES[(row // PLANTED_EVERY) % 4] >= THRESHOLD
    }
    if passed + len(screen.removed) != count:
        raise SystemExit(f"{passed} passed and {len(screen.removed)} removed of {count}")
    return {
        "ms_per_pair": 1000 * seconds / count,
        "wall_ms_per_pair": 1000 * wall / count,
        "agreement": len(planted & set(screen.removed)) / max(1, len(planted)),
        "wrongly_removed": len(set(screen.removed) - planted),
        "approximate": float(screen.approximate),
        "index": type(screen._index).__name__ if screen.approximate else "none",
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def in_child(count: int, mode: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", str(count), "--mode", mode, *DENSE]
    result: dict[str, Any] = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mode", choices=["auto", "exact", "approximate"], default="auto")
    parser.add_argument("--dense", action="store_true", help="vectors in a narrow cone (pairs from one template)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args.child, args.mode)))
        return 0
    shape = "templated (dense)" if DENSE else "random (spread out)"
    print(f"near-duplicate screening, mode {args.mode}, {DIMENSIONS} dimensions {shape}, median of {args.repeats} runs")
    medians: dict[int, dict[str, Any]] = {}
    for size in args.sizes:
        runs = [in_child(size, args.mode) for _ in range(args.repeats)]
        medians[size] = {key: statistics.median(run[key] for run in runs) for key in runs[0] if key != "index"}
        medians[size]["index"] = runs[-1]["index"]
        times = " / ".join(f"{run['ms_per_pair']:.3f}" for run in runs)
        figures = medians[size]
        mode = "approximate" if figures["approximate"] else "exact"
        print(
            f"{size:>8,} pairs  {figures['ms_per_pair']:.3f} ms a pair (CPU; {times};"
            f" wall {figures['wall_ms_per_pair']:.3f})  planted found {figures['agreement']:.2%}"
            f"  wrongly removed {figures['wrongly_removed']:.0f}  {mode} at the end ({figures['index']})"
            f"  peak RSS {figures['peak_rss_mb']:.0f} MB"
        )
    smallest, largest = min(args.sizes), max(args.sizes)
    ratio = medians[largest]["ms_per_pair"] / medians[smallest]["ms_per_pair"]
    agreement = min(figures["agreement"] for figures in medians.values())
    print(f"ratio {largest:,}/{smallest:,} of the time a pair: {ratio:.2f} (bound ≤ {BOUND_RATIO})")
    print(f"planted removals found: at least {agreement:.2%} (bound ≥ {BOUND_AGREEMENT:.0%})")
    return 0 if ratio <= BOUND_RATIO and agreement >= BOUND_AGREEMENT else 1


if __name__ == "__main__":
    sys.exit(main())
