"""Near-duplicate removal: accepted pairs whose question and answer mean the same as an earlier one.

Exact duplicates share an id (a content hash) and are dropped by the writer; paraphrases do not, so
each accepted pair's ``instruction + completion`` is embedded (in batches of :data:`BATCH`) and
compared with the pairs kept so far; a cosine at or above the threshold drops it, and the earliest
pair is the one kept.  The kept vectors are held as float16 (768 bytes a pair for a 384-dimension
model): 77 MB at 100k accepted pairs, the one part of writing a dataset that grows with it.

Screening is a batch at a time, never a vector at a time (issue 19: one vector against the whole
kept matrix made the total time quadratic — 9.2 ms a pair at 20k pairs):

* **against the kept set** — one matrix product per batch, the kept float16 matrix converted to
  float32 :data:`CHUNK` rows at a time (a bounded buffer, never the whole matrix);
* **against itself** — a later pair of a batch may duplicate an earlier pair of the same batch that
  was kept, so the batch is also multiplied by its own float16-rounded vectors;
* then the batch is decided pair by pair in order, exactly as a one-at-a-time filter would: the
  kept side compared as its float16-rounded vector, the best match over every pair kept so far, the
  earliest winning a tie (the one difference: a product of a matrix sums in another order than a
  product of a vector, so a cosine within a float32 rounding of the threshold may fall the other
  way).  Decisions therefore do not depend on where batches begin, so a resumed publish, which
  replays the same pairs in the same order, writes the same dataset.

Each pair is screened with its own vector: the filter this replaced lost step after an id repeated
within a batch and screened every later pair of that batch with its predecessor's vector.

Three modes (``mode``):

``"exact"``
    the above against every kept pair.  Total time still grows with the square of the pairs, but
    with a small constant: ``benchmarks/dedup.py`` measures it (figures in ``benchmarks/README.md``).
``"approximate"``
    the kept vectors are also filed in an approximate index (:class:`~.dedup_index.KeptIndex`:
    faiss's binary multi-hash index over random-hyperplane codes, chosen by measurement over faiss,
    usearch and hnswlib in ``benchmarks/README.md``) whose cost a pair hardly grows with the kept
    set; each batch asks it for :data:`~.dedup_index.CANDIDATES` candidates a pair, which are
    re-scored exactly as in exact mode, so a removal is only ever made for a real cosine at or above
    the threshold and names the same kept pair whenever the index proposed it.  The index can miss
    a match (the pair is then kept): on the planted set of ``tests/test_dataset_dedup.py`` it finds
    at least 99 % of the exact removals (tested), on ``benchmarks/dedup.py``'s 100k all of them.
    Kept vectors crowded in a narrow cone (pairs from one template) defeat hashing — a query's
    candidates become a share of everything kept — so there the index is faiss's HNSW graph
    (:class:`~.dedup_index.GraphIndex`), chosen by measuring how crowded the kept set is when the
    index is built, and again once :data:`~.dedup_index.DENSITY_SAMPLE` pairs are kept; it also
    finds at least 99 % on a dense planted set (tested).
``"auto"`` (the default)
    exact until :data:`APPROXIMATE_FROM` pairs are kept, approximate from then on (the index is
    filled with the kept vectors at that point).  10,000 is where, measured on a 2-core machine,
    an exact batch stops being cheaper than the index (0.15–0.25 ms a pair against 0.18–0.21 at 10k
    pairs, 0.25–0.39 against 0.17–0.25 at 20k, 0.70 against 0.22 at 50k); below it the result is
    the exact one, so small datasets are screened exactly.  ``approximate_from`` moves the switch;
    ``mode`` forces either.

Both modes are deterministic: the index's hyperplanes come from a fixed seed, it is filled in the
order pairs are kept, in one thread, and a search only reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal, get_args

import numpy as np

from ..errors import UserError
from ..vault.embeddings import EmbeddingBackend
from .dedup_index import DENSITY_SAMPLE, KeptIndex, approximate_index
from .id_set import IdSet, KeptIds
from .record import TrainingPair

__all__ = ["APPROXIMATE_FROM", "BATCH", "CHUNK", "NearDuplicateFilter", "ScreeningMode"]

BATCH = 256
"""Pairs embedded and screened together."""
CHUNK = 8192
"""Kept rows converted from float16 to float32 at a time (12 MB at 384 dimensions)."""
APPROXIMATE_FROM = 10_000
"""Kept pairs from which ``mode="auto"`` screens through the approximate index."""

ScreeningMode = Literal["auto", "exact", "approximate"]


class NearDuplicateFilter:
    """Pass pairs through in order, leaving out accepted ones too close to an accepted one before."""

    def __init__(
        self,
        embedder: EmbeddingBackend,
        threshold: float = 0.95,
        *,
        mode: ScreeningMode = "auto",
        approximate_from: int = APPROXIMATE_FROM,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise UserError(
                f"threshold must be in (0, 1] (a cosine similarity), not {threshold}; 0.95 is the default",
                parameters=["threshold"],
            )
        if mode not in get_args(ScreeningMode):
            raise UserError(
                f"mode must be one of {', '.join(get_args(ScreeningMode))}, not {mode!r}", parameters=["mode"]
            )
        if approximate_from < 0:
            raise UserError(
                f"approximate_from must not be negative, not {approximate_from}", parameters=["approximate_from"]
            )
        self.embedder = embedder
        self.threshold = threshold
        self.mode: ScreeningMode = mode
        self.approximate_from = 0 if mode == "approximate" else approximate_from
        self.removed: list[tuple[str, str]] = []
        """(removed pair id, the id of the kept pair it duplicates)."""
        self._kept = np.zeros((0, embedder.dimensions), dtype=np.float16)
        self._kept_ids = KeptIds()  # ids as their 16 bytes, not strings: flat memory (id_set.py)
        self._count = 0
        self._ids = IdSet()
        self._index: KeptIndex | None = None
        self._density_known = False  # whether the index was chosen on enough kept vectors to tell

    @property
    def approximate(self) -> bool:
        """Whether screening now goes through the approximate index."""
        return self._index is not None

    def filter(self, pairs: Iterable[TrainingPair]) -> Iterator[TrainingPair]:
        batch: list[TrainingPair] = []
        for pair in pairs:
            batch.append(pair)
            if len(batch) == BATCH:
                yield from self._screen(batch)
                batch = []
        yield from self._screen(batch)

    def _screen(self, batch: list[TrainingPair]) -> Iterator[TrainingPair]:
        rows: dict[int, int] = {}  # position in the batch → row of its vector
        texts: list[str] = []
        for position, pair in enumerate(batch):
            if pair.accepted and pair.id not in self._ids:
                rows[position] = len(texts)
                texts.append(f"{pair.instruction}\n{pair.completion}")
        if not texts:
            yield from batch
            return
        self._switch_if_due()
        vectors = self._unit(self.embedder.embed(texts))
        rounded = vectors.astype(np.float16)  # what a kept pair is compared as
        as_kept = rounded.astype(np.float32)
        codes = self._index.keys(as_kept) if self._index is not None else None  # one key a pair, query and kept
        best_value, best_index = self._best_kept(vectors, codes)
        within = as_kept @ vectors.T  # [i, j]: earlier pair i (as kept) against pair j
        # an earlier pair of the batch can only matter to pair j when it is at the threshold or past it
        # (it then either removes j or is a closer match than any before the batch)
        near_within = np.triu(within >= self.threshold, k=1).any(axis=0).tolist()
        values, indices = best_value.tolist(), best_index.tolist()
        first = self._count  # the kept index the batch's first kept pair gets
        kept_here = np.zeros(len(texts), dtype=bool)  # this batch's rows kept so far
        for position, pair in enumerate(batch):
            row = rows.get(position)
            if row is None or pair.id in self._ids:  # exact duplicates are the writer's to count
                yield pair
                continue
            value, index = values[row], indices[row]
            if near_within[row] and kept_here[:row].any():
                column = np.where(kept_here[:row], within[:row, row], -np.inf)
                local = int(np.argmax(column))  # the earliest of equals
                if column[local] > value:  # strictly: a tie goes to the earlier kept pair, before the batch
                    value, index = float(column[local]), first + int(kept_here[:local].sum())
            if index >= 0 and value >= self.threshold:
                self.removed.append((pair.id, self._kept_ids[index]))
                continue
            self._keep(pair.id, rounded[row])
            kept_here[row] = True
            yield pair
        if self._index is not None and codes is not None:
            self._index.add(codes[kept_here])

    def _best_kept(self, vectors: np.ndarray, codes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """For each vector, its best cosine with the pairs kept before the batch and that pair's
        index (-1 when none), the earliest of equals; through the index when there is one."""
        if self._index is not None and codes is not None:
            return self._index.best(self._kept, vectors, codes)
        best_value = np.full(len(vectors), -np.inf, dtype=np.float32)
        best_index = np.full(len(vectors), -1, dtype=np.int64)
        transposed = np.ascontiguousarray(vectors.T)
        columns = np.arange(len(vectors))
        for begin in range(0, self._count, CHUNK):
            block = self._kept[begin : min(begin + CHUNK, self._count)].astype(np.float32) @ transposed
            local = np.argmax(block, axis=0)  # the earliest of equals within the chunk
            value = block[local, columns]
            better = value > best_value  # strictly: an earlier chunk wins a tie
            best_value[better] = value[better]
            best_index[better] = begin + local[better]
        return best_value, best_index

    def _switch_if_due(self) -> None:
        if self._index is None and self.mode != "exact" and self._count >= self.approximate_from:
            self._index = approximate_index(self._kept[: self._count])
            self._density_known = self._count >= DENSITY_SAMPLE
        elif self._index is not None and not self._density_known and self._count >= DENSITY_SAMPLE:
            self._index = approximate_index(self._kept[: self._count])  # chosen again, now on a fair sample
            self._density_known = True

    def _keep(self, pair_id: str, vector: np.ndarray) -> None:
        if self._count == len(self._kept):
            grown = np.zeros((max(64, 2 * len(self._kept)), self._kept.shape[1]), dtype=np.float16)
            grown[: self._count] = self._kept[: self._count]
            self._kept = grown
        self._kept[self._count] = vector
        self._count += 1
        self._kept_ids.append(pair_id)
        self._ids.add(pair_id)

    @staticmethod
    def _unit(vectors: np.ndarray) -> np.ndarray:
        matrix = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0, 1.0, norms)
