"""Dataset statistics, read in one streaming pass over the record files (train, validation, rejected).

What a user deciding whether to train on a dataset asks first: how many pairs, how good, checked by
whom, how many rounds it took, and what each accepted pair cost.  Statistics describe the files as
they are; ``dataset verify`` is what says whether they can be trusted.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import DatasetError
from ..layout import MANIFEST_FILE, REJECTED_FILE, TRAIN_FILE, VALIDATION_FILE
from .quality import QUALITY_BUCKETS, quality_bucket
from .record import TrainingPair, iter_records

__all__ = ["dataset_statistics"]


def dataset_statistics(directory: str | Path) -> dict[str, Any]:
    """Counts, quality distribution, teachers, signers, rounds, tokens and cost of a dataset folder."""
    directory = Path(directory)
    if not (directory / TRAIN_FILE).is_file():
        raise DatasetError(f"{directory} has no {TRAIN_FILE}: it is not a dataset folder")
    manifest = _manifest(directory)
    accepted = _Tally()
    rejected = _Tally()
    accepted.read(directory / TRAIN_FILE)
    validation_count = accepted.count
    if (directory / VALIDATION_FILE).is_file():  # held-out accepted pairs: part of the accepted figures
        accepted.read(directory / VALIDATION_FILE)
    validation_count = accepted.count - validation_count
    if (directory / REJECTED_FILE).is_file():
        rejected.read(directory / REJECTED_FILE)
    total = accepted.count + rejected.count
    tokens = accepted.tokens + rejected.tokens
    cost = accepted.cost + rejected.cost
    return {
        "directory": str(directory),
        "accepted": accepted.count,
        "train": accepted.count - validation_count,
        "validation": validation_count,
        "rejected": rejected.count,
        "acceptance_rate": accepted.count / total if total else 0.0,
        "duplicates_removed": manifest.get("duplicates_removed", 0),
        "quality": {
            "mean": accepted.quality_sum / accepted.count if accepted.count else None,
            "min": accepted.quality_min,
            "max": accepted.quality_max,
            "accepted_histogram": {bucket: accepted.buckets[bucket] for bucket in QUALITY_BUCKETS},
            "rejected_histogram": {bucket: rejected.buckets[bucket] for bucket in QUALITY_BUCKETS},
        },
        "rounds": {str(rounds): n for rounds, n in sorted((accepted.rounds + rejected.rounds).items())},
        "teachers": dict((accepted.teachers + rejected.teachers).most_common()),
        "signers": dict((accepted.signers + rejected.signers).most_common()),
        "sources": dict((accepted.sources + rejected.sources).most_common()),
        "tokens": tokens,
        "cost_usd": round(cost, 6),
        "tokens_per_accepted": tokens / accepted.count if accepted.count else None,
        "cost_usd_per_accepted": round(cost / accepted.count, 6) if accepted.count else None,
        "sensitive_data": manifest.get("sensitive_data"),  # the gate's counts (None: written before it)
    }


def _manifest(directory: Path) -> dict[str, Any]:
    try:
        value = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


class _Tally:
    def __init__(self) -> None:
        self.count = 0
        self.quality_sum = 0.0
        self.quality_min: float | None = None
        self.quality_max: float | None = None
        self.buckets: Counter[str] = Counter()
        self.rounds: Counter[int] = Counter()
        self.teachers: Counter[str] = Counter()
        self.signers: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()
        self.tokens = 0
        self.cost = 0.0

    def read(self, path: Path) -> None:
        for _, pair, _ in iter_records(path):
            self.add(pair)

    def add(self, pair: TrainingPair) -> None:
        quality = float(pair.quality)
        self.count += 1
        self.quality_sum += quality
        self.quality_min = quality if self.quality_min is None else min(self.quality_min, quality)
        self.quality_max = quality if self.quality_max is None else max(self.quality_max, quality)
        self.buckets[quality_bucket(quality)] += 1
        self.rounds[len(pair.revisions)] += 1
        self.teachers.update(pair.teachers)
        self.signers[pair.signer_id] += 1
        self.sources[pair.source.kind] += 1
        self.tokens += sum(revision.tokens for revision in pair.revisions)
        self.cost += sum(revision.cost_usd for revision in pair.revisions)
