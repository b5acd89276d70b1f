"""Hybrid search: FTS5 BM25 and cosine over vectors, fused with reciprocal rank fusion.

Neither ranker wins everywhere (BM25 finds error codes and identifiers, embeddings find paraphrases;
see formats-signing-retrieval.md §3.6), so both run and their ranks are fused with reciprocal rank
fusion: ``score = Σ wᵢ / (k + rankᵢ)``.  Ranks, not scores, are fused, so BM25's unbounded values
never need calibrating against cosines.  Cormack et al. fixed k = 60 for fusing many deep TREC runs;
with two rankers a top hit one of them is sure of must not drown under items both rank middling, so
the default here is k = 20 (``[vault] rrf_k``; on the labelled fixture k = 60 is barely better than
BM25 alone, k = 20 clearly is).  BM25's weight is doubled for queries that hold an identifier,
where a lexical match is the only meaningful one.  A convex
combination of normalised scores is available too (``[vault] fusion = "convex"``); on the project's
labelled fixture it scores higher (see benchmarks/README.md), at the price of depending on score
distributions.

Vectors live in SQLite as float32 blobs; :class:`Searcher` keeps them as one NumPy matrix and
reloads it only when the vault's generation counter says chunks or vectors changed, so a query is
one matrix-vector product (exact).  From ``APPROXIMATE_FROM`` chunks the vector ranking comes from
the persisted ANN index of :mod:`.vector_index` instead (re-scored exactly; never trusted over the database).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from ..errors import UserError
from .embeddings import from_blobs
from .query import bm25_weight, convex_fusion, highlight, is_identifier, phrase, query_terms, reciprocal_rank_fusion
from .rerank import RERANK_DEPTH, candidate_vectors, rerank
from .store import Vault
from .term_postings import TermPostings
from .vector_index import APPROXIMATE_FROM, VectorIndex

Mode = Literal["hybrid", "bm25", "vector"]
MODES: tuple[Mode, ...] = ("hybrid", "bm25", "vector")
Fusion = Literal["rrf", "convex"]
FUSIONS: tuple[Fusion, ...] = ("rrf", "convex")
RRF_K = 20
MIN_TIGHTENED = 5_000  # below this many chunks every query term is matched (see _bm25_expression)
QUESTION_VECTOR_WEIGHT = 2.0  # the vector ranking's RRF weight for a worded question (see fusion_weights)
QUESTION_TERMS = 3
# Filter clauses (SearchFilters.sql) are built from constants with ? placeholders, never from user text.
_FILTERED_CHUNKS = "SELECT c.rowid FROM chunks c JOIN documents d ON d.id = c.document_id"
_CHUNK_ROWS = (
    "SELECT c.rowid AS rowid, c.id, c.document_id, c.sequence, c.start_byte, c.end_byte, c.text, c.sha256,"
    " c.heading_path, d.source, d.title FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.rowid IN ({})"
)


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Restrict a search: to documents, to sources matching a glob, to a date range (inclusive)."""

    document_ids: tuple[str, ...] = ()
    source_glob: str | None = None
    since: str | None = None  # ISO date or time, compared with the file's date (else its import date)
    until: str | None = None

    def sql(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.document_ids:
            clauses.append(f"d.id IN ({','.join('?' * len(self.document_ids))})")
            params.extend(self.document_ids)
        if self.source_glob:
            clauses.append("d.source GLOB ?")
            params.append(self.source_glob)
        if self.since:
            clauses.append("coalesce(d.source_modified_at, d.created_at) >= ?")
            params.append(self.since)
        if self.until:
            clauses.append("substr(coalesce(d.source_modified_at, d.created_at), 1, length(?)) <= ?")
            params.extend([self.until, self.until])
        return " AND ".join(clauses), params

    @property
    def active(self) -> bool:
        return bool(self.document_ids or self.source_glob or self.since or self.until)


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One chunk found, with everything needed to cite it."""

    rank: int
    score: float
    chunk_id: str
    doc_id: str
    source: str
    title: str
    sequence: int
    start_byte: int
    end_byte: int
    sha256: str
    text: str
    snippet: str
    highlights: tuple[tuple[int, int], ...]  # [start, end) spans of the snippet that match the query
    bm25_rank: int | None = None
    vector_rank: int | None = None
    cosine: float | None = None
    heading_path: str | None = None  # the section the chunk sits in ("Guide › Installation"), when it has one

    @property
    def citation(self) -> str:
        return f"{self.source} [{self.chunk_id}, bytes {self.start_byte}–{self.end_byte}]"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["highlights"] = [list(span) for span in self.highlights]
        return data


@dataclass(frozen=True, slots=True)
class EvidencePack:
    """Numbered evidence for an agent or a teacher: what the answer may rely on, and how to cite it."""

    query: str
    items: tuple[SearchResult, ...] = field(default_factory=tuple)

    def to_prompt(self) -> str:
        """Evidence as prompt text: ``[1] (source, chunk) text`` blocks the model cites by number."""
        blocks = [f"[{n}] ({item.source}, {item.chunk_id})\n{item.text}" for n, item in enumerate(self.items, 1)]
        return "\n\n".join(blocks)

    def to_json(self) -> dict[str, Any]:
        return {"query": self.query, "items": [item.to_json() for item in self.items]}


def fusion_weights(query: str) -> tuple[float, float]:
    """(BM25 weight, vector weight) in RRF, by the kind of query.

    A query holding an identifier doubles BM25 (see :func:`.query.bm25_weight`).  A worded question
    with no identifier (at least three content words, "the smallest few items without sorting
    everything") doubles the vector ranking instead: its words are a paraphrase, shared at random
    with neighbouring passages, so BM25's top hits there are mostly noise.  Measured on both labelled
    fixtures (benchmarks/passages.py, tests/fixtures/retrieval): passage recall@5 0.68 → 0.73 (MRR@10
    unchanged, 0.56) with heading paths in the embedded text, 0.70 → 0.75 and MRR@10 0.56 → 0.61
    without; file-level nDCG@10 0.73 → 0.78.  Keyword queries are unchanged; short lookups of one or
    two plain words keep equal weights.
    """
    lexical = bm25_weight(query)
    if lexical > 1.0:
        return lexical, 1.0
    terms = query_terms(query)
    if len(terms) >= QUESTION_TERMS and not any(map(is_identifier, terms)):
        return 1.0, QUESTION_VECTOR_WEIGHT
    return 1.0, 1.0


class Searcher:
    """Searches one vault; keeps its vectors in memory between queries (see the module docstring)."""

    def __init__(
        self,
        vault: Vault,
        *,
        fusion: Fusion | None = None,
        rrf_k: int | None = None,
        candidates: int = 100,
        approximate_from: int = APPROXIMATE_FROM,
        postings_from: int = MIN_TIGHTENED,
        rerank_depth: int = RERANK_DEPTH,
        specificity: bool = False,
    ) -> None:
        self.vault = vault
        self.approximate_from = approximate_from  # chunks from which the ANN index answers (vector_index.py)
        self.postings_from = postings_from  # chunks past which BM25 sums kept postings (term_postings.py)
        self._index: VectorIndex | None = None
        self._postings: TermPostings | None = None
        self.fusion: Fusion = fusion or vault.fusion
        if self.fusion not in FUSIONS:
            raise UserError(f"fusion must be one of {', '.join(FUSIONS)}, not {self.fusion!r}")
        self.rrf_k = rrf_k if rrf_k is not None else vault.rrf_k
        self.candidates = candidates
        self.rerank_depth = rerank_depth  # hybrid's second stage (rerank.py); 0 turns it off
        self.specificity = specificity  # the second stage corrects cosines for local density (rerank.py)
        self._last_query: tuple[str, np.ndarray] | None = None  # the query in flight and its vector
        self._counts_generation = -1
        self._total = 0
        self._match_counts: dict[str, int] = {}
        self._generation = -1
        self._rowids = np.zeros(0, dtype=np.int64)
        self._matrix = np.zeros((0, 0), dtype=np.float32)

    def search(
        self, query: str, *, k: int = 10, mode: Mode = "hybrid", filters: SearchFilters | None = None
    ) -> list[SearchResult]:
        if mode not in MODES:
            raise UserError(f"search mode must be one of {', '.join(MODES)}, not {mode!r}")
        if k <= 0:
            raise UserError("k must be a positive number of results")
        filters = filters or SearchFilters()
        pool = max(self.candidates, k)
        bm25 = self._bm25(query, pool, filters) if mode in ("hybrid", "bm25") else []
        vector = self._vector(query, pool, filters) if mode in ("hybrid", "vector") else []
        bm25_rank = {rowid: rank for rank, (rowid, _) in enumerate(bm25, 1)}
        vector_rank = {rowid: rank for rank, (rowid, _) in enumerate(vector, 1)}
        cosines = dict(vector)
        if self.fusion == "convex" and mode == "hybrid":
            fused = convex_fusion(bm25, vector)
        else:
            fused = reciprocal_rank_fusion([bm25_rank, vector_rank], list(fusion_weights(query)), self.rrf_k)
        if mode == "hybrid" and self.rerank_depth > 0 and vector:
            fused = self._rerank(query, fused, dict(bm25))
        order = sorted(fused, key=lambda rowid: (-fused[rowid], rowid))[:k]
        rows = self._chunk_rows(order)
        terms = query_terms(query)
        results = []
        for position, rowid in enumerate(order, 1):
            row = rows[rowid]
            snippet, spans = highlight(row["text"], terms)
            results.append(
                SearchResult(
                    rank=position,
                    score=round(fused[rowid], 6),
                    chunk_id=row["id"],
                    doc_id=row["document_id"],
                    source=row["source"],
                    title=row["title"],
                    sequence=row["sequence"],
                    start_byte=row["start_byte"],
                    end_byte=row["end_byte"],
                    sha256=row["sha256"],
                    text=row["text"],
                    snippet=snippet,
                    highlights=spans,
                    bm25_rank=bm25_rank.get(rowid),
                    vector_rank=vector_rank.get(rowid),
                    cosine=round(cosines[rowid], 6) if rowid in cosines else None,
                    heading_path=row["heading_path"],
                )
            )
        return results

    def evidence_pack(self, query: str, *, k: int = 5, filters: SearchFilters | None = None) -> EvidencePack:
        return EvidencePack(query=query, items=tuple(self.search(query, k=k, filters=filters)))

    def _rerank(self, query: str, fused: dict[int, float], bm25_scores: dict[int, float]) -> dict[int, float]:
        """The second stage over the fused top ``rerank_depth`` (see :mod:`.rerank`)."""
        head = sorted(fused, key=lambda rowid: (-fused[rowid], rowid))[: self.rerank_depth]
        query_vector = self._query_vector(query)
        vectors = candidate_vectors(self.vault.conn, self.vault.model_name, head, len(query_vector))
        weights = fusion_weights(query)
        return rerank(
            fused, bm25_scores, query_vector, vectors, weights, depth=self.rerank_depth, specific=self.specificity
        )

    def _query_vector(self, query: str) -> np.ndarray:
        """The query's embedding, kept for the query in flight: the vector ranking and the rerank both use it."""
        last = self._last_query
        if last is None or last[0] != query:
            last = self._last_query = (query, self.vault.embedder.embed([query])[0])
        return last[1]

    # -- the two rankers ------------------------------------------------------------------------

    def _bm25(self, query: str, limit: int, filters: SearchFilters) -> list[tuple[int, float]]:
        """(rowid, BM25 score) best first; FTS5's bm25() is negative, lower is better, so it is negated.

        Past ``postings_from`` chunks an unfiltered query is summed from the terms' kept postings
        (:mod:`.term_postings`) rather than by FTS5 scoring every chunk that matches.
        """
        if not filters.active and self._chunk_total() > self.postings_from:
            return self._postings_ranking(query_terms(query), limit)
        return self._bm25_exact(self._bm25_expression(query_terms(query)), limit, filters)

    def _bm25_exact(self, expression: str, limit: int, filters: SearchFilters) -> list[tuple[int, float]]:
        """FTS5 scoring every chunk the expression matches."""
        if not expression:
            return []
        sql = "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?"
        params: list[Any] = [expression]
        if filters.active:
            clause, extra = filters.sql()
            sql += f" AND rowid IN ({_FILTERED_CHUNKS} WHERE {clause})"
            params += extra
        sql += " ORDER BY bm25(chunks_fts) LIMIT ?"
        return [(row[0], float(row[1])) for row in self.vault.conn.execute(sql, [*params, limit])]

    def _postings_ranking(self, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        """FTS5's ranking of :meth:`_bm25_expression`'s terms, summed from kept term postings."""
        if self._postings is None:
            self._postings = TermPostings(self.vault.conn)
        unique = list(dict.fromkeys(terms))
        total = self._chunk_total()
        useful = [term for term in unique if self._postings.matches(term) <= total // 2]
        # terms all in over half of the chunks: FTS5's floored IDF ranks by the sum of their impacts
        return self._postings.top(useful or unique, limit)

    def _bm25_expression(self, terms: Sequence[str]) -> str:
        """Any-term match, without the terms BM25 gives no weight to.

        FTS5's BM25 floors a term's IDF at ~0 once it occurs in more than half of the chunks, so such
        a term cannot change the ranking, yet matching it makes FTS5 score most of the vault (about
        120 ms at 100k chunks).  Those terms are dropped while a rarer one remains; a query made only
        of them requires them all together instead.
        """
        unique = list(dict.fromkeys(terms))
        total = self._chunk_total()
        if total <= MIN_TIGHTENED:
            return " OR ".join(map(phrase, unique))
        useful = [term for term in unique if self._matches(phrase(term)) <= total // 2]  # counts are cached
        return " OR ".join(map(phrase, useful)) if useful else " AND ".join(map(phrase, unique))

    def _chunk_total(self) -> int:
        self._refresh_counts()
        return self._total

    def _matches(self, expression: str) -> int:
        self._refresh_counts()
        if expression not in self._match_counts:
            row = self.vault.conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (expression,))
            self._match_counts[expression] = int(row.fetchone()[0])
        return self._match_counts[expression]

    def _refresh_counts(self) -> None:
        generation = self.vault.generation()
        if generation != self._counts_generation:
            self._total = int(self.vault.conn.execute("SELECT count(*) FROM chunks").fetchone()[0])
            self._match_counts = {}
            self._counts_generation = generation

    def _vector(self, query: str, limit: int, filters: SearchFilters) -> list[tuple[int, float]]:
        if self._chunk_total() >= self.approximate_from:
            return self._approximate(query, limit, filters)
        self._refresh()
        if not len(self._rowids):
            return []
        vector = self._query_vector(query)
        scores = self._matrix @ vector
        if filters.active:
            clause, params = filters.sql()
            allowed = np.fromiter(
                (
                    row[0]
                    for row in self.vault.conn.execute(
                        f"{_FILTERED_CHUNKS} WHERE {clause}",
                        params,
                    )
                ),
                dtype=np.int64,
            )
            scores = np.where(np.isin(self._rowids, allowed), scores, -np.inf)
        limit = min(limit, int(np.isfinite(scores).sum()))
        if limit <= 0:
            return []
        top = np.argpartition(-scores, limit - 1)[:limit]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self._rowids[i]), float(scores[i])) for i in top]

    def _approximate(self, query: str, limit: int, filters: SearchFilters) -> list[tuple[int, float]]:
        """The vector ranking from the persisted ANN index, re-scored exactly (see :mod:`.vector_index`)."""
        if self._index is None:
            database = self.vault.workspace.database_path
            self._index = VectorIndex(self.vault.conn, database, self.vault.model_name)
            self._matrix = np.zeros((0, 0), dtype=np.float32)  # the exact matrix is not kept alongside
            self._rowids, self._generation = np.zeros(0, dtype=np.int64), -1
        self._index.sync()
        if not len(self._index):
            return []
        allowed = None
        if filters.active:
            clause, params = filters.sql()
            rows = self.vault.conn.execute(f"{_FILTERED_CHUNKS} WHERE {clause}", params)
            allowed = np.fromiter((row[0] for row in rows), dtype=np.int64)
        return self._index.search(self._query_vector(query), limit, allowed)

    def _refresh(self) -> None:
        generation = self.vault.generation()
        if generation == self._generation:
            return
        rows = self.vault.conn.execute(
            "SELECT c.rowid, e.vector, e.dimensions FROM chunks c JOIN embeddings e"
            " ON e.content_sha256 = c.sha256 AND e.model = ? ORDER BY c.rowid",
            (self.vault.model_name,),
        ).fetchall()
        dimensions = rows[0][2] if rows else 0
        self._rowids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        self._matrix = from_blobs([row[1] for row in rows], dimensions)
        self._generation = generation

    def _chunk_rows(self, rowids: Sequence[int]) -> dict[int, Any]:
        if not rowids:
            return {}
        marks = ",".join("?" * len(rowids))
        rows = self.vault.conn.execute(_CHUNK_ROWS.format(marks), list(rowids)).fetchall()
        return {row["rowid"]: row for row in rows}
