"""The vault: documents and chunks in the workspace's SQLite database, forgetting, integrity.

One :class:`Vault` wraps one connection.  Every write is a transaction (``BEGIN IMMEDIATE``, a
savepoint when nested: :mod:`arcticcodex.db.transaction`), so a document and its chunks appear together
or not at all, and a crash at any point leaves the last committed state.  Facts, summaries and
conversations live in :mod:`.memory`; search in :mod:`.search`; import in :mod:`.ingest`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np

from ..db import transaction
from ..errors import RecordNotFoundError, UserError
from ..workspace import Workspace
from .chunker import embedded_heading
from .embeddings import EmbeddingBackend, backend_named, to_blob
from .entities import Chunk, Document, IntegrityReport, Tombstone, new_id, now, sha256_text
from .loaders import Conversation
from .memory import MemoryMixin
from .vector_index import refresh_index


@dataclass(frozen=True, slots=True)
class PreparedChunk:
    sequence: int
    start_byte: int
    end_byte: int
    heading: str | None
    text: str
    heading_path: str | None = None  # "Guide › Installation": stored, searched, and embedded before the text

    @property
    def sha256(self) -> str:
        return sha256_text(self.text)


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    """A loaded and chunked file, ready to be written in one transaction."""

    source: str
    title: str
    media_type: str
    source_sha256: str
    text: str
    size_bytes: int
    source_modified_at: str | None
    chunks: tuple[PreparedChunk, ...]
    conversations: tuple[Conversation, ...] = ()


class Vault(MemoryMixin):
    """The knowledge store of one workspace.

    ``embedder`` overrides the configured model (``[vault] embedding_model`` in arcticcodex.toml,
    default all-MiniLM-L6-v2) — tests pass a :class:`~.embeddings.HashingBackend` explicitly.
    """

    def __init__(self, workspace: Workspace, *, embedder: EmbeddingBackend | None = None) -> None:
        self.workspace = workspace
        settings = workspace.config.vault  # checked when the file was read; a wrong value is raised here
        self.chunk_chars = settings.chunk_chars
        self.overlap_chars = settings.overlap_chars
        self.rrf_k = settings.rrf_k
        self.fusion = settings.fusion
        model = settings.embedding_model
        self._embedder = embedder
        self._model_name = embedder.name if embedder is not None else model
        self.conn = workspace.connect()
        self.conn.row_factory = sqlite3.Row

    @classmethod
    def open(cls, workspace: Workspace | Path | str | None = None, **kwargs: Any) -> Vault:
        if not isinstance(workspace, Workspace):
            workspace = Workspace.discover(workspace)
        return cls(workspace, **kwargs)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def embedder(self) -> EmbeddingBackend:
        if self._embedder is None:
            self._embedder = backend_named(self._model_name)
        return self._embedder

    @property
    def model_name(self) -> str:
        return self._model_name

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """The vault's connection in a transaction (a savepoint inside one): see :mod:`arcticcodex.db.transaction`."""
        return transaction(self.conn)

    def generation(self) -> int:
        """A counter bumped by every write that changes chunks or vectors (search caches key on it)."""
        row = self.conn.execute("SELECT value FROM vault_state WHERE key = 'generation'").fetchone()
        return int(row[0])

    def _bump(self) -> None:
        self.conn.execute("UPDATE vault_state SET value = value + 1 WHERE key = 'generation'")

    # -- reading --------------------------------------------------------------------------------

    def get_document(self, document_id: str) -> Document:
        row = self.conn.execute(_DOCUMENTS + " WHERE d.id = ? GROUP BY d.id", (document_id,)).fetchone()
        if row is None:
            raise RecordNotFoundError(f"no document {document_id!r}; list them with `arcticcodex vault docs`")
        return Document.from_row(row)

    def find_document(self, source: str) -> Document | None:
        row = self.conn.execute(_DOCUMENTS + " WHERE d.source = ? GROUP BY d.id", (source,)).fetchone()
        return Document.from_row(row) if row else None

    def document_text(self, document_id: str) -> str:
        """The stored text, which chunk offsets index (a large file streamed in keeps it in parts)."""
        row = self.conn.execute("SELECT text FROM documents WHERE id = ?", (document_id,)).fetchone()
        if row is None:
            raise RecordNotFoundError(f"no document {document_id!r}")
        return str(row[0]) or self.document_bytes(document_id).decode("utf-8")

    def document_bytes(self, document_id: str) -> bytes:
        """The UTF-8 bytes of a document's text kept in ``document_parts`` (empty if it has none)."""
        parts = self.conn.execute(
            "SELECT bytes FROM document_parts WHERE document_id = ? ORDER BY part", (document_id,)
        )
        return b"".join(part[0] for part in parts)

    def list_documents(self, *, source_glob: str | None = None, limit: int | None = None) -> list[Document]:
        rows = self.conn.execute(_DOCUMENTS + " GROUP BY d.id ORDER BY d.source").fetchall()
        documents = [Document.from_row(row) for row in rows]
        if source_glob:
            documents = [doc for doc in documents if fnmatchcase(doc.source, source_glob)]
        return documents[:limit] if limit is not None else documents

    def get_chunk(self, chunk_id: str) -> Chunk:
        row = self.conn.execute("SELECT * FROM chunks WHERE id = ?", (chunk_id,)).fetchone()
        if row is None:
            raise RecordNotFoundError(f"no chunk {chunk_id!r}; chunk ids look like doc-…:3")
        return Chunk.from_row(row)

    def chunks_of(self, document_id: str) -> list[Chunk]:
        rows = self.conn.execute(
            "SELECT * FROM chunks WHERE document_id = ? ORDER BY sequence", (document_id,)
        ).fetchall()
        return [Chunk.from_row(row) for row in rows]

    def missing_embeddings(self, hashes: Sequence[str], paths: Sequence[str | None] | None = None) -> set[str]:
        """Which of these text hashes have no vector yet for the vault's model.

        With ``paths`` (the heading path of each hash's chunk), a vector embedded with another heading
        (or none) counts as missing too: the chunk's own heading is part of what is embedded
        (:func:`.chunker.embedded_heading`; a vector recorded with a whole path, as before issue 20's
        measurements, is made again the first time its file is imported).
        """
        known: set[str] = set()
        wanted = (
            {key: embedded_heading(path) for key, path in zip(hashes, paths, strict=True)}
            if paths is not None
            else None
        )
        for start in range(0, len(hashes), 500):
            part = list(hashes[start : start + 500])
            marks = ",".join("?" * len(part))
            rows = self.conn.execute(
                f"SELECT content_sha256, heading_path FROM embeddings WHERE model = ? AND content_sha256 IN ({marks})",  # noqa: S608
                [self._model_name, *part],
            )
            known.update(row[0] for row in rows if wanted is None or wanted[row[0]] == row[1])
        return set(hashes) - known

    # -- writing --------------------------------------------------------------------------------

    def write_documents(self, documents: Sequence[PreparedDocument], vectors: dict[str, np.ndarray]) -> list[str]:
        """Insert or replace documents (by source) with their chunks and new vectors, atomically."""
        written: list[str] = []
        replaced: set[str] = set()  # text hashes of chunks this write removes
        stamp = now()
        with self.transaction() as conn:
            paths: dict[str, str | None] = {}  # the heading each new vector was embedded with
            for document in documents:
                for chunk in document.chunks:
                    paths.setdefault(chunk.sha256, embedded_heading(chunk.heading_path))
            for vector_hash, vector in vectors.items():
                conn.execute(  # replaces a vector embedded under another heading path
                    "INSERT OR REPLACE INTO embeddings"
                    " (model, content_sha256, dimensions, vector, created_at, heading_path) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        self._model_name,
                        vector_hash,
                        int(vector.shape[0]),
                        to_blob(vector),
                        stamp,
                        paths.get(vector_hash),
                    ),
                )
            for doc in documents:
                existing = conn.execute("SELECT id FROM documents WHERE source = ?", (doc.source,)).fetchone()
                doc_id = existing["id"] if existing else new_id("doc")
                if existing:
                    replaced.update(
                        row[0] for row in conn.execute("SELECT sha256 FROM chunks WHERE document_id = ?", (doc_id,))
                    )
                    conn.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,))
                    conn.execute("DELETE FROM document_parts WHERE document_id = ?", (doc_id,))
                values = (
                    doc.title,
                    doc.source,
                    doc.media_type,
                    doc.source_sha256,
                    sha256_text(doc.text),
                    doc.text,
                    doc.size_bytes,
                    doc.source_modified_at,
                    stamp,
                )
                if existing:
                    conn.execute(
                        "UPDATE documents SET title = ?, source = ?, media_type = ?, source_sha256 = ?,"
                        " text_sha256 = ?, text = ?, size_bytes = ?, source_modified_at = ?, updated_at = ?"
                        " WHERE id = ?",
                        (*values, doc_id),
                    )
                    conn.execute("DELETE FROM conversations WHERE document_id = ?", (doc_id,))
                else:
                    conn.execute(
                        "INSERT INTO documents (title, source, media_type, source_sha256, text_sha256, text,"
                        " size_bytes, source_modified_at, updated_at, id, created_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (*values, doc_id, stamp),
                    )
                for conversation in doc.conversations:
                    self.add_conversation(conversation, source=doc.source, document_id=doc_id, conn=conn)
                conn.executemany(
                    "INSERT INTO chunks (id, document_id, sequence, start_byte, end_byte, heading, text, sha256,"
                    " heading_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            f"{doc_id}:{c.sequence}",
                            doc_id,
                            c.sequence,
                            c.start_byte,
                            c.end_byte,
                            c.heading,
                            c.text,
                            c.sha256,
                            c.heading_path,
                        )
                        for c in doc.chunks
                    ],
                )
                written.append(doc_id)
            self._drop_unused_embeddings(replaced)
            self._bump()
        return written

    def _drop_unused_embeddings(self, candidates: set[str]) -> int:
        """Remove the vectors of these text hashes that no live chunk uses any more.

        Called after a replace or a forget with the hashes of the removed chunks, so no vector of
        forgotten text stays behind, without scanning the whole table on every write.
        """
        dropped = 0
        hashes = sorted(candidates)
        for start in range(0, len(hashes), 500):
            part = hashes[start : start + 500]
            marks = ",".join("?" * len(part))
            sql = (
                f"DELETE FROM embeddings WHERE content_sha256 IN ({marks})"  # noqa: S608 - placeholders only
                f" AND content_sha256 NOT IN (SELECT sha256 FROM chunks WHERE sha256 IN ({marks}))"
            )
            dropped += self.conn.execute(sql, [*part, *part]).rowcount
        return dropped

    # -- forgetting -----------------------------------------------------------------------------

    def forget(self, record_id: str, reason: str) -> Tombstone:
        """Forget a document, conversation, fact or summary, with a reason kept in a tombstone.

        Removes the record and what it owns (a document's chunks and their vectors; a conversation's
        messages and summaries) — nothing else.  Facts citing a forgotten chunk stay, and the
        integrity check reports their citation as forgotten.
        """
        if not reason or not reason.strip():
            raise UserError(
                "forgetting needs a reason (e.g. 'contains personal data'); it is kept", parameters=["reason"]
            )
        with self.transaction() as conn:
            kind, detail = self._record_kind(record_id)  # inside the transaction: no race with another forget
            removed: set[str] = set()
            if kind == "document":
                removed.update(
                    row[0] for row in conn.execute("SELECT sha256 FROM chunks WHERE document_id = ?", (record_id,))
                )
                detail["chunks"] = conn.execute("DELETE FROM chunks WHERE document_id = ?", (record_id,)).rowcount
                # conversations imported from the document are its own: their messages go with them
                detail["conversations"] = conn.execute(
                    "DELETE FROM conversations WHERE document_id = ?", (record_id,)
                ).rowcount
                conn.execute("DELETE FROM documents WHERE id = ?", (record_id,))
            elif kind == "conversation":
                detail["messages"] = conn.execute(
                    "DELETE FROM messages WHERE conversation_id = ?", (record_id,)
                ).rowcount
                detail["summaries"] = conn.execute(
                    "DELETE FROM summaries WHERE conversation_id = ?", (record_id,)
                ).rowcount
                conn.execute("DELETE FROM conversations WHERE id = ?", (record_id,))
            else:
                conn.execute(f"DELETE FROM {_TABLES[kind]} WHERE id = ?", (record_id,))  # noqa: S608 - our names
            detail["embeddings"] = self._drop_unused_embeddings(removed)
            stamp = now()
            conn.execute(
                "INSERT OR REPLACE INTO tombstones (record_id, kind, reason, detail, forgotten_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (record_id, kind, reason.strip(), json.dumps(detail), stamp),
            )
            self._bump()
        if detail.get("chunks"):
            refresh_index(self.conn, self.workspace.database_path, self.model_name)
        return Tombstone(record_id=record_id, kind=kind, reason=reason.strip(), forgotten_at=stamp, detail=detail)

    def forgotten_sources(self) -> dict[str, Tombstone]:
        """Sources of forgotten documents that have not been imported again, by source."""
        live = {row[0] for row in self.conn.execute("SELECT source FROM documents")}
        return {
            str(tombstone.detail["source"]): tombstone
            for tombstone in self.tombstones()
            if tombstone.kind == "document" and tombstone.detail.get("source") not in live
        }

    def tombstones(self) -> list[Tombstone]:
        rows = self.conn.execute("SELECT * FROM tombstones ORDER BY forgotten_at").fetchall()
        return [
            Tombstone(row["record_id"], row["kind"], row["reason"], row["forgotten_at"], json.loads(row["detail"]))
            for row in rows
        ]

    def _record_kind(self, record_id: str) -> tuple[str, dict[str, Any]]:
        for kind, table in _TABLES.items():
            row = self.conn.execute(f"SELECT * FROM {table} WHERE id = ?", (record_id,)).fetchone()  # noqa: S608
            if row is not None:
                detail: dict[str, Any] = {"source": row["source"]} if kind == "document" else {}
                return kind, detail
        if self.conn.execute("SELECT 1 FROM tombstones WHERE record_id = ?", (record_id,)).fetchone():
            raise RecordNotFoundError(f"{record_id!r} was already forgotten")
        raise RecordNotFoundError(
            f"no document, conversation, fact or summary {record_id!r}; chunks are forgotten with their document"
        )

    # -- integrity and statistics ---------------------------------------------------------------

    def rebuild_index(self) -> None:
        """Rebuild the full-text index from the chunks (repairs an index that drifted from them)."""
        with self.transaction() as conn:
            conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('rebuild')")
            self._bump()

    def verify(self) -> IntegrityReport:
        """Re-hash everything and cross-check what points at what."""
        from .integrity import check_integrity

        return check_integrity(self)

    def stats(self) -> dict[str, Any]:

        def count(sql: str) -> int:
            return int(self.conn.execute(sql).fetchone()[0])

        return {
            "documents": count("SELECT count(*) FROM documents"),
            "chunks": count("SELECT count(*) FROM chunks"),
            "text_bytes": count("SELECT coalesce(sum(length(CAST(text AS BLOB))), 0) FROM documents")
            + count("SELECT coalesce(sum(length(bytes)), 0) FROM document_parts"),
            "embeddings": count("SELECT count(*) FROM embeddings"),
            "embedding_model": self._model_name,
            "conversations": count("SELECT count(*) FROM conversations"),
            "messages": count("SELECT count(*) FROM messages"),
            "facts": count("SELECT count(*) FROM facts"),
            "summaries": count("SELECT count(*) FROM summaries"),
            "tombstones": count("SELECT count(*) FROM tombstones"),
            "database_bytes": self.workspace.database_path.stat().st_size,
        }


_TABLES = {"document": "documents", "conversation": "conversations", "fact": "facts", "summary": "summaries"}
_DOCUMENTS = "SELECT d.*, count(c.rowid) AS chunk_count FROM documents d LEFT JOIN chunks c ON c.document_id = d.id"
