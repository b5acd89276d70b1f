"""Query text and rank fusion: what the search engine does with the words a user typed.

* :func:`query_terms` keeps identifiers whole (``E-4471``, ``max_inflight_batches``, ``v2.3.1``) and
  drops stop words unless nothing else is left;
* :func:`fts_query` quotes every term, so user text is never FTS5 syntax (no injection, no errors);
* :func:`highlight` finds the window of a chunk to show and the spans to mark;
* :func:`reciprocal_rank_fusion` and :func:`convex_fusion` combine the BM25 and vector rankings
  (see :mod:`.search` for which is used when, and benchmarks/README.md for how they compare).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

IDENTIFIER_BM25_WEIGHT = 2.0
_TERM = re.compile(r"\w(?:[\w.\-:/]*\w)?")
_STOPWORDS = frozenset(
    (
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "did",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "so",
        "that",
        "the",
        "their",
        "there",
        "these",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    )
)


def reciprocal_rank_fusion(rankings: Sequence[dict[int, int]], weights: Sequence[float], k: int) -> dict[int, float]:
    """``Σ wᵢ / (k + rankᵢ)`` over the rankings each item appears in (ranks are 1-based)."""
    fused: dict[int, float] = {}
    for ranks, weight in zip(rankings, weights, strict=True):
        for rowid, rank in ranks.items():
            fused[rowid] = fused.get(rowid, 0.0) + weight / (k + rank)
    return fused


def convex_fusion(
    bm25: Sequence[tuple[int, float]], vector: Sequence[tuple[int, float]], alpha: float = 0.5
) -> dict[int, float]:
    """``α·cos' + (1−α)·bm25'`` with each score min-max normalised over its own candidate list.

    Unlike RRF it keeps *how much* better the top hit was, which is what a lone exact identifier
    match or a lone strong paraphrase match looks like (measured in benchmarks/README.md).
    """

    def normalise(scored: Sequence[tuple[int, float]]) -> dict[int, float]:
        if not scored:
            return {}
        values = [score for _, score in scored]
        low, high = min(values), max(values)
        return {rowid: (score - low) / (high - low) if high > low else 1.0 for rowid, score in scored}

    lexical, semantic = normalise(bm25), normalise(vector)
    return {
        rowid: alpha * semantic.get(rowid, 0.0) + (1 - alpha) * lexical.get(rowid, 0.0)
        for rowid in lexical.keys() | semantic.keys()
    }


def bm25_weight(query: str) -> float:
    """BM25's weight in RRF: doubled when the query holds an identifier (``E-4471``, ``max_batch``,
    ``ORN7``, ``SLA``), which sentence embeddings split into meaningless word pieces while the
    full-text index matches it exactly."""
    return IDENTIFIER_BM25_WEIGHT if any(map(is_identifier, query_terms(query))) else 1.0


def is_identifier(term: str) -> bool:
    """A code, key, version or acronym rather than a word: holds a digit or ``_``, or is ALL CAPS."""
    return any(ch.isdigit() for ch in term) or "_" in term or (len(term) >= 2 and term.isalpha() and term.isupper())


# --- query text ----------------------------------------------------------------------------------


def query_terms(query: str) -> list[str]:
    """The words and identifiers of a query (``E-4471``, ``max_inflight_batches`` stay whole)."""
    terms = [term for term in _TERM.findall(query) if term.lower() not in _STOPWORDS]
    return terms or _TERM.findall(query)


def fts_query(query: str) -> str:
    """An FTS5 expression matching any term; each term is quoted, so user text is never syntax."""
    return " OR ".join(map(phrase, dict.fromkeys(query_terms(query))))


def phrase(term: str) -> str:
    """``term`` as an FTS5 phrase string (quoted, inner quotes doubled): literal text, never syntax."""
    return '"' + term.replace('"', '""') + '"'


def highlight(text: str, terms: Sequence[str], width: int = 240) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A window of ``text`` around the first matching term, and the spans of every match in it.

    Matching is case-insensitive on word prefixes (``deploys`` finds ``deployment``), close to what
    the porter-stemmed full-text index matched.
    """
    stems = sorted({_stem(term.lower()) for term in terms if term}, key=len, reverse=True)
    if not stems:
        return _window(text, 0, width), ()
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(stem) for stem in stems) + r")[\w\-]*", re.IGNORECASE)
    first = pattern.search(text)
    start = 0 if first is None else max(0, first.start() - width // 3)
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    snippet = _window(text, start, width)
    offset = 1 if start else 0  # the leading "…"
    body = text[start : start + width]
    spans = tuple((match.start() + offset, match.end() + offset) for match in pattern.finditer(body))
    return snippet, spans


def _stem(term: str) -> str:
    """Words match by prefix (``deploys`` ~ ``deployment``); identifiers (``e-4471``) only whole."""
    return term[: max(4, len(term) - 2)] if term.isalpha() else term


def _window(text: str, start: int, width: int) -> str:
    body = text[start : start + width]
    return ("…" if start else "") + body + ("…" if start + width < len(text) else "")
