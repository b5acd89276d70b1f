"""BM25 at scale: each common term's chunks and impacts kept as arrays, so a query is a few vector sums.

FTS5 ranks by scoring every chunk a query matches through its auxiliary-function interface, about
1.5 µs a match on one core: two common words over a million chunks (700k matches) take ~400 ms.
But BM25 is a sum over the query's terms of ``idf(term) × impact(term, chunk)``, and the impact (the
term's frequency in the chunk, saturated and normalised by the chunk's length) does not depend on the
query.  So a term matching more than :data:`DIRECT_MATCHES` chunks keeps, once, every chunk it matches
with its impact (FTS5's own BM25 of the term divided by the term's IDF), and a query adds those
arrays, each times its current IDF, into one score per chunk: NumPy does that at ~1 ns a match.
Rarer terms are read from FTS5 each time.  Nothing is cut from a list, so the ranking is FTS5's own
(``tests/test_vault_term_postings.py`` compares them), with one allowance: chunks appended after a
list was made are scored against the average chunk length of now, earlier ones against that of then,
until the list is made again (see below; a difference of ~1e-5 of a score when like chunks are added).

Lists live in the table ``term_postings`` (vault migration 4), made the first time a term is
searched and extended with the chunks appended since (rowids above ``max_rowid``, which FTS5 seeks to
directly).  Triggers keep them true whoever writes: deleted chunks are listed in
``term_postings_deleted`` and skipped; a rowid used again lowers the lists' ``max_rowid`` below it.
A list is remade when the vault has grown or shrunk by a fifth since its impacts were computed (the
average chunk length in them drifts), and both tables are emptied once deletions pile up.  A list is
stored only if the vault's generation has not moved since it was read, and never by waiting for a
lock: a search that cannot write (a read-only file, an import in progress) keeps it in memory.
"""

from __future__ import annotations

import math
import sqlite3
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .query import phrase

__all__ = ["DIRECT_MATCHES", "TermPostings"]

DIRECT_MATCHES = 256
"""Terms matching at most this many chunks are read from FTS5 at every search (a fraction of a millisecond)."""
MEMORY_BYTES = 96 << 20
"""Lists held in memory per searcher, most recently used first (a term in 300k chunks takes 3.6 MB)."""
_DRIFT = 5  # a list is remade once the chunk count differs by more than 1/_DRIFT from when it was made
_MATCHING = "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?"


@dataclass(frozen=True, slots=True)
class _Postings:
    """A term's chunks, by ascending rowid, with their impacts."""

    rowids: np.ndarray  # int64, ascending
    impacts: np.ndarray  # float32: the term's BM25 in the chunk divided by the term's IDF
    chunks: int  # chunks in the vault when the impacts were computed
    max_rowid: int  # the list holds every matching chunk up to this rowid

    @property
    def nbytes(self) -> int:
        return int(self.rowids.nbytes + self.impacts.nbytes)


def inverse_document_frequency(chunks: int, matches: int) -> float:
    """FTS5's own IDF (``fts5Bm25Function``), floored at 1e-6 for a term in over half of the chunks."""
    value = math.log((chunks - matches + 0.5) / (matches + 0.5))
    return value if value > 0 else 1e-6


class TermPostings:
    """BM25 rankings of a vault's chunks from kept per-term arrays (see the module docstring).

    Lists read or made at one vault generation are used until it moves.  Not thread-safe: one per
    :class:`~.search.Searcher`; ``conn`` is the vault's connection.
    """

    def __init__(self, conn: sqlite3.Connection, *, direct_matches: int = DIRECT_MATCHES) -> None:
        self.conn = conn
        self.direct_matches = direct_matches
        self._memory: OrderedDict[str, _Postings] = OrderedDict()
        self._memory_bytes = 0
        self._counts: dict[str, int] = {}
        self._generation = -1
        self._chunks = 0
        self._max_rowid = 0
        self._deleted = np.zeros(0, np.int64)
        self.lists_made = 0  # lists made from FTS5 by this object (tests read it)

    def matches(self, term: str) -> int:
        """How many chunks hold the term (in any column)."""
        self._refresh()
        if term not in self._counts:
            kept = self._list(term)
            self._counts[term] = self._live(kept)[0].size if kept is not None else self._count(term)
        return self._counts[term]

    def top(self, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        """(rowid, BM25 score) of the best ``limit`` chunks holding any of ``terms``, best first."""
        self._refresh()
        if limit <= 0 or not self._chunks:
            return []
        rowid_parts, score_parts = [], []
        for term in dict.fromkeys(terms):
            kept = self._list(term)
            if kept is None:  # a rare term: FTS5 scores its few chunks directly
                rows = self.conn.execute(_MATCHING, (phrase(term),)).fetchall()
                rowid_parts.append(np.fromiter((row[0] for row in rows), np.int64, len(rows)))
                score_parts.append(np.fromiter((row[1] for row in rows), np.float64, len(rows)))
                continue
            rowids, impacts = self._live(kept)
            rowid_parts.append(rowids)
            score_parts.append(impacts * inverse_document_frequency(self._chunks, rowids.size))
        return _best(rowid_parts, score_parts, limit, self._max_rowid)

    # -- the vault's state --------------------------------------------------------------------

    def _refresh(self) -> None:
        generation = int(self.conn.execute("SELECT value FROM vault_state WHERE key = 'generation'").fetchone()[0])
        if generation == self._generation:
            return
        self._chunks, self._max_rowid = self.conn.execute(
            "SELECT count(*), coalesce(max(rowid), 0) FROM chunks"
        ).fetchone()
        rows = self.conn.execute("SELECT rowid FROM term_postings_deleted ORDER BY rowid").fetchall()
        self._deleted = np.fromiter((row[0] for row in rows), np.int64, len(rows))
        self._memory.clear()
        self._memory_bytes = 0
        self._counts = {}
        self._generation = generation
        if len(rows) > max(10_000, self._chunks // 10):
            self._forget_all()

    def _live(self, postings: _Postings) -> tuple[np.ndarray, np.ndarray]:
        """The list without deleted chunks, and its impacts as float64."""
        rowids, impacts = postings.rowids, postings.impacts
        if self._deleted.size:
            at = np.searchsorted(rowids, self._deleted).clip(max=max(rowids.size - 1, 0))
            gone = at[rowids[at] == self._deleted] if rowids.size else at[:0]
            if gone.size:
                keep = np.ones(rowids.size, dtype=bool)
                keep[gone] = False
                rowids, impacts = rowids[keep], impacts[keep]
        return rowids, impacts.astype(np.float64)

    # -- lists ------------------------------------------------------------------------------------

    def _list(self, term: str) -> _Postings | None:
        """The term's kept list brought up to date, or None for a term rare enough to read directly."""
        postings = self._memory.get(term)
        if postings is not None:
            self._memory.move_to_end(term)
            return postings
        if self._counts.get(term, self.direct_matches + 1) <= self.direct_matches:
            return None  # found rare at this generation already
        kept = self._kept(term)
        drifted = kept is not None and abs(self._chunks - kept.chunks) * _DRIFT > kept.chunks
        if kept is not None and not drifted and kept.max_rowid >= self._max_rowid:
            postings = kept
        elif kept is not None and not drifted:
            postings = self._extended(kept, term)
            self._keep(term, postings)
        else:
            if kept is None and self._count(term) <= self.direct_matches:
                return None
            postings = self._made(term)
            self._keep(term, postings)
        self._remember(term, postings)
        return postings

    def _count(self, term: str) -> int:
        if term not in self._counts:
            row = self.conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (phrase(term),))
            self._counts[term] = int(row.fetchone()[0])
        return self._counts[term]

    def _made(self, term: str) -> _Postings:
        """Every chunk holding the term, with its impact, from FTS5."""
        self.lists_made += 1
        rows = self.conn.execute(_MATCHING, (phrase(term),)).fetchall()
        rowids, impacts = _arrays(rows, inverse_document_frequency(self._chunks, len(rows)))
        return _Postings(rowids, impacts, self._chunks, self._max_rowid)

    def _extended(self, kept: _Postings, term: str) -> _Postings:
        """A kept list with the chunks appended after it read from FTS5 (FTS5 computes their IDF now)."""
        rows = self.conn.execute(f"{_MATCHING} AND rowid > ?", (phrase(term), kept.max_rowid)).fetchall()
        upto = int(np.searchsorted(kept.rowids, kept.max_rowid, side="right"))  # entries past it are stale
        live = self._live(_Postings(kept.rowids[:upto], kept.impacts[:upto], kept.chunks, kept.max_rowid))[0]
        new_rowids, new_impacts = _arrays(rows, inverse_document_frequency(self._chunks, live.size + len(rows)))
        return _Postings(
            np.concatenate([kept.rowids[:upto], new_rowids]),
            np.concatenate([kept.impacts[:upto], new_impacts]),
            kept.chunks,
            self._max_rowid,
        )

    def _kept(self, term: str) -> _Postings | None:
        row = self.conn.execute(
            "SELECT chunks, max_rowid, rowids, impacts FROM term_postings WHERE term = ?", (term,)
        ).fetchone()
        if row is None:
            return None
        if not isinstance(row[2], bytes) or not isinstance(row[3], bytes):
            return None  # not what this module writes: made again
        rowid_bytes, impact_bytes = row[2], row[3]
        if len(rowid_bytes) != 2 * len(impact_bytes) or len(impact_bytes) % 4 or int(row[0]) <= 0:
            return None
        rowids = np.frombuffer(rowid_bytes, dtype="<i8").astype(np.int64)
        impacts = np.frombuffer(impact_bytes, dtype="<f4").astype(np.float32)
        if rowids.size > 1 and not bool(np.all(rowids[1:] > rowids[:-1])):
            return None
        max_rowid = int(row[1])
        upto = int(np.searchsorted(rowids, max_rowid, side="right"))  # a rowid used again is read anew
        return _Postings(rowids[:upto], impacts[:upto], int(row[0]), max_rowid)

    def _remember(self, term: str, postings: _Postings) -> None:
        self._memory[term] = postings
        self._memory_bytes += postings.nbytes
        while self._memory_bytes > MEMORY_BYTES and len(self._memory) > 1:
            _, dropped = self._memory.popitem(last=False)
            self._memory_bytes -= dropped.nbytes

    def _keep(self, term: str, postings: _Postings) -> None:
        """Store the list, if the vault is still as it was read (see the module docstring)."""
        row = (
            term,
            postings.chunks,
            postings.max_rowid,
            postings.rowids.astype("<i8").tobytes(),
            postings.impacts.astype("<f4").tobytes(),
        )
        self._write_if_current(
            "INSERT OR REPLACE INTO term_postings (term, chunks, max_rowid, rowids, impacts) VALUES (?, ?, ?, ?, ?)",
            row,
        )

    def _forget_all(self) -> None:
        """Drop every list once deletions pile up: they are made again, smaller, when next searched."""
        if self._write_if_current("DELETE FROM term_postings", ()) and self._write_if_current(
            "DELETE FROM term_postings_deleted", ()
        ):
            self._deleted = np.zeros(0, np.int64)

    def _write_if_current(self, sql: str, parameters: tuple[object, ...]) -> bool:
        """Run one write if the lock is free now and the vault is at the generation read; True if it ran."""
        (timeout,) = self.conn.execute("PRAGMA busy_timeout").fetchone()
        self.conn.execute("PRAGMA busy_timeout = 0")
        try:
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                now = self.conn.execute("SELECT value FROM vault_state WHERE key = 'generation'").fetchone()[0]
                if int(now) != self._generation:
                    return False
                self.conn.execute(sql, parameters)
                return True
        except sqlite3.OperationalError:
            return False  # read-only, or another process is writing: nothing is stored this time
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout)}")


def _arrays(rows: Sequence[tuple[int, float]], idf: float) -> tuple[np.ndarray, np.ndarray]:
    """(rowids ascending, impacts) of FTS5 (rowid, BM25) rows of one term."""
    rowids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    impacts = (np.fromiter((row[1] for row in rows), dtype=np.float64, count=len(rows)) / idf).astype(np.float32)
    order = np.argsort(rowids, kind="stable")
    return rowids[order], impacts[order]


def _best(
    rowid_parts: list[np.ndarray], score_parts: list[np.ndarray], limit: int, max_rowid: int
) -> list[tuple[int, float]]:
    """The ``limit`` best summed scores, ties to the lower rowid."""
    entries = sum(part.size for part in rowid_parts)
    if not entries:
        return []
    if entries * 8 < max_rowid:  # few matches: sum them where they are
        rowids, where = np.unique(np.concatenate(rowid_parts), return_inverse=True)
        totals = np.bincount(where, weights=np.concatenate(score_parts), minlength=rowids.size)
    else:  # many: one slot per rowid, no sorting
        totals = np.zeros(max_rowid + 1, dtype=np.float64)
        for part, scores in zip(rowid_parts, score_parts, strict=True):
            totals[part] += scores  # one term's rowids are distinct, so fancy-index addition is exact
        rowids = np.flatnonzero(totals) if entries * 2 < max_rowid else np.arange(max_rowid + 1)
        totals = totals[rowids] if rowids.size != totals.size else totals
    limit = min(limit, int(np.count_nonzero(totals)))
    if limit <= 0:
        return []
    top = np.argpartition(-totals, limit - 1)[:limit]
    top = top[np.lexsort((rowids[top], -totals[top]))]
    return [(int(rowids[i]), float(totals[i])) for i in top]
