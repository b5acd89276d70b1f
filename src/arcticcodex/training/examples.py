"""A signed dataset's pairs as a trainer's rows, streamed to files the ``datasets`` library maps from disk.

SFT rows carry the ``messages`` column only: a raw record has both ``messages`` and ``completion``, and
TRL reads such a row ambiguously (as conversational and as prompt-completion).  DPO rows are
``prompt``/``chosen``/``rejected`` from the pairs' revision history (a first draft the teachers
improved on by at least the margin is the rejected side).  Rows are written a line at a time and
loaded by ``datasets`` as Arrow, so memory stays flat however large the dataset is.  Citation markers
are removed as in every export (see :mod:`arcticcodex.dataset.citations`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..dataset.citations import TrainingView
from ..dataset.export import dpo_row, split_files
from ..dataset.record import iter_records
from ..fileio import atomic_write

__all__ = ["TrainingFiles", "has_preference_pairs", "write_training_files"]


@dataclass(frozen=True, slots=True)
class TrainingFiles:
    """The rows one run trains and evaluates on, and how many of each."""

    sft_train: Path
    sft_eval: Path | None
    dpo_train: Path
    dpo_eval: Path | None
    counts: dict[str, int]


def write_training_files(dataset: Path, folder: Path, *, dpo_margin: float) -> TrainingFiles:
    """Write the SFT and DPO rows of ``dataset``'s train and validation splits into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    has_validation = len(split_files(dataset, "all")) > 1
    counts: dict[str, int] = {}
    paths: dict[str, Path | None] = {}
    for split in ("train", "validation"):
        if split == "validation" and not has_validation:
            paths["sft_validation"] = paths["dpo_validation"] = None
            continue
        sft, dpo = folder / f"sft-{split}.jsonl", folder / f"dpo-{split}.jsonl"
        counts[f"sft_{split}"], counts[f"dpo_{split}"] = _write(dataset, split, sft, dpo, dpo_margin)
        paths[f"sft_{split}"], paths[f"dpo_{split}"] = sft, dpo
    return TrainingFiles(
        sft_train=folder / "sft-train.jsonl",
        sft_eval=paths["sft_validation"],
        dpo_train=folder / "dpo-train.jsonl",
        dpo_eval=paths["dpo_validation"],
        counts=counts,
    )


def has_preference_pairs(dataset: Path, *, dpo_margin: float) -> bool:
    """Whether ``dataset``'s train split holds at least one DPO row (read until the first one is found)."""
    view = TrainingView()
    for path in split_files(dataset, "train"):
        for where, pair, _ in iter_records(path):
            if dpo_row(view.apply(pair, where), dpo_margin) is not None:
                return True
    return False


def _write(dataset: Path, split: str, sft: Path, dpo: Path, margin: float) -> tuple[int, int]:
    view = TrainingView()
    written = [0, 0]
    with atomic_write(sft) as sft_out, atomic_write(dpo) as dpo_out:
        for path in split_files(dataset, split):
            for where, pair, _ in iter_records(path):
                seen = view.apply(pair, where)
                sft_out.write(_line({"messages": seen.messages}))
                written[0] += 1
                row = dpo_row(seen, margin)
                if row is not None:
                    dpo_out.write(_line({name: row[name] for name in ("prompt", "chosen", "rejected")}))
                    written[1] += 1
    return written[0], written[1]


def _line(row: dict[str, object]) -> bytes:
    return (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
