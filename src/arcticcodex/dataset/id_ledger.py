"""Finding duplicate record ids in a file of any length, in bounded memory.

``dataset verify`` must name every record whose id was already seen on an earlier line.  A set of
Python strings costs ~125 bytes an id (125 MB at 1M records); this ledger keeps 24 bytes a record
(a 16-byte key and the line) in a fixed buffer that spills, past :data:`BUFFER_RECORDS`, to
:data:`BUCKETS` temporary files by a hash of the key.  At the end each bucket (1/64 of the records)
is sorted on its own: equal keys are the duplicates, the earliest line of each key the one they
duplicate.  Memory: the buffer (1.5 MB; twice that while it spills) and one bucket (0.4 MB at 1M
records); disk: 24 MB at 1M records, removed at the end.

The key of a content id (``tp-`` and 32 hex digits, what every valid record has) *is* its 16 bytes,
so it is exact and the id can be written back from it.  Any other id is keyed by its BLAKE2b-128
digest (a collision is a 2⁻¹²⁸ event) and kept as text for the first :data:`MAX_OTHER_IDS` of them:
every such record is also reported for its id not being its content id, so past that many the
report's listing is full before any later line, and only the count of duplicates is needed.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from .id_set import content_key

__all__ = ["BUCKETS", "BUFFER_RECORDS", "Duplicate", "IdLedger"]

BUFFER_RECORDS = 1 << 16
BUCKET_BITS = 6  # the top bits of the key's hash choose its bucket
BUCKETS = 1 << BUCKET_BITS
MAX_OTHER_IDS = 1000  # the report lists at most this many problems (verify.MAX_PROBLEMS)
_OTHER = 1 << 63  # flag in the line column: the key is a digest, not a content id's bytes
_ROW = np.dtype([("k0", ">u8"), ("k1", ">u8"), ("line", "<u8")])  # the key as two integers, the line
_ROW_BYTES = 24

Duplicate = tuple[int, int, str | None]
"""(line, the earlier line with the same id, the id, or None where it was not kept)."""


class IdLedger:
    """Ids added with their lines; :meth:`duplicates` names the later lines of each id, in line order."""

    def __init__(self, *, buffer_records: int | None = None) -> None:
        self._buffer = bytearray()
        self._limit = (BUFFER_RECORDS if buffer_records is None else buffer_records) * _ROW_BYTES
        self._other_ids: dict[bytes, str] = {}
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._handles: dict[int, Any] = {}

    def __enter__(self) -> IdLedger:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Remove the temporary files (also at the end of a ``with`` block)."""
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def add(self, record_id: str, line: int) -> None:
        key = content_key(record_id)
        if key is None:
            key = hashlib.blake2b(record_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            if len(self._other_ids) < MAX_OTHER_IDS:
                self._other_ids.setdefault(key, record_id)
            line |= _OTHER
        self._buffer += key
        self._buffer += line.to_bytes(8, "little")
        if len(self._buffer) >= self._limit:
            self._spill()

    def duplicates(self, limit: int) -> tuple[list[Duplicate], int]:
        """The ``limit`` duplicates with the smallest lines (in line order), and how many there are in all."""
        found: list[tuple[int, int, int, int, bool]] = []
        count = 0
        for rows in self._buckets():
            in_bucket, listed = _duplicates_in(rows, max(limit, 0))
            count += in_bucket
            found += listed
        result: list[Duplicate] = []
        for line, earlier, k0, k1, other in sorted(found)[: max(limit, 0)]:
            key = k0.to_bytes(8, "big") + k1.to_bytes(8, "big")
            result.append((line, earlier, self._other_ids.get(key) if other else "tp-" + key.hex()))
        return result, count

    def _buckets(self) -> Iterator[np.ndarray[Any, Any]]:
        """Each bucket's rows (the buffer's alone when nothing was spilled)."""
        if self._scratch is None:
            yield np.frombuffer(bytes(self._buffer), dtype=_ROW)
            return
        self._spill()
        for handle in self._handles.values():
            handle.flush()
        for number in range(BUCKETS):
            path = Path(self._scratch.name) / f"{number}.ids"
            if path.exists():
                yield np.fromfile(path, dtype=_ROW)

    def _spill(self) -> None:
        if not self._buffer:
            return
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="arcticcodex-ids-")
        rows = np.frombuffer(bytes(self._buffer), dtype=_ROW)
        self._buffer = bytearray()
        # a multiplicative hash of the whole key: ids made in sequence still spread over the buckets
        bucket = ((rows["k0"] ^ rows["k1"]) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - BUCKET_BITS)
        order = np.argsort(bucket, kind="stable")
        bounds = np.searchsorted(bucket[order], np.arange(BUCKETS + 1))
        for number in range(BUCKETS):
            start, end = int(bounds[number]), int(bounds[number + 1])
            if start == end:
                continue
            handle = self._handles.get(number)
            if handle is None:
                handle = self._handles[number] = open(Path(self._scratch.name) / f"{number}.ids", "ab")  # noqa: SIM115
            rows[order[start:end]].tofile(handle)


def _duplicates_in(rows: np.ndarray[Any, Any], limit: int) -> tuple[int, list[tuple[int, int, int, int, bool]]]:
    """How many lines repeat an earlier line's key, and the ``limit`` first of them as (line, the earliest
    line of its key, the key, whether the key is a digest); a file of one record a million times costs
    arrays, not a million tuples."""
    if len(rows) < 2:
        return 0, []
    lines = rows["line"] & np.uint64(_OTHER - 1)
    order = np.lexsort((lines, rows["k1"], rows["k0"]))
    k0, k1, lines, flags = rows["k0"][order], rows["k1"][order], lines[order], rows["line"][order] >= _OTHER
    same = (k0[1:] == k0[:-1]) & (k1[1:] == k1[:-1])
    if not same.any():
        return 0, []
    starts_group = np.concatenate(([True], ~same))
    earliest = lines[np.flatnonzero(starts_group)][np.cumsum(starts_group) - 1]
    repeats = np.flatnonzero(~starts_group)
    first = repeats[np.argsort(lines[repeats], kind="stable")[:limit]]
    listed = [(int(lines[at]), int(earliest[at]), int(k0[at]), int(k1[at]), bool(flags[at])) for at in first]
    return len(repeats), listed
