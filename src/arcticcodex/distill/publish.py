"""Writing a run's dataset from its journal, and putting it in place without a half-written moment.

The dataset is always written whole, from the journal (and, for ``--append``, from a snapshot of the
dataset that was there when the run started), into a staging folder beside ``--out``; then the old
folder is moved aside, the new one moved in, and the old one deleted.  A crash between the two moves
is repaired on the next publish (the old folder is moved back first), so ``--out`` always holds a
complete, verifiable dataset or nothing.  Writing from the journal in task order is what makes a
resumed run's dataset the same as an uninterrupted run's.

Every pair passes the sensitive-data gate (:mod:`arcticcodex.dataset.sensitive_gate`) on its way to
the writer, streamed like the rest, under the run's ``sensitive_data`` policy; the counts it keeps
go into the signed manifest and the card.  A pass that only plans the split sees the pairs as the
gate leaves them (so ids agree), and the counts are those of the writing pass.

A run publishes *while* its workers teach (:class:`LivePublisher`): a thread of its own follows the
journal in task order (:meth:`.RunJournal.follow_pairs`), screening, gating and signing each pair
as soon as every earlier task is done, so the dataset is ready moments after the last teacher call
rather than a whole publishing pass later (issue 19: at 100k prompts that pass was 29 % of the
run).  It reads exactly what publishing afterwards would read, so the dataset is the same; if the
work fails, publishing stops and leaves nothing under ``--out``.  A run with human review publishes
only once every pair is decided, and a Ray run once its shards are merged: both publish afterwards.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..dataset.card import CardInfo
from ..dataset.dedup import NearDuplicateFilter
from ..dataset.record import TrainingPair, iter_records
from ..dataset.sensitive_gate import SensitiveDataGate
from ..dataset.split import PlannedSplit, Side, SplitPlanner
from ..dataset.writer import DatasetWriter
from ..errors import DatasetError
from ..fileio import replace_directory, restore_directory
from ..layout import MANIFEST_FILE, REJECTED_FILE, TRAIN_FILE, VALIDATION_FILE
from ..provenance.keystore import KeyStore
from ..teachers.prompts import template_hashes
from ..workspace import Workspace
from .evidence import WorkspaceEvidence
from .journal import RunJournal, RunRecord
from .pair_review import PairEdit, PairReviews, apply_edit
from .settings import RunSettings

if TYPE_CHECKING:
    from ..vault.embeddings import EmbeddingBackend

__all__ = ["LivePublisher", "publish_dataset", "snapshot_base"]

BASE_FILES = (TRAIN_FILE, VALIDATION_FILE, REJECTED_FILE)


def snapshot_base(target: Path, run_folder: Path) -> None:
    """Copy the records of the dataset in ``target`` aside, as the base an ``--append`` run adds to
    (it was verified before the run was created: :func:`.preflight.check_base`)."""
    base = run_folder / "base"
    base.mkdir(parents=True, exist_ok=True)
    for name in BASE_FILES:
        if (target / name).is_file():
            shutil.copyfile(target / name, base / name)


class LivePublisher:
    """:func:`publish_dataset` in a thread of its own, following the run while its workers teach.

    Start it before the work, then :meth:`finish` it when the work has ended and await
    :meth:`result`; if the work fails, :meth:`abort` stops it (nothing is put under ``--out``) and
    waits until its thread has let go of the staging folder.  The thread has its own database
    connections (SQLite's are not shared between threads); the embedder is the run's own.
    """

    def __init__(
        self,
        workspace: Workspace,
        record: RunRecord,
        settings: RunSettings,
        run_folder: Path,
        *,
        embedder: EmbeddingBackend,
        workers: int,
    ) -> None:
        self.ended = threading.Event()
        """Set once the workers have stopped; from then on the journal is read to its end."""
        self.aborted = False
        self._manifest: dict[str, Any] = {}
        self._error: BaseException | None = None

        def publish() -> None:
            try:
                with RunJournal(workspace) as journal:
                    self._manifest = publish_dataset(
                        journal, record, settings, workspace, run_folder, embedder=embedder, workers=workers, live=self
                    )
            except BaseException as exc:  # handed to whoever awaits the result, in their thread
                self._error = exc

        self._thread = threading.Thread(target=publish, name=f"publish {record.id}", daemon=True)
        self._thread.start()

    def finish(self) -> None:
        """The workers have stopped: read the rest of the journal and finish the dataset."""
        self.ended.set()

    def abort(self) -> None:
        """The work failed: stop publishing, leave ``--out`` as it was, and return once the thread is done."""
        self.aborted = True
        self.ended.set()
        self._thread.join()

    async def result(self) -> dict[str, Any]:
        """The manifest's counts, as :func:`publish_dataset` returns them, once the dataset is in place."""
        await asyncio.to_thread(self._thread.join)
        if self._error is not None:
            raise self._error
        return self._manifest


class PublishingAbortedError(Exception):
    """Raised inside a :class:`LivePublisher`'s thread when the run's work failed; never leaves it."""


def publish_dataset(
    journal: RunJournal,
    record: RunRecord,
    settings: RunSettings,
    workspace: Workspace,
    run_folder: Path,
    *,
    embedder: EmbeddingBackend,
    workers: int = 1,
    live: LivePublisher | None = None,
) -> dict[str, Any]:
    """Write the run's dataset into ``record.out``; return the manifest's counts.

    ``embedder`` screens near-duplicates (the vault's); ``workers`` processes sign; ``live`` is the
    publisher whose run is still being worked on, whose journal is then followed (see above).
    """
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
        "fallback_drafter": settings.fallback_drafter,
        "threshold": settings.threshold,
        "max_rounds": settings.max_rounds,
        "templates": template_hashes(),
        "near_duplicate_threshold": settings.near_duplicate_threshold,
        "near_duplicate_mode": settings.near_duplicate_mode,
        "validation_fraction": settings.validation_fraction,
        "appended": settings.append,
        "sensitive_data": settings.sensitive_data,
    }
    reviews = journal.reviews(record.id) if settings.human_review else None
    edits = PairReviews(journal).edits(record.id) if settings.human_review else {}
    sides: dict[str, Side] = {}  # base pairs' ids → the side they were published on
    try:  # a publish that fails (or is aborted with its run) leaves no staging folder behind
        with WorkspaceEvidence(workspace, out) as evidence:  # the evidence texts the gate screens too
            gates: list[SensitiveDataGate] = []  # one per pass over the pairs; the last one's counts are the dataset's

            def source(following: LivePublisher | None = None) -> Iterator[TrainingPair]:
                base = _base_pairs(run_folder / "base", sides) if settings.append else iter(())
                gates.append(SensitiveDataGate(settings.sensitive_data, evidence_texts=evidence))
                found = _followed(journal, record.id, following) if following else journal.finished_pairs(record.id)
                return gates[-1].screen_all(_chain(base, _journal_pairs(found, record.id, reviews, edits)))

            split: PlannedSplit | None = None
            near = None
            if settings.near_duplicate_threshold is not None:
                near = NearDuplicateFilter(
                    embedder,
                    settings.near_duplicate_threshold,
                    mode=settings.near_duplicate_mode,
                )
            if settings.validation_fraction:  # a first pass plans the split (and embeds, once), following the run
                split, removed = _plan_split(source(live), settings, embedder, near, sides)
                pairs: Iterator[TrainingPair] = (
                    pair for pair in source() if not (pair.accepted and pair.id in removed)
                )
            else:
                pairs = near.filter(source(live)) if near else source(live)
            writer = DatasetWriter(
                staging,
                signer,
                recipe=recipe,
                validation_fraction=settings.validation_fraction,
                split=split,
                name=out.name,
                card_info=_card_info(workspace),
            )
            with writer:
                writer.add_many(pairs, workers=workers)
                writer.notes["near_duplicates_removed"] = len(near.removed) if near else 0
                writer.notes["sensitive_data"] = gates[-1].summary()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest = json.loads((staging / MANIFEST_FILE).read_text(encoding="utf-8"))
    replace_directory(staging, out)
    decided = list((reviews or {}).values())
    return {
        name: manifest[name]
        for name in ("record_count", "validation_count", "rejected_count", "duplicates_removed", "merkle_root")
    } | {
        "near_duplicates_removed": manifest.get("near_duplicates_removed", 0),
        "sensitive_data": manifest.get("sensitive_data", {}),
        "rejected_in_review": sum(status == "rejected" for status, _ in decided),
        "edited_in_review": len(edits),
    }


def _card_info(workspace: Workspace) -> CardInfo:
    """The card's license and languages (``[distill]``) and the model each configured teacher serves."""
    config = workspace.config
    models = {entry.name: entry.model for entry in config.teachers if entry.model}
    return CardInfo(license=config.distill.license, languages=config.distill.language, teacher_models=models)


def _plan_split(
    pairs: Iterator[TrainingPair],
    settings: RunSettings,
    embedder: EmbeddingBackend,
    near: NearDuplicateFilter | None,
    sides: dict[str, Side],
) -> tuple[PlannedSplit, set[str]]:
    """The held-out pairs, and the ids the near-duplicate filter removed (so the writing pass need not
    embed again).  With the filter off, the planner embeds to screen the split for near-identical pairs."""
    planner = SplitPlanner(settings.validation_fraction, embedder=None if near else embedder)
    for pair in near.filter(pairs) if near else pairs:
        planner.add(pair, kept_side=sides.get(pair.id))
    return planner.plan(), {pair_id for pair_id, _ in near.removed} if near else set()


def _followed(journal: RunJournal, run_id: str, live: LivePublisher) -> Iterator[tuple[int, dict[str, Any]]]:
    """The run's finished pairs as its workers finish them; stops the publishing if the work failed."""
    for found in journal.follow_pairs(run_id, live.ended):
        if live.aborted:
            raise PublishingAbortedError(run_id)
        yield found
    if live.aborted:
        raise PublishingAbortedError(run_id)


def _journal_pairs(
    found: Iterator[tuple[int, dict[str, Any]]],
    run_id: str,
    reviews: dict[int, tuple[str, str]] | None,
    edits: dict[int, PairEdit],
) -> Iterator[TrainingPair]:
    """The run's pairs; with human review, an accepted pair a person rejected goes to rejected.jsonl,
    and one a person edited is written with their text (see :mod:`.pair_review`)."""
    for position, body in found:
        pair = TrainingPair.from_json(body, where=f"run {run_id}, task {position}")
        if reviews is not None and pair.accepted:
            status, reason = reviews.get(position, ("pending", ""))
            if status == "pending":
                continue  # defensive: a reviewed run is published only once every pair is decided
            if position in edits:
                pair = apply_edit(pair, edits[position])
            if status == "rejected":
                pair = replace(pair, accepted=False, feedback=f"rejected in human review: {reason}")
        yield pair


def _base_pairs(base: Path, sides: dict[str, Side]) -> Iterator[TrainingPair]:
    """The records of the dataset an ``--append`` run adds to; ``sides`` learns where each accepted one was."""
    files: tuple[tuple[str, Side | None], ...] = ((TRAIN_FILE, "train"), (VALIDATION_FILE, "validation"))
    for name, side in (*files, (REJECTED_FILE, None)):
        if (base / name).is_file():
            for _, pair, _ in iter_records(base / name):
                if side is not None:
                    sides[pair.id] = side
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
