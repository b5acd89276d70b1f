"""The dataset card: a README.md beside the records saying what they are, how they were made and checked.

Hugging Face shows a dataset's README.md as its card; the YAML front matter names the splits so
``datasets.load_dataset(folder)`` finds them, and carries what the Hub indexes and filters by: license,
language, task categories, size category (from the count), tags, plus the signing key id, the Merkle
root and the teachers' models under ``arcticcodex``.  Every value is written as a JSON scalar, which
YAML reads as the same value, so no name or model can break the YAML.  Its SHA-256 is in the signed
manifest, so an edited card (its license too) is caught by ``arcticcodex dataset verify`` like an
edited record, and ``dataset push`` refuses to publish it.

The license defaults to ``other``: the pairs derive from the user's documents and from teachers whose
terms of use apply to their outputs, so no license can be assumed; ``[distill] license`` sets one.
The language defaults to English (``en``); ``[distill] language`` sets the list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .sensitive_gate import sensitive_data_lines

__all__ = ["DEFAULT_LANGUAGES", "DEFAULT_LICENSE", "CardInfo", "dataset_card", "size_category"]

DEFAULT_LICENSE = "other"
DEFAULT_LANGUAGES = ("en",)
TASK_CATEGORIES = ("question-answering", "text-generation")
# the Hub's size_categories, by number of rows: (upper bound, label)
_SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)


@dataclass(frozen=True, slots=True)
class CardInfo:
    """What the card tells the Hub beyond the counts: the license, the languages and each teacher's model."""

    license: str = DEFAULT_LICENSE
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    teacher_models: Mapping[str, str] = field(default_factory=dict)
    """Teacher name → the model it served (from the workspace's teachers); a name without one is listed alone."""


def size_category(rows: int) -> str:
    """The Hub's size category for ``rows`` training rows (``n<1K`` … ``n>1B``)."""
    return next((label for bound, label in _SIZE_CATEGORIES if rows < bound), "n>1B")


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
    merkle_root: str = "",
    teachers: Sequence[str] = (),
    info: CardInfo | None = None,
) -> str:
    """The card's text; ``quality_buckets`` counts the accepted pairs per bucket of :mod:`.quality`.

    ``merkle_root`` is the train file's (the manifest's ``merkle_root``); ``teachers`` the names of the
    teachers the pairs record; ``info`` the license, languages and teachers' models (defaults: see above).
    """
    info = info or CardInfo()
    models = [(name, info.teacher_models.get(name, "")) for name in sorted(set(teachers))]
    front = _front_matter(
        validation=bool(validation),
        name=directory_name,
        rows=accepted + validation,
        info=info,
        identity={"signing_algorithm": algorithm, "signing_key_id": key_id, "merkle_root": merkle_root},
        models=models,
    )
    histogram = _histogram_rows(quality_buckets)
    recipe_lines = [f"| {name} | `{json.dumps(value, ensure_ascii=False)}` |" for name, value in sorted(recipe.items())]
    removed = [f"- exact duplicates removed: {duplicates_removed}"]
    removed += [
        f"- {name.replace('_', ' ')}: {value}" for name, value in sorted(notes.items()) if name != "sensitive_data"
    ]
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
        *sensitive_data_lines(notes.get("sensitive_data")),
        "## How it was made",
        "",
        "| setting | value |",
        "|---|---|",
        *(recipe_lines or ["| – | – |"]),
        "",
        *_teacher_lines(models),
        "## License",
        "",
        f"`{info.license}`."
        + (
            " No license was set when the dataset was written: the licenses of the source documents and the"
            " teachers' terms of use decide what may be done with it (set one with `license` in `[distill]`)."
            if info.license == DEFAULT_LICENSE
            else ""
        ),
        "",
        "## How to verify",
        "",
        f"Signed with {algorithm} key `{key_id}`; the Merkle root of `train.jsonl` is `{merkle_root or '–'}`.",
        "Download the folder (every file: the manifest signs the records, this card and the counts), then:",
        "",
        "```bash",
        "arcticcodex dataset verify DIR        # every record, its line, the Merkle root, the manifest",
        "arcticcodex dataset stats DIR",
        "arcticcodex dataset export DIR --format messages -o messages.jsonl   # or openai alpaca sharegpt dpo …",
        "```",
        "",
        "Each line of `train.jsonl` has `messages` (the chat form TRL, Axolotl and OpenAI read), `instruction`",
        "and `completion`, then its provenance: `quality`, `revisions`, `evidence` (chunk ids and SHA-256),",
        "`source`, `teachers`, `signer_id`, and `integrity` (the signature).",
        "",
    ]
    return "\n".join(front + body)


def _front_matter(
    *,
    validation: bool,
    name: str,
    rows: int,
    info: CardInfo,
    identity: Mapping[str, str],
    models: Sequence[tuple[str, str]],
) -> list[str]:
    """The YAML the Hub reads: its metadata fields, and which file holds which split for ``load_dataset``."""
    front = ["---", f"pretty_name: {_yaml_scalar(name)}", f"license: {_yaml_scalar(info.license)}", "language:"]
    front += [f"- {_yaml_scalar(language)}" for language in info.languages]
    front += ["task_categories:", *(f"- {_yaml_scalar(task)}" for task in TASK_CATEGORIES)]
    front += ["size_categories:", f"- {_yaml_scalar(size_category(rows))}"]
    splits = [("train", "train.jsonl")] + ([("validation", "validation.jsonl")] if validation else [])
    front += ["configs:", "- config_name: default", "  data_files:"]
    for split, path in splits:
        front += [f"  - split: {split}", f"    path: {path}"]
    front += ["tags:", "- arcticcodex", "- distillation", "- signed", "- synthetic", "arcticcodex:"]
    front += [f"  {key}: {_yaml_scalar(value)}" for key, value in identity.items()]
    front += ["  teachers:" + ("" if models else " []")]
    for teacher, model in models:
        front += [f"  - name: {_yaml_scalar(teacher)}", f"    model: {_yaml_scalar(model or None)}"]
    front += [f"  verify: {_yaml_scalar('arcticcodex dataset verify DIR')}"]
    return [*front, "---", ""]


def _yaml_scalar(value: str | None) -> str:
    """``value`` as a YAML scalar: JSON's quoted string (or null), which YAML reads back as the same value."""
    return json.dumps(value, ensure_ascii=False)


def _table_cell(text: str) -> str:
    """``text`` on one line of a Markdown table cell: no newline, pipe or backquote can end the cell."""
    return " ".join(text.replace("|", "\\|").replace("`", "'").split())


def _teacher_lines(models: Sequence[tuple[str, str]]) -> list[str]:
    """The teachers and their models, with the reminder that each one's terms of use bind its outputs."""
    if not models:
        return []
    rows = [f"| {_table_cell(name)} | {f'`{_table_cell(model)}`' if model else '–'} |" for name, model in models]
    return [
        "## Teachers",
        "",
        "| teacher | model |",
        "|---|---|",
        *rows,
        "",
        "The answers were written and judged by these models: their providers' terms of use apply to their",
        "outputs (some forbid training a competing model on them).  Check them before you train or publish.",
        "",
    ]


def _histogram_rows(quality_buckets: Mapping[str, int]) -> list[str]:
    """One table row per bucket that holds pairs, with a bar of its share."""
    total = sum(quality_buckets.values()) or 1
    return [f"| {label} | {n} | {'█' * round(40 * n / total)} |" for label, n in quality_buckets.items() if n]
