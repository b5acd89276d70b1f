"""The offline drafter: a first answer built only from evidence passages, for runs with no model.

With no API key and no GPU a run still needs a draft for the teachers to judge.  This one makes up
nothing: it picks the evidence passages (prose sentences and table rows, see
:mod:`arcticcodex.teachers.passages`) that best match the instruction, keeps them in the order the
evidence gives them, and says which evidence items it used.

How a passage matches: the instruction's content words, stemmed ("passwords" finds "password",
"retries" finds "retried"), each weighted by how rare it is in this evidence (the words of the
document's title are its subject and count for little), found in the passage
itself and — at half weight — in the heading of the section it sits in, so "What does the guide say
about retries and failures?" prefers the sentences under "## Retries and failures".  Question words
("what", "does", "explain") match nothing, and a passage scoring under 40% of the best is left out
(it would pad the answer, not support it).

When no passage shares a word with the instruction, the agent's ``ask`` must say it found nothing,
so :meth:`ExtractiveDrafter.draft` returns None.  A distillation run asks with ``fallback=True``
instead: the evidence was chosen for this prompt (given with it, or retrieved for it), so the
drafter offers its leading passages and lets the teachers judge them, rather than failing the
prompt with "nothing to draft".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..teachers.passages import STOP_WORDS, Passage, evidence_passages, stems
from ..teachers.results import EvidenceItem

__all__ = ["Draft", "ExtractiveDrafter"]

QUESTION_WORDS = STOP_WORDS | frozenset(
    "what which who whom whose when where why how does did do say says said about explain explains describe"
    " describes tell me you your i we our part begins mean there any some should could may might".split()
)
HEADING_WEIGHT = 0.5
RELEVANT_SHARE = 0.4
MINOR_WEIGHT = 0.1


@dataclass(frozen=True, slots=True)
class Draft:
    """A first answer, the evidence items it was built from (their numbers), and who wrote it.

    ``fallback`` is True when no passage matched the instruction and the leading passages were
    offered instead (only when the caller asked for that).
    """

    text: str
    evidence_used: tuple[int, ...]
    drafter: str
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class _Candidate:
    position: int
    passage: Passage
    number: int
    score: float


class ExtractiveDrafter:
    """Answer from the evidence's own passages, ranked by stemmed, weighted overlap with the instruction."""

    name = "extractive-drafter/v2 (offline, no LLM)"

    def __init__(self, max_sentences: int = 3, *, fallback: bool = False) -> None:
        if max_sentences < 1:
            raise ValueError("max_sentences must be at least 1")
        self.max_sentences = max_sentences
        self.fallback = fallback

    def draft(self, instruction: str, evidence: Sequence[EvidenceItem]) -> Draft | None:
        """The best-matching passages, in evidence order; None when nothing matches and no fallback is wanted."""
        found = self._passages(evidence)
        if not found:
            return None
        focus = stems(instruction, ignore=QUESTION_WORDS)
        weights = _rarity(focus, [passage for passage, _ in found])
        candidates = [
            _Candidate(position, passage, number, _score(passage, focus, weights))
            for position, (passage, number) in enumerate(found)
        ]
        ranked = sorted((c for c in candidates if c.score > 0), key=lambda c: (-c.score, c.position))
        if ranked:  # a passage far weaker than the best one is padding, not part of the answer
            ranked = [c for c in ranked if c.score >= RELEVANT_SHARE * ranked[0].score]
        fallback = not ranked
        if fallback:
            if not self.fallback:
                return None
            first = candidates[0].number  # the first evidence item: given first, or retrieved as the best
            ranked = [c for c in candidates if c.number == first]
        chosen = sorted(ranked[: self.max_sentences], key=lambda c: c.position)
        return Draft(
            text=" ".join(c.passage.text for c in chosen),
            evidence_used=tuple(dict.fromkeys(c.number for c in chosen)),
            drafter=self.name,
            fallback=fallback,
        )

    @staticmethod
    def _passages(evidence: Sequence[EvidenceItem]) -> list[tuple[Passage, int]]:
        """Every passage once (the same sentence in two items is used from the first), with its item number."""
        seen: set[str] = set()
        found = []
        for item in evidence:
            for passage in evidence_passages(item.text):
                if passage.text not in seen:
                    seen.add(passage.text)
                    found.append((passage, item.number))
        return found


def _rarity(focus: set[str], passages: list[Passage]) -> dict[str, float]:
    """Each focus stem's weight: log(N / passages holding it), so a rare word counts for more; a word
    of a document's title (a level-1 heading) is its subject, not the question's, and counts 0.1."""
    held = Counter(word for passage in passages for word in (stems(passage.text) | stems(passage.heading)) & focus)
    subject = {word for passage in passages if passage.level == 1 for word in stems(passage.heading)}
    return {
        word: MINOR_WEIGHT if word in subject else max(MINOR_WEIGHT, math.log(len(passages) / held[word]))
        for word in focus
        if held[word]
    }


def _score(passage: Passage, focus: set[str], weights: dict[str, float]) -> float:
    own = sum(weights.get(word, 0.0) for word in stems(passage.text) & focus)
    heading = sum(weights.get(word, 0.0) for word in stems(passage.heading) & focus) if passage.heading else 0.0
    return own + HEADING_WEIGHT * heading
