"""Retrieval evaluation: recall@k, MRR@k and nDCG@10 from a file of labelled queries.

The file is JSON Lines, one query per line::

    {"id": "q1", "query": "why was the Kestrel job runner retired?", "relevant": {"p0042": 2, "p0043": 1}}

``relevant`` maps what counts as a hit to a graded relevance (1 = partly, 2 = the answer; a list
means grade 1 each).  A key names a chunk id, a document id, a source path, or a source's file
name without its suffix — so labels written for a corpus survive re-importing it.  Results are
judged per document: the first chunk of each document counts, later chunks of the same document
are skipped (a document is relevant or not).  Queries may instead come with a separate qrels file
(``query_id<TAB>key<TAB>grade`` lines, as BEIR and TREC write them).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import UserError
from .search import MODES, Mode, Searcher, SearchResult


@dataclass(frozen=True, slots=True)
class EvalQuery:
    id: str
    query: str
    relevant: dict[str, int]


@dataclass(frozen=True, slots=True)
class ModeScores:
    mode: str
    queries: int
    recall_at_k: float
    mrr_at_k: float
    ndcg_at_10: float
    k: int

    def to_json(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "queries": self.queries,
            f"recall@{self.k}": round(self.recall_at_k, 4),
            f"mrr@{self.k}": round(self.mrr_at_k, 4),
            "ndcg@10": round(self.ndcg_at_10, 4),
        }


def load_queries(path: Path, qrels: Path | None = None) -> list[EvalQuery]:
    queries: list[EvalQuery] = []
    grades = _read_qrels(qrels) if qrels else {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            query_id = str(item.get("id") or item.get("_id") or f"q{number}")
            text = item.get("query") or item.get("text")
            relevant = item.get("relevant", grades.get(query_id))
        except (json.JSONDecodeError, AttributeError) as exc:
            # from None: the JSONDecodeError/AttributeError adds nothing the message does not already say
            raise UserError(f"{path}:{number}: not a JSON object ({exc}); one query per line") from None
        if not isinstance(text, str) or not text.strip():
            raise UserError(f'{path}:{number}: needs a "query" string')
        if isinstance(relevant, list):
            relevant = {str(key): 1 for key in relevant}
        if not isinstance(relevant, dict) or not relevant:
            raise UserError(
                f'{path}:{number}: query {query_id} has no relevance labels; add "relevant": {{"<doc or chunk>": 2}}'
                " or give a qrels file",
                parameters=["qrels"],
            )
        labels: dict[str, int] = {}
        for key, grade in relevant.items():
            if isinstance(grade, bool) or not isinstance(grade, int):
                raise UserError(
                    f"{path}:{number}: relevance of {key!r} must be an integer grade (0, 1, 2…), not {grade!r}"
                )
            labels[str(key)] = grade
        queries.append(EvalQuery(query_id, text, labels))
    if not queries:
        raise UserError(f"{path} holds no queries")
    return queries


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    grades: dict[str, dict[str, int]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts or parts[0] in ("query-id", "query_id"):
            continue
        if len(parts) == 4:  # TREC: qid 0 docid grade
            parts = [parts[0], parts[2], parts[3]]
        if len(parts) != 3 or not parts[2].lstrip("-").isdigit():
            raise UserError(f"{path}:{number}: expected 'query_id key grade' (tab separated)")
        grades.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return grades


def judge(result: SearchResult, relevant: dict[str, int]) -> tuple[str, int]:
    """(the label key this result matches or its document id, its grade)."""
    stem = PurePosixPath(result.source).stem
    for key in (result.chunk_id, result.doc_id, result.source, stem):
        if key in relevant:
            return key, relevant[key]
    for key, grade in relevant.items():
        if result.source.endswith("/" + key):
            return key, grade
    return result.doc_id, 0


def score_ranking(
    gains: Sequence[int], ideal: Sequence[int], relevant_count: int, k: int
) -> tuple[float, float, float]:
    """(recall@k, reciprocal rank within k, nDCG@10) for one ranked list of graded gains."""
    recall = sum(1 for gain in gains[:k] if gain > 0) / relevant_count if relevant_count else 0.0
    reciprocal = next((1.0 / position for position, gain in enumerate(gains[:k], 1) if gain > 0), 0.0)
    dcg = sum((2**gain - 1) / math.log2(position + 1) for position, gain in enumerate(gains[:10], 1))
    idcg = sum(
        (2**gain - 1) / math.log2(position + 1) for position, gain in enumerate(sorted(ideal, reverse=True)[:10], 1)
    )
    return recall, reciprocal, dcg / idcg if idcg else 0.0


def evaluate(
    searcher: Searcher, queries: Sequence[EvalQuery], *, modes: Sequence[Mode] = MODES, k: int = 10
) -> list[ModeScores]:
    scores = []
    for mode in modes:
        totals = [0.0, 0.0, 0.0]
        for query in queries:
            seen: set[str] = set()
            gains: list[int] = []
            for result in searcher.search(query.query, k=max(k, 10) * 3, mode=mode):
                key, grade = judge(result, query.relevant)
                if key in seen or result.doc_id in seen:
                    continue
                seen.update((key, result.doc_id))
                gains.append(grade)
            positive = sum(1 for grade in query.relevant.values() if grade > 0)
            for index, value in enumerate(score_ranking(gains, list(query.relevant.values()), positive, k)):
                totals[index] += value
        count = len(queries)
        scores.append(ModeScores(mode, count, totals[0] / count, totals[1] / count, totals[2] / count, k))
    return scores


# --- passage level ---------------------------------------------------------------------------------
#
# The file-level scores above forgive a search that returns the right document's wrong chunk.  Grounded
# answers need the chunk itself, so passage questions are labelled with a *marker*: a string that
# occurs once in the corpus, inside the passage that answers (a definition's signature, say).  A
# result is a hit when its chunk's text contains the marker, which keeps the label valid however the
# corpus is re-chunked, and every chunk counts on its own (no per-document de-duplication).


@dataclass(frozen=True, slots=True)
class PassageQuery:
    id: str
    query: str
    marker: str


@dataclass(frozen=True, slots=True)
class PassageScores:
    mode: str
    queries: int
    recall_at_5: float  # share of questions with a chunk holding the marker among the first five
    mrr_at_10: float  # mean of 1 / rank of the first such chunk, 0 beyond rank ten
    misses: tuple[str, ...]  # ids of the questions not answered within the first five
    median_ms: float = 0.0  # median wall time of one search, query embedding included

    def to_json(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "queries": self.queries,
            "recall@5": round(self.recall_at_5, 4),
            "mrr@10": round(self.mrr_at_10, 4),
            "median_ms": round(self.median_ms, 2),
            "misses": list(self.misses),
        }


def load_passage_queries(path: Path) -> list[PassageQuery]:
    """JSON Lines of ``{"id", "query", "marker"}``; an empty marker would match every chunk, so it is refused."""
    queries: list[PassageQuery] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            query_id, text, marker = str(item.get("id") or f"q{number}"), item.get("query"), item.get("marker")
        except (json.JSONDecodeError, AttributeError) as exc:
            # from None: the decoder's error is in the message already
            raise UserError(f"{path}:{number}: not a JSON object ({exc}); one query per line") from None
        if not isinstance(text, str) or not text.strip():
            raise UserError(f'{path}:{number}: needs a "query" string')
        if not isinstance(marker, str) or not marker.strip():
            raise UserError(f'{path}:{number}: needs a non-empty "marker": text found only in the answering chunk')
        queries.append(PassageQuery(query_id, text, marker))
    if not queries:
        raise UserError(f"{path} holds no queries")
    return queries


def passage_rank(results: Sequence[SearchResult], marker: str) -> int | None:
    """1-based rank of the first result whose chunk holds ``marker``, or None."""
    return next((position for position, result in enumerate(results, 1) if marker in result.text), None)


def evaluate_passages(
    searcher: Searcher, queries: Sequence[PassageQuery], *, modes: Sequence[Mode] = MODES
) -> list[PassageScores]:
    """recall@5 and MRR@10 at chunk level for each mode (see the section comment above)."""
    scores = []
    for mode in modes:
        found = 0
        reciprocal = 0.0
        misses: list[str] = []
        timings: list[float] = []
        for query in queries:
            started = time.perf_counter()
            results = searcher.search(query.query, k=10, mode=mode)
            timings.append(time.perf_counter() - started)
            rank = passage_rank(results, query.marker)
            if rank is not None and rank <= 5:
                found += 1
            else:
                misses.append(query.id)
            reciprocal += 1.0 / rank if rank is not None else 0.0
        count = len(queries)
        median_ms = statistics.median(timings) * 1000
        scores.append(PassageScores(mode, count, found / count, reciprocal / count, tuple(misses), median_ms))
    return scores
