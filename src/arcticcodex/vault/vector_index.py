"""An approximate nearest-neighbour index of the vault's chunk vectors, kept in a file beside the database.

Exact cosine over every vector costs one pass over all of them per query (about 10 ms at 100k
chunks on one core, so 100 ms and 1.5 GB of float32 at 1M).  Past :data:`APPROXIMATE_FROM` chunks,
:class:`~.search.Searcher` asks this index instead: faiss's inverted file over 8-bit scalar-quantised
codes (``IVF…,SQ8``, inner product; 384 bytes a vector, so about 400 MB at 1M), probing
:data:`PROBES` lists, then re-scores the candidates exactly against the float32 vectors read from
SQLite, so a reported cosine is always the true one.  Chosen over graph indexes because an inverted
file removes vectors in place (a deleted or re-imported document) and builds in one pass; faiss is a
dependency already (:mod:`arcticcodex.dataset.dedup_index`).  Figures: ``benchmarks/README.md``.

**The database is the truth; the file is a cache of it.**  The file records the chunk rowids it
holds and, for each, the first 64 bits of the chunk text's hash (a reused rowid with new text is a
different entry), plus checksums of itself and the state of the database it was saved at (the
generation counter, the number of chunks, the highest chunk rowid).  Whenever the vault's generation
has moved since the index last looked — and when a process loads a file saved at another state —
:meth:`VectorIndex.sync` reads the (rowid, hash) pairs of every chunk with a vector and reconciles:
entries the database no longer has are removed, new ones added (an import or a forget costs only its
own vectors), and the file is rewritten through a temporary file and a rename, streamed (the index
is never copied whole in memory).  Every vault write moves the generation in its own transaction,
so a file saved at the database's present state is used without that read.  A file that is missing, truncated, corrupt,
for another model, a symbolic link, or that would need more new entries than it holds is rebuilt
from the vectors table, never used as it is.  So a search after another process imported, or after
an import killed half way, answers over exactly what the database holds.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sqlite3
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write
from .embeddings import from_blobs

__all__ = ["APPROXIMATE_FROM", "PROBES", "VectorIndex", "index_path", "refresh_index"]

APPROXIMATE_FROM = 20_000
"""Chunks from which search uses the index rather than exact cosine (the measured crossover is lower,
see ``benchmarks/README.md``; below this the exact matrix is small and needs no file)."""
PROBES = 32
"""Inverted lists a query visits: recall@10 1.0 on clustered vectors at 100k, 0.3 ms a query."""
OVERSAMPLE = 2
"""Candidates asked of the index per result wanted, before the exact re-scoring."""
_MAGIC = b"ACXANN1\n"
_FORMAT = 2  # 1 put the header first and needed the whole file in memory to write it
_BATCH = 20_000  # vectors read from SQLite at a time while building
_TRAIN_PER_LIST = 40  # training vectors per inverted list (faiss's k-means warns below 39)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def index_path(database: Path, model: str) -> Path:
    """Where the index of ``model``'s vectors lives: beside the database, one file per model."""
    return database.with_name(f"{database.stem}.vectors.{_UNSAFE.sub('_', model)}.ann")


def refresh_index(conn: sqlite3.Connection, database: Path, model: str) -> bool:
    """Bring the index file up to date after an import or a forget; True if there is a file to keep.

    Called by :func:`~.ingest.import_paths` once the vault is large enough to search by the index, so
    the importing process pays for adding its vectors (or for the first build) and a search process
    finds the file at the database's present state; and by :meth:`~.store.Vault.forget` whenever a
    file exists, so what was forgotten leaves the file too, not only the database.  A search still
    checks and reconciles (see the module docstring): this only moves the work.
    """
    chunks = int(conn.execute("SELECT count(*) FROM chunks").fetchone()[0])
    if chunks < APPROXIMATE_FROM and not index_path(database, model).exists():
        return False
    VectorIndex(conn, database, model).sync()
    return True


def _lists_for(count: int) -> int:
    """Inverted lists for ``count`` vectors: about 4·√n, never so many that a list trains on few vectors."""
    return max(1, min(int(4 * math.sqrt(count)), count // 39))


@dataclass(slots=True)
class _Entries:
    """Chunk rowids with a vector and the 64-bit keys of their text, sorted by rowid."""

    rowids: np.ndarray
    keys: np.ndarray

    def differences(self, other: _Entries) -> tuple[np.ndarray, np.ndarray]:
        """Masks over self and over other of the entries the other lacks (a rowid with another key counts)."""
        _, mine, theirs = np.intersect1d(self.rowids, other.rowids, assume_unique=True, return_indices=True)
        same = self.keys[mine] == other.keys[theirs]
        only_mine = np.ones(len(self.rowids), dtype=bool)
        only_theirs = np.ones(len(other.rowids), dtype=bool)
        only_mine[mine[same]] = False
        only_theirs[theirs[same]] = False
        return only_mine, only_theirs


class VectorIndex:
    """The approximate index of one vault's vectors for one model (see the module docstring).

    Not thread-safe; one per :class:`~.search.Searcher`.  ``conn`` is the vault's connection.
    """

    def __init__(self, conn: sqlite3.Connection, database: Path, model: str, *, probes: int = PROBES) -> None:
        self.conn = conn
        self.model = model
        self.path = index_path(database, model)
        self.probes = probes
        self._index: Any = None
        self._entries = _Entries(np.zeros(0, np.int64), np.zeros(0, np.int64))
        self._dimensions = 0
        self._generation = -1
        self._saved_state: tuple[int, ...] = ()  # (generation, chunks, highest rowid) the loaded file was saved at
        self.rebuilds = 0  # full builds done by this object (tests and the benchmark read it)

    def __len__(self) -> int:
        return len(self._entries.rowids)

    # -- keeping in step with the database -------------------------------------------------------

    def sync(self) -> None:
        """Make the index hold exactly the database's vectors (cheap when the generation has not moved)."""
        generation = _generation(self.conn)
        if generation == self._generation and self._index is not None:
            return
        if self._index is None and self._load() and self._saved_state == (generation, *self._fingerprint()):
            self._generation = generation  # written at this very state of the database: no reading needed
            return
        entries = self._database_entries()
        changed = self._reconcile(entries)
        self._generation = generation
        if changed:
            self._save(generation)

    def _fingerprint(self) -> tuple[int, int]:
        """Chunks and the highest chunk rowid: with the generation, what a file must have been saved at."""
        chunks, highest = self.conn.execute("SELECT count(*), coalesce(max(rowid), 0) FROM chunks").fetchone()
        return int(chunks), int(highest)

    def _database_entries(self) -> _Entries:
        rows = self.conn.execute(
            "SELECT c.rowid, substr(c.sha256, 1, 16) FROM chunks c JOIN embeddings e"
            " ON e.content_sha256 = c.sha256 AND e.model = ? ORDER BY c.rowid",
            (self.model,),
        ).fetchall()
        rowids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        keys = np.fromiter((int(row[1], 16) - (1 << 63) for row in rows), dtype=np.int64, count=len(rows))
        return _Entries(rowids, keys)

    def _reconcile(self, wanted: _Entries) -> bool:
        """Remove what the database lost, add what it gained; rebuild when that is most of it.  True if changed."""
        have = self._entries
        if (
            self._index is not None
            and np.array_equal(have.rowids, wanted.rowids)
            and np.array_equal(have.keys, wanted.keys)
        ):
            return False
        if self._index is None:
            self._build(wanted)
            return True
        stale, fresh = have.differences(wanted)
        if int(fresh.sum()) > max(len(have.rowids) - int(stale.sum()), 0):  # trained on too little of it
            self._build(wanted)
            return True
        if stale.any():
            import faiss

            self._index.remove_ids(faiss.IDSelectorBatch(have.rowids[stale]))
        added = wanted.rowids[fresh]
        for start in range(0, len(added), _BATCH):
            part = added[start : start + _BATCH]
            self._index.add_with_ids(self._vectors(part), part)
        self._entries = wanted
        return True

    def _build(self, wanted: _Entries) -> None:
        import faiss

        self.rebuilds += 1
        self._entries = wanted
        count = len(wanted.rowids)
        if count == 0:
            self._index = None
            self._dimensions = 0
            return
        dimensions = self._dimensions_in_database()
        lists = _lists_for(count)
        index = faiss.index_factory(dimensions, f"IVF{lists},SQ8", faiss.METRIC_INNER_PRODUCT)
        sample_size = min(count, lists * _TRAIN_PER_LIST)
        sample = np.sort(np.random.default_rng(count).choice(count, sample_size, replace=False))
        training = self._vectors(wanted.rowids[sample])
        if len(training) < _TRAIN_PER_LIST:  # a tiny vault: one list, its centroid trained on repeated vectors
            training = np.resize(training, (_TRAIN_PER_LIST, dimensions))
        index.train(training)
        for start in range(0, count, _BATCH):
            part = wanted.rowids[start : start + _BATCH]
            index.add_with_ids(self._vectors(part), part)
        self._index = index
        self._dimensions = dimensions

    def _dimensions_in_database(self) -> int:
        row = self.conn.execute("SELECT dimensions FROM embeddings WHERE model = ? LIMIT 1", (self.model,)).fetchone()
        return int(row[0])

    def _vectors(self, rowids: np.ndarray) -> np.ndarray:
        """The float32 vectors of these chunk rowids, in that order."""
        found: dict[int, bytes] = {}
        ids = [int(rowid) for rowid in rowids]
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            found.update(
                self.conn.execute(
                    "SELECT c.rowid, e.vector FROM chunks c CROSS JOIN embeddings e"  # noqa: S608 - placeholders only
                    f" ON e.content_sha256 = c.sha256 AND e.model = ? WHERE c.rowid IN ({marks})",
                    [self.model, *part],
                ).fetchall()
            )
        dimensions = self._dimensions or self._dimensions_in_database()
        return from_blobs([found[rowid] for rowid in ids], dimensions)

    # -- searching --------------------------------------------------------------------------------

    def search(self, vector: np.ndarray, limit: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(rowid, exact cosine) best first, of at most ``limit`` chunks, among ``allowed`` rowids if given."""
        self.sync()
        if self._index is None or limit <= 0:
            return []
        import faiss

        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        wanted = min(len(self), limit * OVERSAMPLE)
        parameters = faiss.SearchParametersIVF()
        parameters.nprobe = min(self.probes, self._index.nlist)
        if allowed is not None:
            if len(allowed) <= wanted * 20:  # few enough to score them all exactly
                return self._rescore(np.asarray(allowed, dtype=np.int64), vector, limit)
            parameters.sel = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        _, labels = self._index.search(query, wanted, params=parameters)
        candidates = labels[0][labels[0] >= 0]
        return self._rescore(candidates, vector, limit)

    def _rescore(self, rowids: np.ndarray, vector: np.ndarray, limit: int) -> list[tuple[int, float]]:
        held = self._entries.rowids  # sorted: a binary search per candidate, not a pass over them all
        at = np.searchsorted(held, rowids).clip(max=max(len(held) - 1, 0))
        present = rowids[held[at] == rowids] if len(held) else rowids[:0]
        if not len(present):
            return []
        scores = self._vectors(present) @ np.asarray(vector, dtype=np.float32)
        order = np.lexsort((present, -scores))[:limit]  # best first, ties to the lower rowid
        return [(int(present[i]), float(scores[i])) for i in order]

    # -- the file ---------------------------------------------------------------------------------

    def _load(self) -> bool:
        """Read the file if it is whole and ours; anything else leaves no index, so :meth:`sync` rebuilds."""
        try:
            loaded = _read(self.path, self.model)
        except (OSError, ValueError, RuntimeError, KeyError, struct.error):
            loaded = None
        if loaded is not None:
            self._index, self._entries, self._dimensions, self._saved_state = loaded
        return loaded is not None

    def _save(self, generation: int) -> None:
        """Write the file in one pass: the index streams out of faiss, never copied whole in memory."""
        import faiss

        if self._index is None:
            self.path.unlink(missing_ok=True)
            return
        fingerprint = self._fingerprint()
        rowids = self._entries.rowids.astype("<i8").tobytes()
        keys = self._entries.keys.astype("<i8").tobytes()
        with atomic_write(self.path, mode=0o600) as handle:
            for part in (_MAGIC, rowids, keys):
                handle.write(part)
            written = _CheckedStream(handle.write)
            writer = faiss.PyCallbackIOWriter(written)  # type: ignore[attr-defined]  # not in faiss's stubs
            faiss.write_index(self._index, writer)
            del writer  # flushes what faiss still buffers
            header = {
                "format": _FORMAT,
                "model": self.model,
                "dimensions": self._dimensions,
                "generation": generation,
                "fingerprint": list(fingerprint),
                "count": len(self),
                "entries_sha256": hashlib.sha256(rowids + keys).hexdigest(),
                "index_bytes": written.size,
                "index_crc32": written.crc32,
            }
            encoded = json.dumps(header, sort_keys=True).encode()
            handle.write(encoded)
            handle.write(struct.pack("<I", len(encoded)))


class _CheckedStream:
    """Passes bytes through (to a writer) or from a reader, counting them and their CRC-32."""

    def __init__(self, write: Any = None, read: Any = None, limit: int = 0) -> None:
        self._write, self._read, self._left = write, read, limit
        self.size = 0
        self.crc32 = 0

    def __call__(self, data: Any) -> Any:
        if self._write is not None:  # faiss writing: data is the bytes
            self._count(bytes(data))
            return self._write(data)
        wanted = min(int(data), self._left)  # faiss reading: data is how many bytes it wants
        chunk = self._read(wanted)
        self._left -= len(chunk)
        self._count(chunk)
        return chunk

    def _count(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.crc32 = zlib.crc32(chunk, self.crc32)


def _generation(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM vault_state WHERE key = 'generation'").fetchone()[0])


def _read(path: Path, model: str) -> tuple[Any, _Entries, int, tuple[int, ...]] | None:
    """The index, its entries and dimensions, if the file is whole and for this model; else None.

    Layout: magic, rowids, keys, the faiss index, a JSON header, the header's length (the header
    comes last so the index can stream out of faiss before its size and checksum are known).
    """
    if path.is_symlink() or not path.is_file():
        return None
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(size - 4)
        (length,) = struct.unpack("<I", handle.read(4))
        handle.seek(size - 4 - length)
        header = json.loads(handle.read(length))
        count = int(header["count"])
        if header["format"] != _FORMAT or header["model"] != model or count < 0:
            return None
        index_bytes = int(header["index_bytes"])
        if len(_MAGIC) + 16 * count + index_bytes + length + 4 != size:
            return None
        handle.seek(0)
        if handle.read(len(_MAGIC)) != _MAGIC:
            return None
        entries = handle.read(16 * count)
        if hashlib.sha256(entries).hexdigest() != header["entries_sha256"]:
            return None
        import faiss

        read = _CheckedStream(read=handle.read, limit=index_bytes)
        index = faiss.read_index(faiss.PyCallbackIOReader(read))  # type: ignore[attr-defined]  # not in the stubs
        if read.size != index_bytes or read.crc32 != header["index_crc32"]:
            return None
    rowids = np.frombuffer(entries[: 8 * count], dtype="<i8").astype(np.int64)
    keys = np.frombuffer(entries[8 * count :], dtype="<i8").astype(np.int64)
    if index.ntotal != count or index.d != int(header["dimensions"]):
        return None
    saved_state = (int(header["generation"]), *map(int, header["fingerprint"]))
    return index, _Entries(rowids, keys), int(header["dimensions"]), saved_state
