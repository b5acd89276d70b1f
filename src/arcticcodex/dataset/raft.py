"""Citation-aware training examples (RAFT-style): the evidence hidden among distractors, the answer citing it.

A model trained with only the right evidence in front of it (``dataset export --with-evidence``)
never has to *choose* what to cite.  Retrieval at inference time returns the right chunk among others
that look like it, so each example here shows the pair's oracle evidence shuffled among ``k``
distractor chunks from the vault, and the answer's ``[n]`` markers are renumbered to point at the
oracle's new place: the student learns to find its evidence and cite it (Zhang et al., "RAFT",
2024).

Distractors are chunks of *other* documents that resemble the question (the vault's own hybrid
search), so they are hard to tell from the evidence; when the search finds too few, random chunks of
other documents fill the rest.  Everything random is seeded by the pair's id, so the same dataset and
vault give the same file on every run.  A pair whose evidence text is not in the vault cannot be
shown and is refused by name; a pair with no evidence has nothing to cite and is left out (counted in
:attr:`RaftExamples.left_out`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import DatasetError
from .citations import EvidenceTexts, renumber_citations
from .record import TrainingPair

if TYPE_CHECKING:
    from ..vault.search import Searcher
    from ..vault.store import Vault

__all__ = ["DEFAULT_DISTRACTORS", "DEFAULT_RAFT_PROMPT", "MAX_DISTRACTORS", "Passage", "RaftExamples", "VaultPassages"]

DEFAULT_DISTRACTORS = 3
MAX_DISTRACTORS = 20
DEFAULT_RAFT_PROMPT = (
    "Answer the question from the numbered documents below.  Not all of them are relevant: "
    "use the ones that are, and cite them as [n]."
)
SIMILAR_SHORTLIST = 2
"""Distractors are drawn from the best ``SIMILAR_SHORTLIST × k`` similar chunks, not always the top k."""


@dataclass(frozen=True, slots=True)
class Passage:
    """A chunk shown in an example's prompt."""

    chunk_id: str
    doc_id: str
    source: str
    sha256: str
    text: str


class PassageSource(Protocol):
    """Where distractors come from: chunks similar to a query, and random chunks (both outside ``exclude``)."""

    def similar(self, query: str, limit: int) -> list[Passage]: ...

    def sample(self, rng: random.Random, count: int, exclude: Exclusions) -> list[Passage]: ...


@dataclass(frozen=True, slots=True)
class Exclusions:
    """What may not be a distractor: the evidence's documents (by id and by source) and texts, and chunks taken."""

    doc_ids: frozenset[str]
    sources: frozenset[str]
    hashes: frozenset[str]
    chunk_ids: frozenset[str] = frozenset()

    def allows(self, passage: Passage) -> bool:
        return not (
            passage.doc_id in self.doc_ids
            or passage.source in self.sources
            or passage.sha256 in self.hashes
            or passage.chunk_id in self.chunk_ids
        )


class VaultPassages:
    """A :class:`PassageSource` over a vault: its hybrid search, and random chunks in rowid order."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self._searcher: Searcher | None = None

    def similar(self, query: str, limit: int) -> list[Passage]:
        if self._searcher is None:
            from ..vault.search import Searcher  # numpy and the vectors: only when a raft export runs

            self._searcher = Searcher(self.vault)  # loads the vectors once, on the first pair
        return [
            Passage(hit.chunk_id, hit.doc_id, hit.source, hit.sha256, hit.text)
            for hit in self._searcher.search(query, k=limit)
        ]

    def sample(self, rng: random.Random, count: int, exclude: Exclusions) -> list[Passage]:
        where, params = _outside(exclude)
        base = f"FROM chunks c JOIN documents d ON d.id = c.document_id WHERE {where}"
        (total,) = self.vault.conn.execute(f"SELECT COUNT(*) {base}", params).fetchone()
        chosen = sorted(rng.sample(range(total), min(count, total)))
        query = f"SELECT c.id, c.document_id, d.source, c.sha256, c.text {base} ORDER BY c.rowid LIMIT 1 OFFSET ?"
        return [Passage(*self.vault.conn.execute(query, [*params, offset]).fetchone()) for offset in chosen]


def _outside(exclude: Exclusions) -> tuple[str, list[str]]:
    """The SQL condition (and its parameters) for a chunk that ``exclude`` allows."""
    clauses, params = ["1"], []
    for column, values in (
        ("c.document_id", exclude.doc_ids),
        ("d.source", exclude.sources),
        ("c.sha256", exclude.hashes),
        ("c.id", exclude.chunk_ids),
    ):
        if values:
            clauses.append(f"{column} NOT IN ({', '.join('?' * len(values))})")
            params += sorted(values)
    return " AND ".join(clauses), params


class RaftExamples:
    """Turns each pair into one RAFT-style row: ``{"id", "messages", "oracle", "documents"}``.

    ``messages`` is conversational (TRL, Axolotl ``chat_template``): a system message with
    ``system_prompt`` (or :data:`DEFAULT_RAFT_PROMPT`) and the numbered documents, the earlier turns,
    the question, and the answer with its markers renumbered.  ``oracle`` lists the numbers the
    evidence got; ``documents`` names each document shown and whether it is evidence.
    """

    def __init__(
        self,
        evidence_texts: EvidenceTexts,
        passages: PassageSource,
        *,
        distractors: int = DEFAULT_DISTRACTORS,
        system_prompt: str | None = None,
    ) -> None:
        if not 1 <= distractors <= MAX_DISTRACTORS:
            raise DatasetError(
                f"distractors must be between 1 and {MAX_DISTRACTORS}, not {distractors} "
                "(for the evidence alone, export with with_evidence instead)",
                parameters=["distractors", "with_evidence"],
            )
        if system_prompt is not None and not system_prompt.strip():
            raise DatasetError("the system prompt is empty; give its text, or leave the option out")
        self.evidence_texts = evidence_texts
        self.passages = passages
        self.distractors = distractors
        self.system_prompt = system_prompt or DEFAULT_RAFT_PROMPT
        self.left_out = 0
        """Pairs with no evidence, which have nothing to cite and are not written."""

    def row(self, pair: TrainingPair, where: str) -> dict[str, Any] | None:
        """The example for ``pair`` (``where``, its ``file:line``, names it in errors), or None without evidence."""
        if not pair.evidence:
            self.left_out += 1
            return None
        oracle = self._oracle(pair, where)
        # a str seed is hashed with SHA-512: the same order on every run; nothing here is secret
        rng = random.Random(f"raft:{pair.id}")  # noqa: S311
        shown = [*oracle, *self._distractors(pair, oracle, rng, where)]
        order = list(range(len(shown)))
        rng.shuffle(order)  # order[place] = which document is shown at that place
        positions = [order.index(item) + 1 for item in range(len(oracle))]
        blocks = [f"[{place}] ({shown[item].source})\n{shown[item].text}" for place, item in enumerate(order, 1)]
        system = f"{self.system_prompt}\n\nDOCUMENTS:\n" + "\n\n".join(blocks)
        turns = [
            {"role": turn.role, "content": renumber_citations(turn.content, positions)}
            if turn.role == "assistant"
            else turn.to_json()
            for turn in pair.context
            if turn.role != "system"  # the documents' system message replaces an earlier one
        ]
        return {
            "id": pair.id,
            "messages": [
                {"role": "system", "content": system},
                *turns,
                {"role": "user", "content": pair.instruction},
                {"role": "assistant", "content": renumber_citations(pair.completion, positions)},
            ],
            "oracle": positions,
            "documents": [
                {"chunk_id": shown[item].chunk_id, "source": shown[item].source, "oracle": item < len(oracle)}
                for item in order
            ],
        }

    def _oracle(self, pair: TrainingPair, where: str) -> list[Passage]:
        oracle = []
        for number, ref in enumerate(pair.evidence, 1):
            text = self.evidence_texts(ref)
            if text is None:
                raise DatasetError(
                    f"{where}: the text of evidence [{number}] ({ref.source or ref.doc_id}, {ref.chunk_id}) of "
                    f"pair {pair.id} is not in this workspace (its chunk was forgotten or changed, or the dataset "
                    "was made elsewhere), so it cannot be shown among distractors; export from the workspace "
                    "that made the dataset, or in a format without evidence "
                    "(`arcticcodex dataset export DIR --format messages`)"
                )
            oracle.append(Passage(ref.chunk_id, ref.doc_id, ref.source or ref.doc_id, ref.sha256, text))
        return oracle

    def _distractors(
        self, pair: TrainingPair, oracle: Sequence[Passage], rng: random.Random, where: str
    ) -> list[Passage]:
        """``distractors`` chunks of other documents: similar ones first, random ones for the rest."""
        exclude = Exclusions(
            doc_ids=frozenset(ref.doc_id for ref in pair.evidence),
            sources=frozenset(ref.source for ref in pair.evidence if ref.source),
            hashes=frozenset(passage.sha256 for passage in oracle),
        )
        wanted = self.distractors
        similar: list[Passage] = []
        for passage in self.passages.similar(pair.instruction, limit=SIMILAR_SHORTLIST * wanted + 4 * len(oracle)):
            if exclude.allows(passage) and passage.sha256 not in {taken.sha256 for taken in similar}:
                similar.append(passage)
        chosen = rng.sample(similar[: SIMILAR_SHORTLIST * wanted], min(wanted, len(similar)))
        if len(chosen) < wanted:
            taken = Exclusions(
                exclude.doc_ids,
                exclude.sources,
                exclude.hashes | {passage.sha256 for passage in chosen},
                frozenset(passage.chunk_id for passage in chosen),
            )
            chosen += self.passages.sample(rng, wanted - len(chosen), taken)
        if len(chosen) < wanted:
            raise DatasetError(
                f"{where}: pair {pair.id} needs {wanted} distractor chunks, but the vault has only {len(chosen)} "
                "outside the documents of its evidence; import more documents "
                "(`arcticcodex vault import PATH`), or set distractors lower",
                parameters=["distractors"],
            )
        return chosen
