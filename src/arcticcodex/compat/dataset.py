"""``DistillationDatasetWriter``: the first API's pair collector, on the signed-dataset writer.

::

    writer = DistillationDatasetWriter(vault=vault, verifier=FrameSigner(key, signer_id="teacher-01"))
    writer.add_training_pair(instruction="…", completion="…", evidence=["doc-…:0"], feedback="…",
                             quality_score=0.92, signer_id="teacher-01")
    writer.filter_by_quality(0.8)
    writer.export_dataset("training_data.jsonl")   # the signed folder training_data/ (train.jsonl …)
    writer.statistics()

Pairs are :class:`~arcticcodex.dataset.TrainingPair` records with content-hash ids; evidence is bound
by chunk id and SHA-256; a quality score must be given (nothing is scored by default); an export is
a whole :class:`~arcticcodex.dataset.DatasetWriter` folder, signed, replacing the previous one in one
step.  ``import_from_conversation`` has the workspace's teachers judge each stored turn
(:meth:`~arcticcodex.refine.TeacherRouter.refine`, one round, no rewrite).  Pairs are held in memory:
this API is for notebooks and scripts; a run of 100k prompts goes through
:meth:`~arcticcodex.distill.Distiller.distill`, which streams.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._sync import run_sync
from ..dataset.record import PairSource, TrainingPair, pair_id_for
from ..dataset.writer import DatasetWriter
from ..errors import DatasetError, RecordNotFoundError, UserError
from ..fileio import replace_directory
from ..forge.record_frames import EvidenceRef, utc_timestamp
from ..provenance.frames import FrameSigner
from ..provenance.signing import Signer
from ..refine import TeacherRouter
from ..teachers.factory import build_pool
from ..teachers.results import EvidenceItem

if TYPE_CHECKING:
    from ..vault.store import Vault

__all__ = ["DistillationDatasetWriter"]

_CHUNK_ID = re.compile(r"^doc-[0-9a-f]+:\d+$")
_BUCKETS = (("excellent (0.95+)", 0.95), ("good (0.85-0.95)", 0.85), ("acceptable (0.75-0.85)", 0.75))


class DistillationDatasetWriter:
    """Pairs collected one by one; ``quality_threshold`` decides which count as verified (accepted)."""

    def __init__(
        self,
        vault: Vault | None = None,
        verifier: FrameSigner | Signer | None = None,
        *,
        quality_threshold: float = 0.75,
    ) -> None:
        self.vault = vault
        self.verifier = verifier
        self.quality_threshold = quality_threshold
        self.pairs: list[TrainingPair] = []

    def add_training_pair(
        self,
        instruction: str,
        completion: str,
        evidence: Sequence[str] | None = None,
        feedback: str = "",
        *,
        quality_score: float | str | Decimal,
        signer_id: str = "system",
        source_convo_id: str | None = None,
    ) -> TrainingPair:
        """Add one pair.  ``evidence`` holds vault chunk ids (``doc-…:3``, checked against the vault) or texts."""
        if not instruction.strip() or not completion.strip():
            raise UserError("a training pair needs a non-empty instruction and completion")
        refs = tuple(self._evidence(item, number) for number, item in enumerate(evidence or (), 1))
        quality = Decimal(str(quality_score))
        source = PairSource("conversation", source_convo_id) if source_convo_id else PairSource("prompts", "python")
        pair = TrainingPair(
            id=pair_id_for(instruction, completion, refs),
            index=len(self.pairs),
            instruction=instruction,
            completion=completion,
            quality=quality,
            signer_id=signer_id,
            created_at=utc_timestamp(datetime.now(UTC)),
            source=source,
            accepted=float(quality) >= self.quality_threshold,
            feedback=feedback,
            evidence=refs,
        )
        self.pairs.append(pair)
        return pair

    def filter_by_quality(self, threshold: float) -> list[TrainingPair]:
        """Keep only the pairs scored at or above ``threshold``; return them."""
        self.pairs = [pair for pair in self.pairs if float(pair.quality) >= threshold]
        return list(self.pairs)

    def export_dataset(self, path: str | Path, quality_threshold: float | None = None) -> dict[str, Any]:
        """Write every pair (verified ones to train.jsonl, the rest to rejected.jsonl) as a signed dataset.

        ``path`` names the dataset folder; a ``.jsonl`` suffix is dropped (``training_data.jsonl`` →
        ``training_data/``), and an existing export there is replaced whole.  Returns the statistics.
        """
        signer = self._signer()
        target = Path(path)
        directory = target.with_suffix("") if target.suffix == ".jsonl" else target
        pairs = self.pairs if quality_threshold is None else self.filter_by_quality(quality_threshold)
        staging = directory.with_name(f".{directory.name}.export.partial")
        if staging.exists():
            shutil.rmtree(staging)
        with DatasetWriter(staging, signer, recipe={"writer": "DistillationDatasetWriter"}) as writer:
            writer.add_many(pairs)
        replace_directory(staging, directory)
        return {"output_dir": str(directory), "train_file": str(directory / "train.jsonl"), **self.statistics()}

    def statistics(self) -> dict[str, Any]:
        qualities = [float(pair.quality) for pair in self.pairs]
        verified = sum(quality >= self.quality_threshold for quality in qualities)
        distribution = dict.fromkeys([name for name, _ in _BUCKETS] + ["poor (<0.75)"], 0)
        for quality in qualities:
            bucket = next((name for name, floor in _BUCKETS if quality >= floor), "poor (<0.75)")
            distribution[bucket] += 1
        return {
            "total_pairs": len(qualities),
            "verified_pairs": verified,
            "unverified_pairs": len(qualities) - verified,
            "average_quality": round(sum(qualities) / len(qualities), 4) if qualities else 0.0,
            "min_quality": min(qualities, default=0.0),
            "max_quality": max(qualities, default=0.0),
            "quality_distribution": distribution,
            "signers": dict(Counter(pair.signer_id for pair in self.pairs)),
        }

    def import_from_conversation(
        self, conversation_id: str, *, signer_id: str = "conversation-import"
    ) -> list[TrainingPair]:
        """Each user turn of a stored conversation with its assistant answer, judged against the chunks it cited.

        The workspace's teachers score each answer (the offline local judge when none is configured):
        one critique and claim check, no rewrite — the conversation is imported as it was said.
        """
        vault = self._vault()
        turns = []
        for user, assistant in vault.iter_turns(conversation_id):
            refs, items = [], []
            for number, chunk_id in enumerate(assistant.citations, 1):
                try:
                    chunk = vault.get_chunk(chunk_id)
                except RecordNotFoundError:
                    continue  # a forgotten chunk may no longer be used as evidence
                refs.append(self._chunk_ref(chunk_id))
                items.append(EvidenceItem(number=number, text=chunk.text, chunk_id=chunk_id))
            turns.append((user.content, assistant.content, refs, items))
        router = TeacherRouter(pool=build_pool(vault.workspace), max_rounds=1, threshold=self.quality_threshold)

        async def judge() -> list[Any]:
            try:
                return [
                    await router.refine(answer, items, instruction=question) for question, answer, _, items in turns
                ]
            finally:
                await router.pool.aclose()

        added = []
        for (question, answer, refs, _), result in zip(turns, run_sync(judge()), strict=True):
            if result.status == "failed":
                raise DatasetError(f"conversation {conversation_id}: a turn could not be judged: {result.failure}")
            weaknesses = result.rounds[-1].critique.weaknesses if result.rounds[-1].critique else []
            pair = self.add_training_pair(
                question,
                answer,
                feedback="; ".join(weaknesses),
                quality_score=round(result.score or 0.0, 4),
                signer_id=signer_id,
                source_convo_id=conversation_id,
            )
            pair = replace(pair, evidence=tuple(refs), id=pair_id_for(question, answer, refs))
            self.pairs[-1] = pair
            added.append(pair)
        return added

    # -- helpers -----------------------------------------------------------------------------------

    def _signer(self) -> Signer:
        if self.verifier is None:
            raise UserError(
                "a dataset is always signed: pass verifier=FrameSigner(KeyStore(keys_dir).signer(NAME), "
                "signer_id=…) or a signer from the key store"
            )
        if isinstance(self.verifier, FrameSigner):
            return self.verifier.signing_key
        return self.verifier

    def _vault(self) -> Vault:
        if self.vault is None:
            raise UserError("this needs a vault: DistillationDatasetWriter(vault=Vault.open(...), verifier=...)")
        return self.vault

    def _evidence(self, item: str, number: int) -> EvidenceRef:
        if not isinstance(item, str) or not item.strip():
            raise UserError(f"evidence item {number} must be a chunk id or a non-empty text")
        if _CHUNK_ID.match(item):
            return self._chunk_ref(item)
        digest = hashlib.sha256(item.encode("utf-8")).hexdigest()
        return EvidenceRef(chunk_id=f"text-evidence:{digest[:16]}", doc_id="python", sha256=digest)

    def _chunk_ref(self, chunk_id: str) -> EvidenceRef:
        vault = self._vault()
        chunk = vault.get_chunk(chunk_id)  # RecordNotFoundError names an unknown or forgotten chunk
        document = vault.get_document(chunk.document_id)
        return EvidenceRef(
            chunk_id=chunk.id,
            doc_id=chunk.document_id,
            sha256=chunk.sha256,
            span=(chunk.start_byte, chunk.end_byte),
            source=document.source,
        )
