"""What a trainer sees of a pair: its ``[n]`` citation markers, and the evidence they point to.

A completion says "Otters eat mostly fish [1]." because its teachers read numbered evidence.  Trained
on without that evidence, a model learns to write ``[1]`` after claims with nothing to point to —
invented citations.  So exports remove the markers, unless the export puts the evidence in front
of the model (RAG-style training): then every example carries a system message with the numbered
evidence, and the markers stay, because now they resolve.

A marker is ``[n]``, ``[n, m]``, ``[n-m]`` or several in a row, and only when every number is one of
the pair's evidence items (``list[3]`` in a code answer with two evidence items is not a citation);
text in backticks and fenced code blocks is never touched.  The signed record is not changed: the
view is made for the export only, and the ``fn`` export (the signed frames) has no view.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from ..errors import DatasetError
from ..forge.record_frames import EvidenceRef
from .record import TrainingPair, Turn

__all__ = ["DEFAULT_RAG_PROMPT", "EvidenceTexts", "TrainingView", "renumber_citations", "strip_citations"]

EvidenceTexts = Callable[[EvidenceRef], str | None]
"""Finds an evidence item's text (checked against its SHA-256), or None when it cannot be found."""

DEFAULT_RAG_PROMPT = "Answer the question from the numbered evidence below, and cite it as [n]."
_MARKERS = re.compile(r"[ \t]*(?:\[\d+(?:\s*[,\u2013-]\s*\d+)*\])+")
_CODE = re.compile(r"(```.*?(?:```|$)|~~~.*?(?:~~~|$)|`[^`\n]*`)", re.DOTALL)
_NUMBER = re.compile(r"\d+")
_GROUP = re.compile(r"\[([^\]]*)\]")
_ITEM = re.compile(r"(\d+)\s*[\u2013-]\s*(\d+)|(\d+)")


def strip_citations(text: str, evidence_count: int) -> str:
    """``text`` without the ``[n]`` markers that cite one of ``evidence_count`` evidence items."""
    if evidence_count < 1 or "[" not in text:
        return text
    parts = _CODE.split(text)
    for index in range(0, len(parts), 2):  # even parts are prose, odd parts are code
        parts[index] = _MARKERS.sub(lambda match: _unless_other(match, evidence_count), parts[index])
    stripped = "".join(parts)
    return stripped.lstrip() if not text[:1].isspace() else stripped


def _unless_other(match: re.Match[str], evidence_count: int) -> str:
    numbers = [int(number) for number in _NUMBER.findall(match.group(0))]
    return "" if all(1 <= number <= evidence_count for number in numbers) else match.group(0)


def renumber_citations(text: str, positions: Sequence[int]) -> str:
    """``text`` with each marker citing item ``n`` rewritten to cite ``positions[n - 1]`` instead.

    For a prompt that shows the evidence in another order (RAFT-style examples, :mod:`.raft`).  The
    same markers as :func:`strip_citations`: code and markers citing a number the pair has no item
    for are left alone.  A range (``[1-2]``) is written out (``[3, 1]``): its items need no longer be
    neighbours.
    """
    count = len(positions)
    if count < 1 or "[" not in text:
        return text
    parts = _CODE.split(text)
    for index in range(0, len(parts), 2):  # even parts are prose, odd parts are code
        parts[index] = _MARKERS.sub(lambda match: _renumbered(match, positions), parts[index])
    return "".join(parts)


def _renumbered(match: re.Match[str], positions: Sequence[int]) -> str:
    marker = match.group(0)
    if not all(1 <= int(number) <= len(positions) for number in _NUMBER.findall(marker)):
        return marker
    lead = marker[: len(marker) - len(marker.lstrip(" \t"))]
    return lead + "".join(
        "[" + ", ".join(str(positions[n - 1]) for n in _cited(group)) + "]" for group in _GROUP.findall(marker)
    )


def _cited(group: str) -> list[int]:
    """The item numbers one bracket cites, ranges written out (``1, 3-4`` → 1, 3, 4)."""
    numbers: list[int] = []
    for match in _ITEM.finditer(group):
        if match.group(3):
            numbers.append(int(match.group(3)))
            continue
        low, high = int(match.group(1)), int(match.group(2))
        numbers += range(low, high + 1) if low <= high else [low, high]
    return numbers


class TrainingView:
    """How an export shows a pair to a trainer: markers removed, or the evidence (and a prompt) added.

    ``evidence_texts`` turns on RAG-style examples: each gets a system message with the numbered
    evidence (after ``system_prompt``, or :data:`DEFAULT_RAG_PROMPT`), and its markers are kept.
    ``system_prompt`` alone adds that system message without evidence (markers are removed).
    """

    def __init__(self, *, evidence_texts: EvidenceTexts | None = None, system_prompt: str | None = None) -> None:
        if system_prompt is not None and not system_prompt.strip():
            raise DatasetError("the system prompt is empty; give its text, or leave the option out")
        self.evidence_texts = evidence_texts
        self.system_prompt = system_prompt

    @property
    def keeps_citations(self) -> bool:
        return self.evidence_texts is not None

    def apply(self, pair: TrainingPair, where: str) -> TrainingPair:
        """The pair as the trainer sees it (same id); ``where`` (``file:line``) names it in errors."""
        count = len(pair.evidence)
        clean = (lambda text: text) if self.keeps_citations else (lambda text: strip_citations(text, count))
        context = tuple(
            Turn(turn.role, clean(turn.content)) if turn.role == "assistant" else turn for turn in pair.context
        )
        system = self._system(pair, where)
        return replace(
            pair,
            completion=clean(pair.completion),
            context=((Turn("system", system),) if system else ()) + context,
            revisions=tuple(replace(revision, text=clean(revision.text)) for revision in pair.revisions),
        )

    def _system(self, pair: TrainingPair, where: str) -> str | None:
        if self.evidence_texts is None:
            return self.system_prompt
        blocks = []
        for number, ref in enumerate(pair.evidence, 1):
            text = self.evidence_texts(ref)
            if text is None:
                raise DatasetError(
                    f"{where}: the text of evidence [{number}] ({ref.source or ref.doc_id}, {ref.chunk_id}) is "
                    "not in this workspace (its chunk was forgotten or changed, or the dataset was made "
                    "elsewhere); export from the workspace that made it, or without with_evidence",
                    parameters=["with_evidence"],
                )
            blocks.append(f"[{number}]" + (f" ({ref.source})" if ref.source else "") + f"\n{text}")
        evidence = "\n\n".join(blocks) or "(none)"
        return f"{self.system_prompt or DEFAULT_RAG_PROMPT}\n\nEVIDENCE:\n{evidence}"
