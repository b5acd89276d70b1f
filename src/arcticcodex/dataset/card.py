"""The dataset card: a README.md beside the records saying what they are, how they were made and checked.

Hugging Face shows a dataset's README.md as its card; the YAML front matter names the splits so
``datasets.load_dataset(folder)`` finds them.  Its SHA-256 is in the signed manifest, so an edited
card is caught by ``arcticcodex dataset verify`` like an edited record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["dataset_card"]


def dataset_card(
    *,
    directory_name: str,
    accepted: int,
    validation: int,
    rejected: int,
    duplicates_removed: int,
    quality_buckets: Mapping[str, int],
    algorithm: str,
    key_id: str,
    recipe: dict[str, Any],
    notes: dict[str, Any],
) -> str:
    """The card's text; ``quality_buckets`` counts the accepted pairs per bucket of :mod:`.quality`."""
    front = _front_matter(validation=bool(validation))
    histogram = _histogram_rows(quality_buckets)
    recipe_lines = [f"| {name} | `{json.dumps(value, ensure_ascii=False)}` |" for name, value in sorted(recipe.items())]
    removed = [f"- exact duplicates removed: {duplicates_removed}"]
    removed += [f"- {name.replace('_', ' ')}: {value}" for name, value in sorted(notes.items())]
    body = [
        f"# {directory_name}",
        "",
        "Instruction/answer pairs made by ArcticCodex: each answer was drafted from evidence, critiqued,",
        "checked claim by claim against that evidence and rewritten until teachers accepted it; every record",
        "is signed, and `manifest.json` signs the whole set.",
        "",
        "| file | records |",
        "|---|---|",
        f"| train.jsonl | {accepted} |",
        *([f"| validation.jsonl | {validation} |"] if validation else []),
        f"| rejected.jsonl (not for training: the teachers' rejects, kept for audit and DPO) | {rejected} |",
        "",
        *removed,
        "",
        "## Quality of the accepted pairs",
        "",
        "| quality | pairs | |",
        "|---|---|---|",
        *(histogram or ["| – | 0 | |"]),
        "",
        "## How it was made",
        "",
        "| setting | value |",
        "|---|---|",
        *(recipe_lines or ["| – | – |"]),
        "",
        "## Checking it",
        "",
        f"Signed with {algorithm} key `{key_id}`.",
        "",
        "```bash",
        "arcticcodex dataset verify .          # every record, its line, the Merkle root, the manifest",
        "arcticcodex dataset stats .",
        "arcticcodex dataset export . --format messages -o messages.jsonl   # openai alpaca sharegpt dpo parquet fn",
        "```",
        "",
        "Each line of `train.jsonl` has `messages` (the chat form TRL, Axolotl and OpenAI read), `instruction`",
        "and `completion`, then its provenance: `quality`, `revisions`, `evidence` (chunk ids and SHA-256),",
        "`source`, `teachers`, `signer_id`, and `integrity` (the signature).",
        "",
    ]
    return "\n".join(front + body)


def _front_matter(*, validation: bool) -> list[str]:
    """The YAML that tells ``datasets.load_dataset(folder)`` which file holds which split."""
    splits = [("train", "train.jsonl")] + ([("validation", "validation.jsonl")] if validation else [])
    front = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split, path in splits:
        front += [f"  - split: {split}", f"    path: {path}"]
    return [*front, "tags:", "- arcticcodex", "- distillation", "- signed", "---", ""]


def _histogram_rows(quality_buckets: Mapping[str, int]) -> list[str]:
    """One table row per bucket that holds pairs, with a bar of its share."""
    total = sum(quality_buckets.values()) or 1
    return [f"| {label} | {n} | {'█' * round(40 * n / total)} |" for label, n in quality_buckets.items() if n]
