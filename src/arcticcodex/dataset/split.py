"""The held-out split: which accepted pairs go to ``validation.jsonl`` instead of ``train.jsonl``.

A validation set is only worth its name if the model never saw anything like it in training, so:

* **by source document** — a pair's document (:func:`source_document`: the vault document its first
  evidence comes from, the evidence text given with a prompt, or the conversation it was taken from)
  decides its side, so two questions about the same passage never sit on both sides;
* **near-identical pairs never straddle** — with ``--keep-near-duplicates`` the near-duplicate
  filter's embedder screens the split: a held-out pair whose cosine to a training pair reaches the
  filter's threshold takes its whole document to the training side (with the filter on, kept pairs
  are below that threshold of one another by construction, so there is nothing to screen);
* **exact-ish** — the held-out side holds ``round(fraction × accepted)`` pairs, as near as whole
  documents allow (today's one-hash-per-pair split could hold 0 or 5 of 8 at 0.3);
* **deterministic and stable** — documents are taken in the order of a hash of their key, not of
  arrival or chance, so re-writing the same pairs (a resumed or re-published run) gives the same
  split, a few more pairs move few, and pairs an ``--append`` run found on a side stay there.

:class:`SplitPlanner` plans it from a first pass over the pairs (ids and document keys: about 100
bytes a pair, plus 768 bytes a pair of float16 vectors only when screening); :class:`PlannedSplit`
applies the plan while the writer streams.  :class:`RunningSplit` is the writer's own rule for
callers that cannot read their pairs twice: by document too, deterministic in write order, and
within one document of the fraction at every point.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, Protocol

from .id_set import IdSet, KeptIds
from .record import TrainingPair

if TYPE_CHECKING:  # numpy and the embedder are needed only to screen a split, so only imported then
    import numpy as np

    from ..vault.embeddings import EmbeddingBackend

__all__ = ["PlannedSplit", "RunningSplit", "Side", "Split", "SplitPlanner", "source_document"]

Side = Literal["train", "validation"]
FREE_TEXT_EVIDENCE = ("prompt-evidence:", "text-evidence:")  # chunk ids of evidence given as text, not a vault chunk
SCREEN_ROWS = 1024  # training vectors compared at a time: a 1024 × held-out float32 block
EMBED_BATCH = 256


def source_document(pair: TrainingPair) -> str:
    """The document a pair comes from, as the split groups it.

    A conversation's pairs share their earlier turns, so the conversation is the document; otherwise
    the first (best) evidence: its vault document, or, for evidence given as text with a prompt, that
    text (a prompts file is many small documents, not one).  A pair with no evidence is its own.
    """
    if pair.source.kind == "conversation":
        return "conversation:" + pair.source.ref.split("#", 1)[0]
    if pair.evidence:
        first = pair.evidence[0]
        if first.chunk_id.startswith(FREE_TEXT_EVIDENCE):
            return "text:" + first.sha256
        return "document:" + first.doc_id
    return "pair:" + pair.id


class Split(Protocol):
    """Decides, in write order, whether each accepted pair is held out."""

    def holds_out(self, pair: TrainingPair) -> bool: ...


class PlannedSplit:
    """A split planned beforehand (:class:`SplitPlanner`): exactly the pairs it names are held out."""

    def __init__(self, held_out: Iterable[str]) -> None:
        self.held_out = frozenset(held_out)

    def holds_out(self, pair: TrainingPair) -> bool:
        return pair.id in self.held_out


class RunningSplit:
    """Held out by document, decided when a document is first met: it is held out while the held-out
    side is below ``round(fraction × pairs so far)``, and its later pairs follow it."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self.seen = 0
        self.held = 0
        self.sides: dict[str, bool] = {}

    def holds_out(self, pair: TrainingPair) -> bool:
        document = source_document(pair)
        held = self.sides.get(document)
        if held is None:
            held = self.sides[document] = self.held < round(self.fraction * (self.seen + 1))
        self.seen += 1
        self.held += held
        return held


class SplitPlanner:
    """Plan a split from the accepted pairs, added in write order (see the module docstring).

    ``embedder`` (with ``threshold``, the cosine at which pairs are near-identical) screens the plan;
    without it nothing is screened, which is right when the near-duplicate filter already ran.
    """

    def __init__(self, fraction: float, *, embedder: EmbeddingBackend | None = None, threshold: float = 0.95) -> None:
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"the validation fraction must be in [0, 1), not {fraction}")
        self.fraction = fraction
        self.embedder = embedder
        self.threshold = threshold
        self._ids = KeptIds()  # ~16 bytes an id (id_set.py)
        self._seen = IdSet()
        self._documents: list[str] = []
        self._kept: dict[str, Side] = {}  # document → the side pairs published before put it on
        self._texts: list[str] = []
        self._vectors: list[np.ndarray] = []

    @property
    def count(self) -> int:
        return len(self._ids)

    def add(self, pair: TrainingPair, *, kept_side: Side | None = None) -> None:
        """Count an accepted pair; ``kept_side`` is the side it was published on before (``--append``)."""
        if not pair.accepted or pair.id in self._seen:
            return  # rejected pairs are never split; an exact duplicate is written once
        self._seen.add(pair.id)
        self._ids.append(pair.id)
        document = source_document(pair)
        self._documents.append(document)
        if kept_side is not None and self._kept.get(document) != "train":
            self._kept[document] = kept_side  # a document with a pair in training stays there
        if self.embedder is not None:
            self._texts.append(f"{pair.instruction}\n{pair.completion}")
            if len(self._texts) >= EMBED_BATCH:
                self._embed()

    def plan(self) -> PlannedSplit:
        """The held-out pairs: whole documents, in hash order, as near to the fraction as they allow."""
        import numpy as np

        self._embed()
        rows: dict[str, list[int]] = defaultdict(list)
        for row, document in enumerate(self._documents):
            rows[document].append(row)
        target = round(self.fraction * self.count)
        held = {document for document, side in self._kept.items() if side == "validation"}
        decided = set(self._kept)
        count = sum(len(rows[document]) for document in held)
        order = sorted((d for d in rows if d not in decided), key=lambda d: (_hash(d), d))
        vectors = np.concatenate(self._vectors) if self._vectors else None
        fresh: set[str] = set()
        while True:
            for document in order:
                if document not in decided and 2 * (target - count) > len(rows[document]):
                    decided.add(document)
                    held.add(document)
                    fresh.add(document)
                    count += len(rows[document])
            if vectors is None or not fresh:
                break
            linked = self._linked(vectors, rows, held, fresh)
            fresh = set()
            if not linked:
                break
            held -= linked  # to the training side, with the pairs they are near-identical to
            count -= sum(len(rows[document]) for document in linked)
        return PlannedSplit(self._ids[row] for document in held for row in rows[document])

    def _linked(self, vectors: np.ndarray, rows: dict[str, list[int]], held: set[str], fresh: set[str]) -> set[str]:
        """Held-out documents with a pair near-identical to a training pair, until none is left.

        Only ``fresh`` documents need checking at first (the others were checked against every
        training pair); a document moved to training is then checked against what stays held out.
        """
        import numpy as np

        moved: set[str] = set()
        candidates, against = set(fresh), [d for d in rows if d not in held]
        while candidates and against:
            candidate_rows = [row for document in candidates for row in rows[document]]
            owners = np.array([document for document in candidates for _ in rows[document]], dtype=object)
            near = np.zeros(len(candidate_rows), dtype=bool)
            held_vectors = vectors[candidate_rows].astype(np.float32)
            against_rows = np.array([row for document in against for row in rows[document]], dtype=np.int64)
            for start in range(0, len(against_rows), SCREEN_ROWS):
                block = vectors[against_rows[start : start + SCREEN_ROWS]].astype(np.float32)
                near |= (block @ held_vectors.T >= self.threshold).any(axis=0)
            found = {str(document) for document in owners[near]}
            moved |= found
            held -= found
            against = sorted(found)
            candidates = held - moved
        return moved

    def _embed(self) -> None:
        if self.embedder is not None and self._texts:
            import numpy as np

            from .dedup import NearDuplicateFilter

            vectors = NearDuplicateFilter._unit(self.embedder.embed(self._texts))
            self._vectors.append(vectors.astype(np.float16))
            self._texts = []


def _hash(document: str) -> bytes:
    return hashlib.sha256(document.encode("utf-8")).digest()
