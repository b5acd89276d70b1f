"""Two datasets side by side: counts, quality histograms, and the accepted pairs they share.

Two datasets are often two runs over the same material (another teacher, another threshold): which
pairs does the second repeat, and which questions does it answer differently?  A pair is in both
when its normalized instruction and completion are (:func:`~.record_index.content_keys`: case, width
and spacing do not count; record ids would miss a pair whose evidence differs); a question is in
both when its instruction alone is.  Only accepted pairs (train and validation) are compared.

The comparison runs in SQLite over the two datasets' record indexes (:mod:`.record_index`), whose
keys were computed while each index was streamed: at 100k pairs a side, no Python object a pair.
Results are remembered by both indexes' identities, so viewing the same comparison again is free
and a changed dataset is compared again.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .record_index import RecordIndex, read_only_uri

__all__ = ["Comparison", "Comparisons", "Shared", "compare_indexes"]

EXAMPLES = 5
_ACCEPTED = "split != 'rejected'"


@dataclass(frozen=True, slots=True)
class Shared:
    """A pair of one dataset and its counterpart in the other: where each is, and the instruction."""

    instruction: str
    first_split: str
    first_index: int
    second_split: str
    second_index: int


@dataclass(frozen=True, slots=True)
class Comparison:
    """What two datasets share: distinct accepted pairs and instructions of each, and in both."""

    first: dict[str, Any]
    second: dict[str, Any]
    first_pairs: int
    second_pairs: int
    pairs_in_both: int
    first_questions: int
    second_questions: int
    questions_in_both: int
    same_pairs: list[Shared] = field(default_factory=list)
    other_answers: list[Shared] = field(default_factory=list)
    """Examples of a question in both whose answers differ."""


class Comparisons:
    """Comparisons by the identities of both indexes (thread-safe; the newest ``max_entries`` kept)."""

    def __init__(self, max_entries: int = 16) -> None:
        self.max_entries = max_entries
        self.computed = 0
        self._kept: OrderedDict[tuple[str, str], Comparison] = OrderedDict()
        self._lock = threading.Lock()

    def compare(self, first: RecordIndex, second: RecordIndex) -> Comparison:
        key = (first.identity, second.identity)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                return kept
        comparison = compare_indexes(first, second)
        with self._lock:
            self.computed += 1
            self._kept[key] = comparison
            while len(self._kept) > self.max_entries:
                self._kept.popitem(last=False)
        return comparison


def compare_indexes(first: RecordIndex, second: RecordIndex) -> Comparison:
    """Compare the accepted pairs of two indexed datasets (see the module's docstring)."""
    conn = sqlite3.connect(read_only_uri(first.path), uri=True)
    try:
        conn.execute("ATTACH DATABASE ? AS other", (read_only_uri(second.path),))

        def distinct(column: str, schema: str) -> int:
            sql = f"SELECT count(DISTINCT {column}) FROM {schema}.records WHERE {_ACCEPTED}"  # noqa: S608 - constants
            return int(conn.execute(sql).fetchone()[0])

        def in_both(column: str) -> int:
            sql = (
                f"SELECT count(*) FROM (SELECT {column} FROM main.records WHERE {_ACCEPTED} "  # noqa: S608 - constants
                f"INTERSECT SELECT {column} FROM other.records WHERE {_ACCEPTED})"
            )
            return int(conn.execute(sql).fetchone()[0])

        def examples(condition: str) -> list[Shared]:
            rows = conn.execute(
                "SELECT a.head, a.split, a.idx, b.split, b.idx FROM main.records a JOIN other.records b"  # noqa: S608
                f" ON {condition} WHERE a.{_ACCEPTED} AND b.{_ACCEPTED} ORDER BY a.rowid LIMIT ?",
                (EXAMPLES,),
            ).fetchall()
            return [Shared(*row) for row in rows]

        return Comparison(
            first=first.summary(),
            second=second.summary(),
            first_pairs=distinct("pair_key", "main"),
            second_pairs=distinct("pair_key", "other"),
            pairs_in_both=in_both("pair_key"),
            first_questions=distinct("instruction_key", "main"),
            second_questions=distinct("instruction_key", "other"),
            questions_in_both=in_both("instruction_key"),
            same_pairs=examples("a.pair_key = b.pair_key"),
            other_answers=examples("a.instruction_key = b.instruction_key AND a.pair_key != b.pair_key"),
        )
    finally:
        conn.close()
