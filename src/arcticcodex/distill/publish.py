"""Writing a run's dataset from its journal, and putting it in place without a half-written moment.

The dataset is always written whole, from the journal (and, for ``--append``, from a snapshot of the
dataset that was there when the run started), into a staging folder beside ``--out``; then the old
folder is moved aside, the new one moved in, and the old one deleted.  A crash between the two moves
is repaired on the next publish (the old folder is moved back first), so ``--out`` always holds a
complete, verifiable dataset or nothing.  Writing from the journal in task order is what makes a
resumed run's dataset the same as an uninterrupted run's.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..dataset.dedup import NearDuplicateFilter
from ..dataset.record import TrainingPair, iter_records
from ..dataset.verify import verify_dataset
from ..dataset.writer import MANIFEST_FILE, REJECTED_FILE, TRAIN_FILE, VALIDATION_FILE, DatasetWriter
from ..errors import DatasetError
from ..fileio import replace_directory, restore_directory
from ..provenance.keystore import KeyStore
from ..teachers.prompts import template_hashes
from ..workspace import Workspace
from .journal import RunJournal, RunRecord
from .settings import RunSettings

if TYPE_CHECKING:
    from .run import Distiller

__all__ = ["publish_dataset", "snapshot_base"]

BASE_FILES = (TRAIN_FILE, VALIDATION_FILE, REJECTED_FILE)


def snapshot_base(target: Path, run_folder: Path, workspace: Workspace, key: str) -> None:
    """Check the dataset in ``target`` and copy its records aside, as the base an ``--append`` run adds to."""
    keys = KeyStore(workspace.keys_dir)
    report = verify_dataset(target, trusted=keys.verifier(key))
    if not report.ok or not report.trusted:
        why = str(report.problems[0]) if report.problems else report.trust_note
        raise DatasetError(
            f"--append: the dataset in {target} does not verify with key {key!r} ({why}); "
            "appending must keep it valid, so fix or re-create it first (`arcticcodex dataset verify`)"
        )
    base = run_folder / "base"
    base.mkdir(parents=True, exist_ok=True)
    for name in BASE_FILES:
        if (target / name).is_file():
            shutil.copyfile(target / name, base / name)


def publish_dataset(
    journal: RunJournal,
    record: RunRecord,
    settings: RunSettings,
    workspace: Workspace,
    run_folder: Path,
    distiller: Distiller,
) -> dict[str, Any]:
    """Write the run's dataset into ``record.out``; return the manifest's counts."""
    out = Path(record.out)
    staging = out.with_name(f".{out.name}.{record.id}.partial")
    restore_directory(out)
    _check_owner(out, record, settings)
    if staging.exists():
        shutil.rmtree(staging)
    signer = KeyStore(workspace.keys_dir).signer(settings.key)
    recipe = {
        "run_id": record.id,
        "source": settings.source,
        "teachers": list(settings.teachers) or "workspace default",
        "drafter": settings.drafter,
        "threshold": settings.threshold,
        "max_rounds": settings.max_rounds,
        "templates": template_hashes(),
        "near_duplicate_threshold": settings.near_duplicate_threshold,
        "validation_fraction": settings.validation_fraction,
        "appended": settings.append,
    }
    pairs = _base_pairs(run_folder / "base") if settings.append else iter(())
    reviews = journal.reviews(record.id) if settings.human_review else None
    pairs = _chain(pairs, _journal_pairs(journal, record.id, reviews))
    near = None
    if settings.near_duplicate_threshold is not None:
        near = NearDuplicateFilter(distiller.vault.embedder, settings.near_duplicate_threshold)
        pairs = near.filter(pairs)
    writer = DatasetWriter(staging, signer, recipe=recipe, validation_fraction=settings.validation_fraction)
    with writer:
        writer.add_many(pairs, workers=distiller.workers)
        writer.notes["near_duplicates_removed"] = len(near.removed) if near else 0
    manifest = json.loads((staging / MANIFEST_FILE).read_text(encoding="utf-8"))
    replace_directory(staging, out)
    return {
        name: manifest[name]
        for name in ("record_count", "validation_count", "rejected_count", "duplicates_removed", "merkle_root")
    } | {"near_duplicates_removed": manifest.get("near_duplicates_removed", 0)}


def _journal_pairs(
    journal: RunJournal, run_id: str, reviews: dict[int, tuple[str, str]] | None
) -> Iterator[TrainingPair]:
    """The run's pairs; with human review, an accepted pair a person rejected goes to rejected.jsonl."""
    for position, body in journal.finished_pairs(run_id):
        pair = TrainingPair.from_json(body, where=f"run {run_id}, task {position}")
        if reviews is not None and pair.accepted:
            status, reason = reviews.get(position, ("pending", ""))
            if status == "pending":
                continue  # defensive: a reviewed run is published only once every pair is decided
            if status == "rejected":
                pair = replace(pair, accepted=False, feedback=f"rejected in human review: {reason}")
        yield pair


def _base_pairs(base: Path) -> Iterator[TrainingPair]:
    for name in BASE_FILES:
        if (base / name).is_file():
            for _, pair, _ in iter_records(base / name):
                yield pair


def _chain(*parts: Iterator[TrainingPair]) -> Iterator[TrainingPair]:
    for part in parts:
        yield from part


def _check_owner(out: Path, record: RunRecord, settings: RunSettings) -> None:
    """Never replace a dataset this run did not write, unless the run was started to append to it."""
    manifest_path = out / MANIFEST_FILE
    if settings.append or not manifest_path.is_file():
        if out.is_dir() and not settings.append and any(out.iterdir()) and not manifest_path.is_file():
            raise DatasetError(f"{out} holds files that are not a dataset; move them away, then resume {record.id}")
        return
    try:
        owner = json.loads(manifest_path.read_text(encoding="utf-8")).get("recipe", {}).get("run_id")
    except (OSError, ValueError, AttributeError):
        owner = None
    if owner != record.id:
        raise DatasetError(
            f"{out} holds a dataset written by {owner or 'something else'}, not by run {record.id}; "
            "move it away, then resume the run"
        )
