"""Near-duplicate removal: accepted pairs whose question and answer mean the same as an earlier one.

Exact duplicates share an id (a content hash) and are dropped by the writer; paraphrases do not, so
each accepted pair's ``instruction + completion`` is embedded (in batches) and compared with the
pairs kept so far; a cosine at or above the threshold drops it, and the earliest pair is the one
kept.  The kept vectors are held as float16 (768 bytes a pair for a 384-dimension model): 77 MB at
100k accepted pairs, the one part of writing a dataset that grows with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from ..vault.embeddings import EmbeddingBackend
from .record import TrainingPair

__all__ = ["NearDuplicateFilter"]

BATCH = 256


class NearDuplicateFilter:
    """Pass pairs through in order, leaving out accepted ones too close to an accepted one before."""

    def __init__(self, embedder: EmbeddingBackend, threshold: float = 0.95) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"the near-duplicate threshold must be in (0, 1], not {threshold}")
        self.embedder = embedder
        self.threshold = threshold
        self.removed: list[tuple[str, str]] = []
        """(removed pair id, the id of the kept pair it duplicates)."""
        self._kept = np.zeros((0, embedder.dimensions), dtype=np.float16)
        self._kept_ids: list[str] = []
        self._count = 0
        self._ids: set[str] = set()

    def filter(self, pairs: Iterable[TrainingPair]) -> Iterator[TrainingPair]:
        batch: list[TrainingPair] = []
        for pair in pairs:
            batch.append(pair)
            if len(batch) == BATCH:
                yield from self._screen(batch)
                batch = []
        yield from self._screen(batch)

    def _screen(self, batch: list[TrainingPair]) -> Iterator[TrainingPair]:
        fresh = [pair for pair in batch if pair.accepted and pair.id not in self._ids]
        texts = [f"{pair.instruction}\n{pair.completion}" for pair in fresh]
        vectors = self._unit(self.embedder.embed(texts)) if texts else np.zeros((0, self._kept.shape[1]), np.float32)
        row = 0
        for pair in batch:
            if not pair.accepted or pair.id in self._ids:  # exact duplicates are the writer's to count
                yield pair
                continue
            vector = vectors[row]
            row += 1
            if self._count:
                similarities = self._kept[: self._count].astype(np.float32) @ vector
                best = int(np.argmax(similarities))
                if similarities[best] >= self.threshold:
                    self.removed.append((pair.id, self._kept_ids[best]))
                    continue
            self._keep(pair.id, vector)
            yield pair

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
