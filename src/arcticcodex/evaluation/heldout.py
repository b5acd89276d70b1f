"""The held-out questions of a signed dataset: its validation split, each with its accepted answer.

An evaluation is only as honest as its questions, so the dataset is verified first, as an export is
(a tampered dataset is refused, an untrusted one needs ``allow_untrusted``), and only the
validation split is read: the pairs the student was not trained on (``arcticcodex train`` trains
on the train split).  Each question keeps the conversation before it, the accepted answer with its
citation markers removed (a student is trained without them), and the evidence the teachers judged
it against — found again in the workspace that made the dataset (:data:`EvidenceTexts`), each text
checked against the SHA-256 the pair was signed with.  An item whose text cannot be found is left
out, and the question says so (``evidence_missing``), so a grounded rate is never computed against
less evidence than it claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..dataset.citations import EvidenceTexts, strip_citations
from ..dataset.record import iter_records
from ..dataset.verify import require_verified
from ..errors import DatasetError
from ..layout import VALIDATION_FILE
from ..provenance.trust import KeyRing
from ..teachers.results import EvidenceItem
from ..training.receipt import dataset_identity

__all__ = ["HeldOutQuestion", "HeldOutSet", "load_heldout"]


@dataclass(frozen=True, slots=True)
class HeldOutQuestion:
    """One validation pair as a question: what the student is asked, and what it is measured against."""

    pair_id: str
    where: str  # file:line in the dataset, for messages
    messages: tuple[dict[str, str], ...]  # the earlier turns and the question, as the student was trained
    question: str
    reference: str  # the accepted answer, citation markers removed
    evidence: tuple[EvidenceItem, ...]
    evidence_missing: int  # evidence items the pair cites whose text was not found


@dataclass(frozen=True, slots=True)
class HeldOutSet:
    directory: Path
    merkle_root: str | None
    questions: tuple[HeldOutQuestion, ...]


def load_heldout(
    directory: str | Path,
    *,
    keyring: KeyRing | None = None,
    allow_untrusted: bool = False,
    evidence_texts: EvidenceTexts | None = None,
    limit: int | None = None,
) -> HeldOutSet:
    """The validation pairs of the dataset in ``directory`` (the first ``limit`` of them), verified first."""
    directory = Path(directory)
    report = require_verified(directory, keyring=keyring, allow_untrusted=allow_untrusted)
    validation = directory / VALIDATION_FILE
    if not validation.is_file() or report.validation == 0:
        raise DatasetError(
            f"{directory} has no validation split ({VALIDATION_FILE} is missing or empty), so it has no held-out "
            "questions to evaluate on: distill with a validation fraction to hold pairs out "
            "(`arcticcodex distill … --validation 0.1`), then train on the new dataset",
            parameters=["heldout"],
        )
    questions = []
    for where, pair, _ in iter_records(validation):
        if not pair.accepted:
            continue
        found: list[EvidenceItem] = []
        for ref in pair.evidence:
            text = evidence_texts(ref) if evidence_texts is not None else None
            if text is not None:
                found.append(
                    EvidenceItem(number=len(found) + 1, text=text, source=ref.source or "", chunk_id=ref.chunk_id)
                )
        prompt = pair.messages[:-1]
        questions.append(
            HeldOutQuestion(
                pair_id=pair.id,
                where=where,
                messages=tuple(prompt),
                question=pair.instruction,
                reference=strip_citations(pair.completion, len(pair.evidence)),
                evidence=tuple(found),
                evidence_missing=len(pair.evidence) - len(found),
            )
        )
        if limit is not None and len(questions) >= limit:
            break
    return HeldOutSet(directory, dataset_identity(directory).get("merkle_root"), tuple(questions))
