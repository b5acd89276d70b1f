"""The vault's integrity check: re-hash everything and cross-check every reference.

It reads the database as it is on disk, one document at a time, so it stays flat in memory however
large the vault is.  Checked:

* SQLite's own ``PRAGMA integrity_check`` and the full-text index's ``integrity-check``;
* every document's text against its recorded SHA-256;
* every chunk's text against its SHA-256, and against the bytes of its document at its offsets;
* every vector: size, dimensions and unit length; chunks without a vector for the vault's model;
* facts citing chunks that no longer exist (forgotten: a warning; never existed: an error).
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from .entities import IntegrityProblem, IntegrityReport, sha256_text

if TYPE_CHECKING:
    from .store import Vault


def check_integrity(vault: Vault) -> IntegrityReport:
    """Every check below, in order; each yields its problems and counts what it read in ``checked``."""
    checked = {"documents": 0, "chunks": 0, "embeddings": 0, "facts": 0}
    problems = [
        *_database(vault.conn),
        *_documents_and_chunks(vault, checked),
        *_vectors(vault.conn, checked),
        *_unembedded(vault),
        *_facts(vault.conn, checked),
    ]
    return IntegrityReport(checked=checked, problems=tuple(problems))


def _database(conn: sqlite3.Connection) -> Iterator[IntegrityProblem]:
    for (message,) in conn.execute("PRAGMA integrity_check"):
        if message != "ok":
            yield IntegrityProblem("database", "database", f"SQLite integrity_check: {message}")
    try:
        conn.execute("INSERT INTO chunks_fts (chunks_fts, rank) VALUES ('integrity-check', 1)")
    except sqlite3.DatabaseError as exc:
        yield IntegrityProblem(
            "chunks_fts", "database", f"full-text index out of step with chunks ({exc}); run `vault verify --repair`"
        )


def _documents_and_chunks(vault: Vault, checked: dict[str, int]) -> Iterator[IntegrityProblem]:
    for doc in vault.conn.execute("SELECT id, text, text_sha256 FROM documents ORDER BY id"):
        checked["documents"] += 1
        # a large file streamed in keeps its text in document_parts, and an empty string here
        encoded = doc["text"].encode("utf-8") or vault.document_bytes(doc["id"])
        if hashlib.sha256(encoded).hexdigest() != doc["text_sha256"]:
            yield IntegrityProblem(doc["id"], "document", "text does not match its recorded SHA-256")
        yield from _chunks(vault.conn, doc["id"], encoded, checked)


def _chunks(
    conn: sqlite3.Connection, document_id: str, encoded: bytes, checked: dict[str, int]
) -> Iterator[IntegrityProblem]:
    expected_sequence = 0
    for chunk in conn.execute(
        "SELECT id, sequence, start_byte, end_byte, text, sha256 FROM chunks WHERE document_id = ? ORDER BY sequence",
        (document_id,),
    ):
        checked["chunks"] += 1
        if sha256_text(chunk["text"]) != chunk["sha256"]:
            yield IntegrityProblem(chunk["id"], "chunk", "text does not match its recorded SHA-256")
        if encoded[chunk["start_byte"] : chunk["end_byte"]] != chunk["text"].encode("utf-8"):
            where = f"bytes {chunk['start_byte']}–{chunk['end_byte']} of its document differ from its text"
            yield IntegrityProblem(chunk["id"], "chunk", where)
        if chunk["sequence"] != expected_sequence:
            yield IntegrityProblem(chunk["id"], "chunk", f"sequence {chunk['sequence']} out of order")
        expected_sequence = chunk["sequence"] + 1


def _vectors(conn: sqlite3.Connection, checked: dict[str, int]) -> Iterator[IntegrityProblem]:
    for row in conn.execute("SELECT model, content_sha256, dimensions, vector FROM embeddings"):
        checked["embeddings"] += 1
        label = f"{row['model']}/{row['content_sha256'][:12]}"
        if len(row["vector"]) != 4 * row["dimensions"]:
            yield IntegrityProblem(label, "embedding", "vector size does not match its dimensions")
            continue
        norm = float(np.linalg.norm(np.frombuffer(row["vector"], dtype="<f4")))
        if not math.isfinite(norm) or abs(norm - 1.0) > 1e-3:
            yield IntegrityProblem(label, "embedding", f"vector is not unit length (norm {norm:.4f})")


def _unembedded(vault: Vault) -> Iterator[IntegrityProblem]:
    (unembedded,) = vault.conn.execute(
        "SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.model = ?"
        " AND e.content_sha256 = c.sha256)",
        (vault.model_name,),
    ).fetchone()
    if unembedded:
        message = f"{unembedded} chunk(s) have no vector for this model (vector search skips them); re-import to embed"
        yield IntegrityProblem(vault.model_name, "embedding", message, severity="warning")


def _facts(conn: sqlite3.Connection, checked: dict[str, int]) -> Iterator[IntegrityProblem]:
    """Facts citing a chunk that is gone: a warning when its document was forgotten, else an error."""
    forgotten_documents = {row[0] for row in conn.execute("SELECT record_id FROM tombstones WHERE kind = 'document'")}
    for fact in conn.execute(
        "SELECT f.id, f.source_chunk_id FROM facts f WHERE f.source_chunk_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = f.source_chunk_id)"
    ):
        cited = fact["source_chunk_id"]
        if cited.rsplit(":", 1)[0] in forgotten_documents:
            yield IntegrityProblem(
                fact["id"], "fact", f"cites chunk {cited}, whose document was forgotten", severity="warning"
            )
        else:
            yield IntegrityProblem(fact["id"], "fact", f"cites chunk {cited}, which does not exist")
    checked["facts"] = conn.execute("SELECT count(*) FROM facts").fetchone()[0]
