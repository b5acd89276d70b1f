"""Second stage of hybrid search: re-score the fused top candidates by their scores, not their ranks.

The first stage (:mod:`.search`) fuses BM25's and the vectors' *ranks* over the whole vault, which
needs no calibration but forgets by how much one candidate beat the next: the only passage holding
both rare query words, far ahead on BM25 and ninth on the vectors, drops below passages both rank
middling.  Once the candidates are few (the fused top ``RERANK_DEPTH``), their scores can be
compared directly: each candidate's BM25 score and cosine are standardised (z-scores) over the
candidates and mixed with the query's own fusion weights (:func:`.search.fusion_weights`: a worded
question leans 2:1 on the vectors, an identifier 2:1 on BM25, anything else 1:1).  Candidates below
``depth`` keep their first-stage order beneath the re-scored ones.  Measured (benchmarks/README.md,
``benchmarks/passages.py``): passage recall@5 / MRR@10 0.733 / 0.562 → 0.767 / 0.639, file-level
nDCG@10 0.784 → 0.857, about a millisecond a query.

**Specificity** (``specific=True``, ``Searcher(specificity=True)``; off by default).  A bi-encoder
scores a passage against the query alone, so a passage written from the same words as dozens of its
neighbours (templated entries, one release note under every version) scores as high as the one that
answers.  Dense retrieval calls this *hubness*; the standard correction is CSLS (Conneau et al.
2018, "Word translation without parallel data"), ``2·cos(q, d) − r(d)`` with ``r(d)`` the mean cosine
of ``d`` to its ``k`` nearest neighbours, which ranks as ``cos(q, d) − ½·r(d)``; here with the
published constants (k = 10, ½) and the query's own candidates as the neighbourhood (a ``depth ×
depth`` product, however large the vault).  On the passage fixture it lifts recall@5 to 0.833, but
that fixture's 60 answers are its only hand-written passages among 2,800 generated ones, and the
correction mostly finds *hand-written*: other questions' answers in the top five go from 40 (47
with the default second stage) to 100 of 300 slots.  On the file-level fixture (ordinary prose) it
costs nDCG@10 0.022.  So it stays off until a corpus whose distractors are not generated shows it helps.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

import numpy as np

from .embeddings import from_blobs

RERANK_DEPTH = 50  # fused candidates the second stage re-scores (the "top 50"; not tuned)
NEIGHBOURS = 10  # CSLS's k: how many nearest other candidates define a candidate's local density
DENSITY_WEIGHT = 0.5  # CSLS's ½: 2·cos − r ranks as cos − ½·r


def local_density(vectors: np.ndarray, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """For each row, the mean cosine to its ``neighbours`` most similar *other* rows (rows are unit vectors).

    With fewer than two rows there is no neighbour and the density is 0; with ``neighbours`` or fewer
    other rows, all of them are the neighbourhood.
    """
    count = int(vectors.shape[0])
    if count < 2:
        return np.zeros(count, dtype=np.float32)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    take = min(neighbours, count - 1)
    nearest = np.partition(similarity, count - take, axis=1)[:, count - take :]
    return np.asarray(nearest.mean(axis=1), dtype=np.float32)


def specificity(query_vector: np.ndarray, vectors: np.ndarray, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """``cos(q, d) − ½·r(d)`` for each candidate row ``d`` (CSLS; see the module docstring)."""
    cosines = vectors @ query_vector
    return np.asarray(cosines - DENSITY_WEIGHT * local_density(vectors, neighbours), dtype=np.float32)


def standardise(values: np.ndarray) -> np.ndarray:
    """``values`` as z-scores over themselves (mean 0, standard deviation 1); all zeros when they are all equal.

    Z-scores rather than min-max: min-max hands the whole [0, 1] range to whichever two candidates
    happen to be the extremes, so one outlier squeezes every other difference; a z-score measures each
    candidate against the spread of all of them (Montague & Aslam 2001 found it the most robust
    normalisation for combining retrieval scores).  Measured both ways: passages MRR@10 0.605 → 0.639,
    file-level nDCG@10 0.837 → 0.857 (benchmarks/README.md).
    """
    if not len(values):
        return np.zeros(0, dtype=np.float64)
    spread = float(values.std())
    if spread <= 0.0:
        return np.zeros(len(values), dtype=np.float64)
    return np.asarray((values - values.mean()) / spread, dtype=np.float64)


def candidate_vectors(
    conn: sqlite3.Connection, model: str, rowids: Sequence[int], dimensions: int
) -> dict[int, np.ndarray]:
    """The stored ``dimensions``-long vectors of these chunks (by chunk rowid) for ``model``.

    Chunks without one, and vectors of another length, whose blob does not hold exactly that many
    float32 values or that hold a NaN or infinity (a damaged row), are left out: such a candidate is
    re-scored on BM25 alone, never on a cosine that would poison every candidate's normalisation.
    """
    if not rowids:
        return {}
    marks = ",".join("?" * len(rowids))
    # CROSS JOIN fixes the join order (each chunk by rowid, then its vector by key): left to itself the
    # planner sometimes scans the embeddings instead, 30 ms for 50 candidates against 0.1 ms.
    rows = conn.execute(
        "SELECT c.rowid, e.vector FROM chunks c CROSS JOIN embeddings e"  # noqa: S608 - marks are "?"s
        f" ON e.content_sha256 = c.sha256 AND e.model = ? WHERE c.rowid IN ({marks})"
        " AND e.dimensions = ? AND length(e.vector) = 4 * e.dimensions",
        [model, *rowids, dimensions],
    ).fetchall()
    vectors = {int(row[0]): from_blobs([row[1]], dimensions)[0] for row in rows}
    return {rowid: vector for rowid, vector in vectors.items() if np.isfinite(vector).all()}


def second_stage_scores(
    candidates: Sequence[int],
    bm25_scores: Mapping[int, float],
    query_vector: np.ndarray,
    vectors: Mapping[int, np.ndarray],
    weights: Sequence[float],
    *,
    specific: bool = False,
) -> dict[int, float]:
    """``w_bm25·z(BM25) + w_vec·z(cos)`` for each candidate, each part standardised over the candidates.

    ``weights`` is the query's (BM25, vector) fusion weights, made to sum to one.  With ``specific``
    the cosine is corrected for local density (:func:`specificity`).  A candidate that BM25 did not
    return scores 0 there (below any match); one without a vector gets the lowest cosine of the others.
    """
    lexical_weight, semantic_weight = (float(weight) / float(sum(weights)) for weight in weights)
    lexical = standardise(np.array([bm25_scores.get(rowid, 0.0) for rowid in candidates], dtype=np.float64))
    embedded = [rowid for rowid in candidates if rowid in vectors]
    closeness = np.zeros(len(candidates), dtype=np.float64)
    if embedded:
        matrix = np.stack([vectors[rowid] for rowid in embedded])
        raw = specificity(query_vector, matrix) if specific else matrix @ query_vector
        scored = dict(zip(embedded, raw.tolist(), strict=True))
        lowest = min(scored.values())
        closeness = np.array([scored.get(rowid, lowest) for rowid in candidates], dtype=np.float64)
    semantic = standardise(closeness)
    mixed = lexical_weight * lexical + semantic_weight * semantic
    return {rowid: float(mixed[index]) for index, rowid in enumerate(candidates)}


def rerank(
    fused: Mapping[int, float],
    bm25_scores: Mapping[int, float],
    query_vector: np.ndarray,
    vectors: Mapping[int, np.ndarray],
    weights: Sequence[float],
    *,
    depth: int = RERANK_DEPTH,
    specific: bool = False,
) -> dict[int, float]:
    """New scores: the fused top ``depth`` re-scored by :func:`second_stage_scores`, all above the rest.

    ``fused`` is the first stage's scores (higher is better), ``bm25_scores`` BM25's (higher is
    better), ``vectors`` the candidates' unit vectors.  The re-scored candidates are lifted above
    the best of those below ``depth``, which keep their first-stage scores and order: the second
    stage only ever permutes the top of the list.
    """
    ranked = sorted(fused, key=lambda rowid: (-fused[rowid], rowid))
    head, tail = ranked[:depth], ranked[depth:]
    if len(head) < 2:
        return dict(fused)
    second = second_stage_scores(head, bm25_scores, query_vector, vectors, weights, specific=specific)
    # z-scores go below zero: the head is shifted to start just above the best of the tail
    floor = max((fused[rowid] for rowid in tail), default=0.0) + 1e-6 - min(second.values())
    result = {rowid: fused[rowid] for rowid in tail}
    result.update({rowid: floor + second[rowid] for rowid in head})
    return result
