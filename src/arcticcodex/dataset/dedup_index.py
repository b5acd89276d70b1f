"""The approximate indexes of kept vectors that near-duplicate screening asks past a size.

A near duplicate is *very* near (cosine ≥ 0.95 by default: an angle of 18° or less), which is what
locality-sensitive hashing finds cheaply and at a cost per query that hardly grows with the set —
when the kept vectors are spread out.  :class:`KeptIndex` makes each vector a :data:`BITS`-bit code
(the signs of its products with fixed random hyperplanes, so two vectors at angle θ differ in a bit
with probability θ/π), and faiss's ``IndexBinaryMultiHash`` files every code under :data:`TABLES`
hash tables, one per 16-bit slice.  A query's candidates are the kept codes that share a whole slice
with it, ranked by Hamming distance.  At cosine 0.95 a slice matches with probability 0.90¹⁶ ≈ 0.18,
so the source is missed by all 32 tables with probability 0.82³² ≈ 0.2 %; at 0.96, 0.03 %.  A random
pair shares a slice with probability 32/65,536, so at 100k kept pairs a query looks at about 50
candidates.

Chosen by measurement (``benchmarks/README.md``): the graph indexes (HNSW in faiss, usearch and
hnswlib) found only 83–85 % of the planted paraphrases among 100k random 384-dimension vectors — the
worst case for a graph — and cost more; faiss's inverted file found 99.2–99.7 % at about twice
this index's cost per pair, a cost that grows with the square root of the set; this one found all of them.

**Dense data** is the other case (issue 19, found by ``benchmarks/scale.py``): pairs made from one
template ("How much rain did station N record?") sit in a narrow cone — a mean cosine of 0.67
between any two with the ``hashing-64`` embedder — so a 16-bit slice matches for ~0.7 % of the kept
set in each table, a query's candidates are a fifth of everything kept, and the cost a pair grows
with the set (2.6 ms at 50k, against 0.19 on spread-out vectors).  No hashing scheme separates 0.95
from 0.67 cheaply (the exponent ρ = ln 0.90 / ln 0.73 ≈ 0.34 asks for hundreds of tables), but that
is where a graph index is at its best: faiss's HNSW over the kept float16 rows
(:class:`GraphIndex`) found 99.9 % of paraphrases planted at 0.96 among 100k such vectors, at
0.23 ms a pair.  :func:`approximate_index` measures which case the kept set is — how many kept codes
a query would share a slice with (:func:`slice_collisions`) — once, when screening turns approximate.

Deterministic, which lets a resumed publish write the same dataset: the hyperplanes come from a
fixed seed, vectors are filed in the order pairs were kept, in one thread (HNSW's levels come from
its own fixed seed), the choice of index depends only on the kept vectors, and a search only reads.

An index proposes candidates; :meth:`KeptIndex.best` re-scores them exactly against the kept
float16 matrix, so a reported similarity is always the true one and ties go to the earliest pair.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = [
    "BITS",
    "CANDIDATES",
    "DENSE_FROM",
    "DENSITY_SAMPLE",
    "TABLES",
    "GraphIndex",
    "KeptIndex",
    "approximate_index",
    "slice_collisions",
]

BITS = 512
"""Bits of a vector's code: one hyperplane each."""
TABLES = 32
"""Hash tables, one per 16-bit slice of the code."""
CANDIDATES = 8
"""Nearest kept pairs (by Hamming distance) proposed for each screened pair, then re-scored exactly."""
DENSE_FROM = 0.01
"""Share of the kept set a query's slices collide with from which the kept vectors count as dense and
:class:`GraphIndex` is used: twenty times what spread-out vectors give (32 / 65,536 ≈ 0.0005), so a
set rich in near duplicates stays below it (one pair in eight a paraphrase: 0.0023), and about
10,000 candidates a query at 1M kept pairs; the templated prompts of ``benchmarks/scale.py`` give 0.17."""
GRAPH_LINKS = 16  # HNSW's M: neighbours a kept vector links to
GRAPH_BUILD_BREADTH = 64  # efConstruction
GRAPH_SEARCH_BREADTH = 64  # efSearch (32 found 98.99 % on the dense planted set of the tests, 64 99.7 %)
_SLICE_BITS = BITS // TABLES
_ROWS = 8192  # kept rows converted to float32 at a time
DENSITY_SAMPLE = 1024
"""Kept codes whose collisions tell dense from spread out (:func:`slice_collisions`)."""
_SEED = 19  # the hyperplanes' seed: fixed, so the same pairs always give the same codes


class KeptIndex:
    """Kept vectors, in the order kept, findable when near; index i is the i-th kept pair.

    This base files random-hyperplane codes in faiss's binary multi-hash index; :class:`GraphIndex`
    files the vectors in an HNSW graph.  Both answer :meth:`best` the same way.
    """

    def __init__(self, dimensions: int) -> None:
        import faiss  # imported here: only large screenings pay for loading it

        self._faiss: Any = faiss
        self._hyperplanes = np.random.default_rng(_SEED).standard_normal((dimensions, BITS)).astype(np.float32)
        self._index: Any = faiss.IndexBinaryMultiHash(BITS, TABLES, _SLICE_BITS)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, keys: np.ndarray) -> None:
        """File the keys (:meth:`keys`) of newly kept pairs (their indices follow on)."""
        if len(keys):
            with _one_thread(self._faiss):
                self._index.add(keys)

    def add_vectors(self, kept: np.ndarray) -> None:
        """File newly kept float16 rows (their indices follow on)."""
        self.add(self.keys(kept.astype(np.float32)))

    def best(self, kept: np.ndarray, vectors: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each float32 unit vector (with its key), the best cosine among its candidates and
        that pair's index (-1 when none), re-scored exactly against ``kept`` (the float16 matrix whose
        first ``len(self)`` rows are indexed), the earliest of equals."""
        if not len(self):
            return np.full(len(vectors), -np.inf, np.float32), np.full(len(vectors), -1, np.int64)
        with _one_thread(self._faiss):
            _, candidates = self._index.search(keys, CANDIDATES)
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

    def keys(self, vectors: np.ndarray) -> np.ndarray:
        """What the index files and is asked with, for float32 vectors: here each one's code, bit k
        set when the vector lies on the positive side of hyperplane k."""
        signs: np.ndarray = np.packbits(vectors @ self._hyperplanes > 0, axis=1)
        return signs


class GraphIndex(KeptIndex):
    """Kept vectors in faiss's HNSW graph (inner product over the float16 rows, so lossless): the
    index for dense kept sets, where hashing cannot tell a near duplicate from the crowd."""

    def __init__(self, dimensions: int) -> None:
        import faiss

        self._faiss = faiss
        self._index = self._faiss.IndexHNSWSQ(
            dimensions, faiss.ScalarQuantizer.QT_fp16, GRAPH_LINKS, faiss.METRIC_INNER_PRODUCT
        )
        self._index.hnsw.efConstruction = GRAPH_BUILD_BREADTH
        self._index.hnsw.efSearch = GRAPH_SEARCH_BREADTH

    def keys(self, vectors: np.ndarray) -> np.ndarray:
        """The float32 vectors themselves: the graph compares vectors, not codes."""
        return np.ascontiguousarray(vectors, dtype=np.float32)


def approximate_index(kept: np.ndarray) -> KeptIndex:
    """The index for a kept set (float16 rows in the order kept), filled with it: the multi-hash
    index, or the graph when the rows are dense (:data:`DENSE_FROM`)."""
    hashed = KeptIndex(kept.shape[1])
    if not len(kept):
        return hashed
    codes = np.concatenate(
        [hashed.keys(kept[begin : begin + _ROWS].astype(np.float32)) for begin in range(0, len(kept), _ROWS)]
    )
    if slice_collisions(codes) < DENSE_FROM:
        hashed.add(codes)
        return hashed
    graph = GraphIndex(kept.shape[1])
    for begin in range(0, len(kept), _ROWS):
        graph.add_vectors(kept[begin : begin + _ROWS])
    return graph


def slice_collisions(codes: np.ndarray) -> float:
    """The share of the other kept codes a code shares a whole 16-bit slice with, summed over the
    tables: what a multi-hash query scans, as a share of the kept set (32 / 65,536 for spread-out
    vectors), measured on the first :data:`DENSITY_SAMPLE` codes against all of them."""
    if len(codes) < 2:
        return 0.0
    slices = np.ascontiguousarray(codes).view(">u2")  # BITS / 16 slices a code
    sample = slices[:DENSITY_SAMPLE]
    shared = 0
    for table in range(slices.shape[1]):
        counts = np.bincount(slices[:, table], minlength=1 << 16)
        shared += int(counts[sample[:, table]].sum()) - len(sample)  # less each code's match with itself
    return shared / (len(sample) * (len(codes) - 1))


@contextmanager
def _one_thread(faiss: Any) -> Iterator[None]:
    """faiss in one thread: a search or an add is a few microseconds a pair, and OpenMP's threads cost
    more than they save (measured: 0.072 against 0.109 ms a pair at 50k); one thread also keeps
    HNSW's graph, built in order, the same on every run."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)
