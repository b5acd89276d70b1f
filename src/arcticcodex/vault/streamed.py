"""Importing one large text file as a stream: memory bounded by a batch, whatever the file's size.

Loading a large text file whole held it about seven times over (a 50 MB file grew the process by
303 MB: the bytes, the decoded text, every chunk's text, the prepared rows, SQLite's copy of the
record …; benchmarks/vault_import.py).  A plain text or Markdown file is stored exactly as its bytes
decode, so it can instead be read a block at a time, and each block goes three ways at once:

* its bytes are stored as the next of the document's ``document_parts`` (one row per 256 KiB block;
  the document row's ``text`` is left empty).  Binding the text as one value would make SQLite build
  the whole record in memory; :meth:`Vault.document_text` and the integrity check read the parts;
* its decoded text feeds a :class:`~.chunk_stream.ChunkStream`, whose chunks (with their byte
  offsets into the file) come out as soon as they are decided;
* every ``batch_chunks`` chunks, the texts the vault has no vector for are embedded in one call and
  written with their chunks.

It all happens inside one transaction, so the document appears whole or not at all, exactly as a
small file does: a crash, a decoding error halfway, or a file that changes while it is read (its
size or SHA-256 no longer matches the one taken first) rolls everything back.  The price is that the
workspace's write lock is held while the file is embedded; readers (search, the Studio's pages) are
not blocked, other writers wait.  SQLite spills the transaction's pages to the WAL as they
accumulate, so its memory stays flat too: a 200 MB file imports in the same peak RSS as a 50 MB one.
"""

from __future__ import annotations

import codecs
import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import FileIdentity, open_plain_file
from .chunk_stream import ChunkStream
from .chunker import ChunkSpan, embedded_heading, embedding_text
from .embeddings import to_blob
from .entities import new_id, now, sha256_text
from .loaders import stem_title, undecodable
from .section_titles import TITLE_STYLE_OF
from .store import Vault

__all__ = ["READ_BYTES", "STREAMED_MEDIA_TYPES", "StreamedImport", "file_digest", "import_streamed"]

READ_BYTES = 1 << 18
STREAMED_MEDIA_TYPES = frozenset({"text/plain", "text/markdown"})


@dataclass
class StreamedImport:
    """What streaming one file wrote: chunks, texts embedded, vectors reused."""

    chunks: int = 0
    embedded: int = 0
    reused: int = 0


def file_digest(path: Path, identity: FileIdentity | None = None) -> tuple[str, int]:
    """SHA-256 (hex) and size of a plain file (still the file ``identity`` names), read a block at a time."""
    digest = hashlib.sha256()
    size = 0
    with open_plain_file(path, identity=identity) as handle:
        while block := handle.read(READ_BYTES):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def import_streamed(
    vault: Vault,
    path: Path,
    *,
    source: str,
    digest: str,
    size: int,
    media_type: str,
    modified: str | None,
    batch_chunks: int,
    on_batch: Callable[[StreamedImport], None] | None = None,
    identity: FileIdentity | None = None,
) -> StreamedImport:
    """Insert or replace the document ``source`` with the text file ``path`` (see the module docstring).

    ``digest`` and ``size`` are the file's as hashed before (the skip-if-unchanged check); the file
    must still match them when it has been read, or nothing is written.  ``identity`` is the file the
    folder walk found (:func:`~arcticcodex.fileio.open_plain_file`).
    """
    counts = StreamedImport()
    with vault.transaction() as conn:
        stamp = now()
        existing = conn.execute("SELECT id FROM documents WHERE source = ?", (source,)).fetchone()
        values = (stem_title(path), source, media_type, digest, digest, size, modified, stamp)
        if existing is not None:
            document_id = str(existing[0])
            _set_aside_replaced_hashes(conn, document_id)
            conn.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
            conn.execute("DELETE FROM conversations WHERE document_id = ?", (document_id,))
            conn.execute("DELETE FROM document_parts WHERE document_id = ?", (document_id,))
            conn.execute(
                "UPDATE documents SET title = ?, source = ?, media_type = ?, source_sha256 = ?, text_sha256 = ?,"
                " text = '', size_bytes = ?, source_modified_at = ?, updated_at = ? WHERE id = ?",
                (*values, document_id),
            )
        else:
            document_id = new_id("doc")
            conn.execute(
                "INSERT INTO documents (title, source, media_type, source_sha256, text_sha256, text, size_bytes,"
                " source_modified_at, updated_at, id, created_at) VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?)",
                (*values, document_id, stamp),
            )
        stream = ChunkStream(
            max_chars=vault.chunk_chars, overlap_chars=vault.overlap_chars, title_style=TITLE_STYLE_OF.get(media_type)
        )
        writer = _ChunkWriter(vault, document_id, batch_chunks, counts, on_batch)
        _read_into(conn, path, document_id, size, digest, stream, writer, identity)
        writer.flush()
        if media_type == "text/markdown" and stream.first_heading:
            conn.execute("UPDATE documents SET title = ? WHERE id = ?", (stream.first_heading, document_id))
        if existing is not None:
            _drop_replaced_vectors(conn)
        vault._bump()  # the store's generation counter (search caches key on it), in the same transaction
    return counts


def _read_into(
    conn: sqlite3.Connection,
    path: Path,
    document_id: str,
    size: int,
    digest: str,
    stream: ChunkStream,
    writer: _ChunkWriter,
    identity: FileIdentity | None,
) -> None:
    """Store the file as the document's parts and feed its decoded text to ``stream``, checking it as it goes."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    hasher = hashlib.sha256()
    offset = lines = part = 0
    with open_plain_file(path, identity=identity) as handle:
        while True:
            block = handle.read(READ_BYTES)
            if offset + len(block) > size:
                raise _changed(path)
            final = not block
            pending = decoder.getstate()[0]
            try:
                text = decoder.decode(block, final=final)
            except UnicodeDecodeError as exc:
                data = pending + block
                position = offset - len(pending) + exc.start
                line = lines + data.count(b"\n", 0, exc.start) + 1
                # from None: the UnicodeDecodeError adds nothing the message does not already say
                raise undecodable(path, "utf-8", position, data[exc.start], line) from None
            if final:
                writer.add(stream.finish())
                break
            conn.execute(
                "INSERT INTO document_parts (document_id, part, bytes) VALUES (?, ?, ?)", (document_id, part, block)
            )
            part += 1
            hasher.update(block)
            offset += len(block)
            lines += block.count(b"\n")
            writer.add(stream.feed(text))
    if offset != size or hasher.hexdigest() != digest:
        raise _changed(path)


def _changed(path: Path) -> UserError:
    return UserError(f"{path} changed while it was being imported; nothing of it was kept. Import it again.")


class _ChunkWriter:
    """Writes chunks in batches: embeds the texts the vault has no vector for, then inserts the rows."""

    def __init__(
        self,
        vault: Vault,
        document_id: str,
        batch_chunks: int,
        counts: StreamedImport,
        on_batch: Callable[[StreamedImport], None] | None,
    ) -> None:
        self.vault, self.document_id, self.batch_chunks = vault, document_id, batch_chunks
        self.counts, self.on_batch = counts, on_batch
        self.pending: list[tuple[ChunkSpan, str]] = []
        self.sequence = 0

    def add(self, chunks: list[tuple[ChunkSpan, str]]) -> None:
        self.pending.extend(chunks)
        while len(self.pending) >= self.batch_chunks:
            batch, self.pending = self.pending[: self.batch_chunks], self.pending[self.batch_chunks :]
            self._write(batch)

    def flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            self._write(batch)

    def _write(self, batch: list[tuple[ChunkSpan, str]]) -> None:
        vault, conn = self.vault, self.vault.conn
        hashes = [sha256_text(text) for _, text in batch]
        texts: dict[str, tuple[str | None, str]] = {}  # digest -> (heading path, text): both are embedded
        for (span, text), digest in zip(batch, hashes, strict=True):
            texts.setdefault(digest, (span.heading_path, text))
        missing = vault.missing_embeddings(list(texts), [path for path, _ in texts.values()])
        order = [digest for digest in texts if digest in missing]
        if order:
            matrix: np.ndarray = vault.embedder.embed([embedding_text(*texts[digest]) for digest in order])
            stamp = now()
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings"
                " (model, content_sha256, dimensions, vector, created_at, heading_path) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        vault.model_name,
                        digest,
                        int(vector.shape[0]),
                        to_blob(vector),
                        stamp,
                        embedded_heading(texts[digest][0]),
                    )
                    for digest, vector in zip(order, matrix, strict=True)
                ],
            )
        rows = []
        for (span, text), digest in zip(batch, hashes, strict=True):
            rows.append(
                (
                    f"{self.document_id}:{self.sequence}",
                    self.document_id,
                    self.sequence,
                    span.start_byte,
                    span.end_byte,
                    span.heading,
                    text,
                    digest,
                    span.heading_path,
                )
            )
            self.sequence += 1
        conn.executemany(
            "INSERT INTO chunks (id, document_id, sequence, start_byte, end_byte, heading, text, sha256,"
            " heading_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        self.counts.chunks += len(batch)
        self.counts.embedded += len(order)
        self.counts.reused += len(texts) - len(order)
        if self.on_batch is not None:
            self.on_batch(self.counts)


def _set_aside_replaced_hashes(conn: sqlite3.Connection, document_id: str) -> None:
    """Remember (in a temporary table, not in memory) the text hashes of the chunks being replaced."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS replaced_chunk_hashes (sha256 TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM temp.replaced_chunk_hashes")
    conn.execute(
        "INSERT OR IGNORE INTO temp.replaced_chunk_hashes SELECT sha256 FROM chunks WHERE document_id = ?",
        (document_id,),
    )


def _drop_replaced_vectors(conn: sqlite3.Connection) -> None:
    """Drop the vectors of replaced chunk texts that no chunk uses any more (as ``Vault.write_documents`` does)."""
    conn.execute(
        "DELETE FROM embeddings WHERE content_sha256 IN (SELECT sha256 FROM temp.replaced_chunk_hashes)"
        " AND content_sha256 NOT IN (SELECT sha256 FROM chunks"
        " WHERE sha256 IN (SELECT sha256 FROM temp.replaced_chunk_hashes))"
    )
    conn.execute("DELETE FROM temp.replaced_chunk_hashes")
