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
from typing import TYPE_CHECKING

import numpy as np

from .records import IntegrityProblem, IntegrityReport, sha256_text

if TYPE_CHECKING:
    from .store import Vault


def check_integrity(vault: Vault) -> IntegrityReport:
    conn = vault.conn
    problems: list[IntegrityProblem] = []
    checked = {"documents": 0, "chunks": 0, "embeddings": 0, "facts": 0}

    for (message,) in conn.execute("PRAGMA integrity_check"):
        if message != "ok":
            problems.append(IntegrityProblem("database", "database", f"SQLite integrity_check: {message}"))
    try:
        conn.execute("INSERT INTO chunks_fts (chunks_fts, rank) VALUES ('integrity-check', 1)")
    except sqlite3.DatabaseError as exc:
        problems.append(
            IntegrityProblem(
                "chunks_fts",
                "database",
                f"full-text index out of step with chunks ({exc}); run `vault verify --repair`",
            )
        )

    for doc in conn.execute("SELECT id, text, text_sha256 FROM documents ORDER BY id"):
        checked["documents"] += 1
        # a large file streamed in keeps its text in document_parts, and an empty string here
        encoded = doc["text"].encode("utf-8") or vault.document_bytes(doc["id"])
        if hashlib.sha256(encoded).hexdigest() != doc["text_sha256"]:
            problems.append(IntegrityProblem(doc["id"], "document", "text does not match its recorded SHA-256"))
        expected_sequence = 0
        for chunk in conn.execute(
            "SELECT id, sequence, start_byte, end_byte, text, sha256 FROM chunks"
            " WHERE document_id = ? ORDER BY sequence",
            (doc["id"],),
        ):
            checked["chunks"] += 1
            chunk_bytes = chunk["text"].encode("utf-8")
            if sha256_text(chunk["text"]) != chunk["sha256"]:
                problems.append(IntegrityProblem(chunk["id"], "chunk", "text does not match its recorded SHA-256"))
            if encoded[chunk["start_byte"] : chunk["end_byte"]] != chunk_bytes:
                problems.append(
                    IntegrityProblem(
                        chunk["id"],
                        "chunk",
                        f"bytes {chunk['start_byte']}–{chunk['end_byte']} of its document differ from its text",
                    )
                )
            if chunk["sequence"] != expected_sequence:
                problems.append(IntegrityProblem(chunk["id"], "chunk", f"sequence {chunk['sequence']} out of order"))
            expected_sequence = chunk["sequence"] + 1

    for row in conn.execute("SELECT model, content_sha256, dimensions, vector FROM embeddings"):
        checked["embeddings"] += 1
        label = f"{row['model']}/{row['content_sha256'][:12]}"
        if len(row["vector"]) != 4 * row["dimensions"]:
            problems.append(IntegrityProblem(label, "embedding", "vector size does not match its dimensions"))
            continue
        norm = float(np.linalg.norm(np.frombuffer(row["vector"], dtype="<f4")))
        if not math.isfinite(norm) or abs(norm - 1.0) > 1e-3:
            problems.append(IntegrityProblem(label, "embedding", f"vector is not unit length (norm {norm:.4f})"))

    unembedded = conn.execute(
        "SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.model = ?"
        " AND e.content_sha256 = c.sha256)",
        (vault.model_name,),
    ).fetchone()[0]
    if unembedded:
        problems.append(
            IntegrityProblem(
                vault.model_name,
                "embedding",
                f"{unembedded} chunk(s) have no vector for this model (vector search skips them); re-import to embed",
                severity="warning",
            )
        )

    forgotten_documents = {row[0] for row in conn.execute("SELECT record_id FROM tombstones WHERE kind = 'document'")}
    for fact in conn.execute(
        "SELECT f.id, f.source_chunk_id FROM facts f WHERE f.source_chunk_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = f.source_chunk_id)"
    ):
        document_id = fact["source_chunk_id"].rsplit(":", 1)[0]
        if document_id in forgotten_documents:
            message = f"cites chunk {fact['source_chunk_id']}, whose document was forgotten"
            problems.append(IntegrityProblem(fact["id"], "fact", message, severity="warning"))
        else:
            problems.append(
                IntegrityProblem(fact["id"], "fact", f"cites chunk {fact['source_chunk_id']}, which does not exist")
            )
    checked["facts"] = conn.execute("SELECT count(*) FROM facts").fetchone()[0]
    return IntegrityReport(checked=checked, problems=tuple(problems))
