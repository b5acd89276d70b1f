"""The approximate index of kept vectors that near-duplicate screening asks past a size.

A near duplicate is *very* near (cosine ≥ 0.95 by default: an angle of 18° or less), which is what
locality-sensitive hashing finds cheaply and at a cost per query that hardly grows with the set:
each vector becomes a :data:`BITS`-bit code (the signs of its products with fixed random
hyperplanes, so two vectors at angle θ differ in a bit with probability θ/π), and faiss's
``IndexBinaryMultiHash`` files every code under :data:`TABLES` hash tables, one per 16-bit slice.  A
query's candidates are the kept codes that share a whole slice with it, ranked by Hamming distance.
At cosine 0.95 a slice matches with probability 0.90¹⁶ ≈ 0.18, so the source is missed by all
32 tables with probability 0.82³² ≈ 0.2 %; at 0.96, 0.03 %.  A random pair shares a slice with
probability 32/65,536, so at 100k kept pairs a query looks at about 50 candidates.

Chosen by measurement (``benchmarks/README.md``): the graph indexes (HNSW in faiss, usearch and
hnswlib) found only 83–85 % of the planted paraphrases among 100k random 384-dimension vectors — the
worst case for a graph — and cost more; faiss's inverted file found 99.2–99.7 % at about twice
this index's cost per pair, a cost that grows with the square root of the set; this one found all of them.

Deterministic, which lets a resumed publish write the same dataset: the hyperplanes come from a
fixed seed, codes are filed in the order pairs were kept, and a search only reads.

The index proposes candidates; :meth:`KeptIndex.best` re-scores them exactly against the kept
float16 matrix, so a reported similarity is always the true one and ties go to the earliest pair.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["BITS", "CANDIDATES", "TABLES", "KeptIndex"]

BITS = 512
"""Bits of a vector's code: one hyperplane each."""
TABLES = 32
"""Hash tables, one per 16-bit slice of the code."""
CANDIDATES = 8
"""Nearest kept pairs (by Hamming distance) proposed for each screened pair, then re-scored exactly."""
_SLICE_BITS = BITS // TABLES
_SEED = 19  # the hyperplanes' seed: fixed, so the same pairs always give the same codes


class KeptIndex:
    """Kept vectors, in the order kept, findable when near; index i is the i-th kept pair."""

    def __init__(self, dimensions: int) -> None:
        import faiss  # imported here: only large screenings pay for loading it

        self._faiss: Any = faiss
        self._hyperplanes = np.random.default_rng(_SEED).standard_normal((dimensions, BITS)).astype(np.float32)
        self._index = faiss.IndexBinaryMultiHash(BITS, TABLES, _SLICE_BITS)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, codes: np.ndarray) -> None:
        """File the codes of newly kept pairs (their indices follow on)."""
        if len(codes):
            with self._one_thread():
                self._index.add(codes)

    def add_vectors(self, kept: np.ndarray) -> None:
        """File newly kept float16 rows (their indices follow on)."""
        self.add(self.codes(kept.astype(np.float32)))

    def best(self, kept: np.ndarray, vectors: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each float32 unit vector (with its code), the best cosine among its candidates and
        that pair's index (-1 when none), re-scored exactly against ``kept`` (the float16 matrix whose
        first ``len(self)`` rows are indexed), the earliest of equals."""
        if not len(self):
            return np.full(len(vectors), -np.inf, np.float32), np.full(len(vectors), -1, np.int64)
        with self._one_thread():
            _, candidates = self._index.search(codes, CANDIDATES)
        candidates = np.sort(candidates, axis=1)  # ascending: argmax then picks the earliest of equals
        missing = candidates < 0  # fewer candidates than asked for
        rows = kept[np.where(missing, 0, candidates)].astype(np.float32)  # (pairs, candidates, dimensions)
        scores = np.einsum("pcd,pd->pc", rows, vectors)
        scores[missing] = -np.inf
        local = np.argmax(scores, axis=1)
        picked = np.arange(len(vectors))
        best_value = scores[picked, local].astype(np.float32)
        best_index = np.where(np.isfinite(best_value), candidates[picked, local], -1).astype(np.int64)
        return best_value, best_index

    @contextmanager
    def _one_thread(self) -> Iterator[None]:
        """faiss in one thread: a search or an add is a few microseconds a pair, and OpenMP's
        threads cost more than they save (measured: 0.072 against 0.109 ms a pair at 50k)."""
        threads = self._faiss.omp_get_max_threads()
        self._faiss.omp_set_num_threads(1)
        try:
            yield
        finally:
            self._faiss.omp_set_num_threads(threads)

    def codes(self, vectors: np.ndarray) -> np.ndarray:
        """Each float32 vector's code: bit k set when it lies on the positive side of hyperplane k."""
        signs: np.ndarray = np.packbits(vectors @ self._hyperplanes > 0, axis=1)
        return signs
