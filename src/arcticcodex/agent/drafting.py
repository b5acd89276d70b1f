"""The offline drafter: a first answer built only from evidence sentences, for runs with no model.

With no API key and no GPU a run still needs a draft for the teachers to judge.  This one makes up
nothing: it picks the evidence sentences that share the most content words with the instruction,
keeps them in the order the evidence gives them, and says which evidence items it used.  When no
sentence relates to the instruction it returns None, and the run records the prompt as failed with
that reason instead of inventing an answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..teachers.local_judge import content_words, evidence_sentences
from ..teachers.models import EvidenceItem

__all__ = ["Draft", "ExtractiveDrafter"]


@dataclass(frozen=True, slots=True)
class Draft:
    """A first answer, the evidence items it was built from (their numbers), and who wrote it."""

    text: str
    evidence_used: tuple[int, ...]
    drafter: str


class ExtractiveDrafter:
    """Answer from the evidence's own sentences, ranked by content-word overlap with the instruction."""

    name = "extractive-drafter/v1 (offline, no LLM)"

    def __init__(self, max_sentences: int = 3) -> None:
        if max_sentences < 1:
            raise ValueError("max_sentences must be at least 1")
        self.max_sentences = max_sentences

    def draft(self, instruction: str, evidence: Sequence[EvidenceItem]) -> Draft | None:
        focus = content_words(instruction)
        candidates: list[tuple[int, int, str, int]] = []  # (-overlap, position, sentence, evidence number)
        seen: set[str] = set()
        for item in evidence:
            for sentence in evidence_sentences(item.text):
                if sentence in seen:
                    continue
                seen.add(sentence)
                overlap = len(content_words(sentence) & focus)
                if overlap:
                    candidates.append((-overlap, len(candidates), sentence, item.number))
        if not candidates:
            return None
        chosen = sorted(sorted(candidates)[: self.max_sentences], key=lambda candidate: candidate[1])
        used = tuple(dict.fromkeys(number for *_, number in chosen))
        return Draft(text=" ".join(sentence for _, _, sentence, _ in chosen), evidence_used=used, drafter=self.name)
