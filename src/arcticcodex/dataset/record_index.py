"""A searchable index of one dataset folder's records, so a page of 100k records is a lookup, not a scan.

The Studio browses, searches and filters a dataset's records on every view; reading 100k JSON lines
for each would take seconds.  Instead the records are read once, streamed, into a SQLite file in a
cache folder: one row a record (split, position, index, quality, source, rejection stage, the start
of its instruction, where its line lies in its file, and two content keys), a contentless FTS5 index
over instruction and completion, and the figures the dataset page shows (counts, quality histograms,
the sensitive-data summary from the manifest).  The texts themselves stay in the dataset's files:
a record is read back from its byte range.

An index is used only while the folder is exactly as it was when the index was built: its identity is
the manifest's SHA-256 and each record file's size, inode and modification and change times (as
:mod:`.verdicts` keys its verdicts).  A folder whose identity changed is indexed again, into a new file
renamed over the old one, so a reader never sees half an index.  Whether the records may be *shown*
is not decided here: callers ask :class:`~.verdicts.VerdictCache` first.

The content keys (:func:`content_keys`) compare datasets (:mod:`.comparison`): 16 bytes of SHA-256 of
the normalized instruction and completion, and of the instruction alone, so two datasets of 100k
pairs are compared in SQLite without a Python object a pair.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import DatasetError, RecordNotFoundError, UnsafeFileError
from ..fileio import open_plain_file, read_plain_file
from ..layout import MANIFEST_FILE, REJECTED_FILE, TRAIN_FILE, VALIDATION_FILE
from .quality import QUALITY_BUCKETS, quality_bucket
from .sensitive_gate import BLOCKED_NOTE
from .verify import MAX_MANIFEST_BYTES

__all__ = [
    "MATCHES_COUNTED",
    "SPLIT_FILES",
    "STAGES",
    "IndexedRecord",
    "RecordIndex",
    "RecordIndexes",
    "RecordQuery",
    "content_keys",
    "folder_identity",
    "read_only_uri",
    "rejection_stage",
]

SPLIT_FILES = {"train": TRAIN_FILE, "validation": VALIDATION_FILE, "rejected": REJECTED_FILE}
STAGES = ("teachers", "human review", "sensitive data")
"""Where a rejected pair was turned away: below the teachers' threshold, by a person, by the gate."""
SCHEMA = 1
MATCHES_COUNTED = 5_000
"""Matches are counted up to this many ("5,000+" beyond): a count never costs more than a bounded scan."""
HEAD_CHARACTERS = 160
WORDS_SEARCHED = 8
_BATCH = 2000
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")


def rejection_stage(feedback: str) -> str:
    """Which step rejected a pair, read from its feedback (see :data:`STAGES`)."""
    if feedback.startswith("rejected in human review"):
        return "human review"
    if feedback.startswith(BLOCKED_NOTE):
        return "sensitive data"
    return "teachers"


def _normalized(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def content_keys(instruction: str, completion: str) -> tuple[bytes, bytes]:
    """16-byte keys of the pair and of its instruction alone, after case, width and spacing are normalized."""
    question = _normalized(instruction)
    pair = hashlib.sha256(f"{question}\x1f{_normalized(completion)}".encode()).digest()[:16]
    return pair, hashlib.sha256(question.encode()).digest()[:16]


def read_only_uri(path: Path) -> str:
    """The SQLite URI that opens ``path`` read-only (any character of the path escaped)."""
    return path.resolve().as_uri() + "?mode=ro"


def folder_identity(folder: Path) -> str:
    """The manifest's digest and every record file's size, inode and times, as one hex digest."""
    parts: list[str] = []
    try:
        parts.append(hashlib.sha256(read_plain_file(folder / MANIFEST_FILE, limit=MAX_MANIFEST_BYTES)).hexdigest())
    except (OSError, UnsafeFileError):
        parts.append("no manifest")
    for name in SPLIT_FILES.values():
        try:
            info = os.lstat(folder / name)
        except OSError:
            parts.append(f"{name}:-")
            continue
        parts.append(f"{name}:{info.st_size}:{info.st_ino}:{info.st_mtime_ns}:{info.st_ctime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """Which records of one split a page lists: words to find, a quality range, a stage, a source."""

    split: str = "train"
    text: str = ""
    quality_min: float | None = None
    quality_max: float | None = None
    stage: str = ""
    source: str = ""
    start: int = 0
    limit: int = 50

    def __post_init__(self) -> None:
        if self.split not in SPLIT_FILES:
            raise DatasetError(f"there is no split {self.split!r}; a dataset has {', '.join(SPLIT_FILES)}")
        if self.stage and self.stage not in STAGES:
            raise DatasetError(f"there is no stage {self.stage!r}; pairs are rejected by {', '.join(STAGES)}")

    @property
    def words(self) -> list[str]:
        return _WORD.findall(self.text)[:WORDS_SEARCHED]  # FTS5's tokenizer folds case and diacritics itself

    @property
    def filtered(self) -> bool:
        return bool(
            self.words or self.quality_min is not None or self.quality_max is not None or self.stage or self.source
        )


@dataclass(frozen=True, slots=True)
class IndexedRecord:
    """A record as a list shows it: its index in its split, the start of its instruction, and why (rejected)."""

    index: int
    instruction: str
    quality: float
    source: str
    stage: str
    feedback: str


class RecordIndex:
    """An open index of one dataset folder (read-only; one thread; close it, or use ``with``)."""

    def __init__(self, path: Path, folder: Path) -> None:
        self.path = path
        self.folder = folder
        self._conn = sqlite3.connect(read_only_uri(path), uri=True)
        try:
            self.identity = str(self._meta("identity")) if self._meta("schema") == SCHEMA else "an older index"
        except sqlite3.DatabaseError:
            self._conn.close()
            raise

    def __enter__(self) -> RecordIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def _meta(self, name: str) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def summary(self) -> dict[str, Any]:
        """Counts per split, quality histograms (accepted, rejected), mean quality, sources, sensitive data."""
        return dict(self._meta("summary"))

    def page(self, query: RecordQuery) -> tuple[list[IndexedRecord], int, bool]:
        """The records ``query`` lists from ``query.start``; how many match (counted up to
        :data:`MATCHES_COUNTED`); and whether that count was cut off there."""
        low, high = self._range(query.split)
        columns = "r.idx, r.head, r.quality, r.source, r.stage, r.feedback"
        if not query.filtered:  # positions are rowids in order: a page is a range, at any depth
            rows = self._conn.execute(
                f"SELECT {columns} FROM records r WHERE r.rowid BETWEEN ? AND ? ORDER BY r.rowid LIMIT ?",  # noqa: S608
                (low + query.start, high, query.limit),
            ).fetchall()
            return [IndexedRecord(*row) for row in rows], max(0, high - low + 1), False
        source, where, parameters = self._conditions(query, low, high)
        listed = self._conn.execute(
            f"SELECT {columns} FROM {source} WHERE {where} ORDER BY r.rowid LIMIT ? OFFSET ?",  # noqa: S608
            (*parameters, query.limit, query.start),
        ).fetchall()
        only_words = query.quality_min is None and query.quality_max is None and not query.stage and not query.source
        if query.words and only_words:  # counted in the FTS index alone, no record looked up
            source, where = "texts", "texts MATCH ? AND rowid BETWEEN ? AND ?"
        (counted,) = self._conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {source} WHERE {where} LIMIT ?)",  # noqa: S608 - constant clauses
            (*parameters, MATCHES_COUNTED + 1),
        ).fetchone()
        return [IndexedRecord(*row) for row in listed], min(counted, MATCHES_COUNTED), counted > MATCHES_COUNTED

    def _range(self, split: str) -> tuple[int, int]:
        low, high = self._meta("ranges").get(split, [1, 0])
        return int(low), int(high)

    def _conditions(self, query: RecordQuery, low: int, high: int) -> tuple[str, str, list[Any]]:
        conditions, parameters = ["r.rowid BETWEEN ? AND ?"], list[Any]([low, high])
        source = "records r"
        if query.words:  # the FTS index drives (rowid order, this split's range), each record looked up by rowid
            source = "texts CROSS JOIN records r ON r.rowid = texts.rowid"
            conditions = ["texts MATCH ?", "texts.rowid BETWEEN ? AND ?"]
            parameters = [" ".join(f'"{word}"*' for word in query.words), low, high]
        for condition, value in (
            ("r.quality >= ?", query.quality_min),
            ("r.quality <= ?", query.quality_max),
            ("r.stage = ?", query.stage or None),
            ("r.source = ?", query.source or None),
        ):
            if value is not None:
                conditions.append(condition)
                parameters.append(value)
        return source, " AND ".join(conditions), parameters

    def record(self, split: str, index: int) -> dict[str, Any]:
        """The full JSON of record ``index`` of ``split``, read back from its line of the dataset's file."""
        row = self._conn.execute(
            "SELECT offset, length FROM records WHERE split = ? AND idx = ?", (split, index)
        ).fetchone()
        if row is None:
            raise RecordNotFoundError(f"the {split} split has no record {index}")
        with open_plain_file(self.folder / SPLIT_FILES[split]) as handle:
            handle.seek(row[0])
            line = handle.read(row[1])
        value = orjson.loads(line)
        if not isinstance(value, dict):
            raise DatasetError(f"{SPLIT_FILES[split]}: record {index} is not a JSON object")
        return value


class RecordIndexes:
    """The record indexes of dataset folders, kept in ``cache`` (one SQLite file a folder), built on demand.

    Thread-safe: one folder is indexed by one thread at a time, and the others wait for that index.
    """

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.builds = 0  # how many indexes were built (the rest were reused)
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def open(self, folder: str | Path) -> RecordIndex:
        """The index of ``folder`` as it is now: the cached one if the folder has not changed, else a new one."""
        folder = Path(folder).resolve()
        path = self.cache / f"{hashlib.sha256(str(folder).encode()).hexdigest()[:32]}.sqlite"
        identity = folder_identity(folder)
        with self._lock:
            building = self._building.setdefault(str(path), threading.Lock())
        with building:
            if path.is_file():
                try:
                    index = RecordIndex(path, folder)
                except sqlite3.DatabaseError:  # not an index of ours (a damaged cache file): made again
                    pass
                else:
                    if index.identity == identity:
                        return index
                    index.close()
            self._build(folder, path, identity)
            self.builds += 1
        return RecordIndex(path, folder)

    def _build(self, folder: Path, path: Path, identity: str) -> None:
        self.cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        scratch = path.with_name(f"{path.stem}.{secrets.token_hex(4)}.building")
        try:
            conn = sqlite3.connect(scratch)
            try:
                _fill(conn, folder, identity)
            finally:
                conn.close()
            os.replace(scratch, path)
        finally:
            scratch.unlink(missing_ok=True)


def _fill(conn: sqlite3.Connection, folder: Path, identity: str) -> None:
    conn.executescript(
        """
        PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE records (
            rowid INTEGER PRIMARY KEY, split TEXT, idx INTEGER, quality REAL, source TEXT, stage TEXT,
            head TEXT, feedback TEXT, offset INTEGER, length INTEGER, pair_key BLOB, instruction_key BLOB);
        CREATE VIRTUAL TABLE texts USING fts5(instruction, completion, content='', detail=none,
            tokenize='unicode61 remove_diacritics 2');
        """
    )
    tally = _Tally()
    ranges: dict[str, list[int]] = {}
    rowid = 0
    for split, name in SPLIT_FILES.items():
        first = rowid + 1
        for batch in _batches(folder / name, split, first, tally):
            conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch[0])
            conn.executemany("INSERT INTO texts (rowid, instruction, completion) VALUES (?, ?, ?)", batch[1])
            rowid += len(batch[0])
        ranges[split] = [first, rowid]
    conn.executescript(
        "CREATE INDEX records_idx ON records (split, idx);"
        "CREATE INDEX records_pair ON records (pair_key) WHERE split != 'rejected';"
        "CREATE INDEX records_question ON records (instruction_key) WHERE split != 'rejected';"
    )
    summary = tally.summary(_sensitive_data(folder))
    for meta, value in (("schema", SCHEMA), ("identity", identity), ("ranges", ranges), ("summary", summary)):
        conn.execute("INSERT INTO meta VALUES (?, ?)", (meta, json.dumps(value)))
    conn.commit()


_Rows = tuple[list[tuple[Any, ...]], list[tuple[int, str, str]]]


def _batches(path: Path, split: str, first: int, tally: _Tally) -> Iterator[_Rows]:
    """The rows of ``path``'s records, a batch at a time (the file is streamed, never held)."""
    if not path.is_file():
        return
    rows: list[tuple[Any, ...]] = []
    texts: list[tuple[int, str, str]] = []
    rowid, offset = first, 0
    with open_plain_file(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            length = len(line)
            if line.strip():
                try:
                    record = orjson.loads(line)
                    instruction, completion = str(record["instruction"]), str(record["completion"])
                    quality = float(record["quality"])
                    feedback = str(record.get("feedback") or "")
                    source = str((record.get("source") or {}).get("kind") or "")
                    index = int(record["index"])
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                    raise DatasetError(f"{path.name}:{line_number}: not a dataset record ({exc})") from exc
                stage = rejection_stage(feedback) if split == "rejected" else ""
                tally.add(split, quality, source)
                pair_key, instruction_key = content_keys(instruction, completion)
                head = instruction[:HEAD_CHARACTERS]
                rows.append(
                    (rowid, split, index, quality, source, stage, head, feedback if split == "rejected" else "",
                     offset, length, pair_key, instruction_key)
                )  # fmt: skip
                texts.append((rowid, instruction, completion))
                rowid += 1
                if len(rows) >= _BATCH:
                    yield rows, texts
                    rows, texts = [], []
            offset += length
    if rows:
        yield rows, texts


class _Tally:
    """The figures the dataset page shows, counted while the index is built (as ``dataset stats`` counts them)."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(SPLIT_FILES, 0)
        self.accepted = dict.fromkeys(QUALITY_BUCKETS, 0)
        self.rejected = dict.fromkeys(QUALITY_BUCKETS, 0)
        self.quality_sum = 0.0
        self.sources: dict[str, int] = {}

    def add(self, split: str, quality: float, source: str) -> None:
        self.counts[split] += 1
        (self.rejected if split == "rejected" else self.accepted)[quality_bucket(quality)] += 1
        if split != "rejected":
            self.quality_sum += quality
        if source:
            self.sources[source] = self.sources.get(source, 0) + 1

    def summary(self, sensitive_data: Any) -> dict[str, Any]:
        accepted = self.counts["train"] + self.counts["validation"]
        return {
            **self.counts,
            "accepted": accepted,
            "quality_mean": self.quality_sum / accepted if accepted else None,
            "accepted_histogram": self.accepted,
            "rejected_histogram": self.rejected,
            "sources": dict(sorted(self.sources.items())),
            "sensitive_data": sensitive_data,
        }


def _sensitive_data(folder: Path) -> Any:
    try:
        manifest = json.loads(read_plain_file(folder / MANIFEST_FILE, limit=MAX_MANIFEST_BYTES))
    except (OSError, UnsafeFileError, ValueError):
        return None
    return manifest.get("sensitive_data") if isinstance(manifest, dict) else None
