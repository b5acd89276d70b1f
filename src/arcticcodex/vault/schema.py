"""The vault's tables, as numbered migrations applied whenever the workspace database is opened.

Ownership decides what forgetting removes: a document owns its chunks (and so their full-text index
rows and their links to embeddings); a conversation owns its messages and the summaries made of it.
Facts only *cite* a chunk (``source_chunk_id``), so forgetting a document leaves them in place with
a dangling citation the integrity check reports as forgotten, not broken.  Embeddings are a cache
keyed by (model, sha256 of the text), shared by identical texts; entries no live chunk uses are
dropped when something is forgotten, so no vector of forgotten text stays behind.

A document's text is in its row, except for a large file streamed in: its bytes are then in
``document_parts`` (migration 2), which the document owns too.

Chunk ids are scoped to their document (``<doc id>:<sequence>``).  The original used the text's hash
as the chunk id, so two documents with the same paragraph shared one chunk, and forgetting either
deleted the other's text.
"""

from __future__ import annotations

import sqlite3

from ..migrations import Migrations, run_script
from ..workspace import register_migrations

vault_migrations = register_migrations(Migrations("vault"))


@vault_migrations(1)
def create_vault_tables(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE documents (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            source TEXT NOT NULL,
            media_type TEXT NOT NULL,
            source_sha256 TEXT NOT NULL,   -- of the imported file's bytes: unchanged files are skipped
            text_sha256 TEXT NOT NULL,     -- of the stored text, which chunk offsets index
            text TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            source_modified_at TEXT,       -- the file's mtime (UTC ISO-8601): what date filters use
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX documents_source ON documents (source);

        CREATE TABLE chunks (
            rowid INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
            sequence INTEGER NOT NULL,
            start_byte INTEGER NOT NULL,
            end_byte INTEGER NOT NULL,
            heading TEXT,
            text TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            UNIQUE (document_id, sequence),
            CHECK (0 <= start_byte AND start_byte <= end_byte)
        );
        CREATE INDEX chunks_sha256 ON chunks (sha256);

        CREATE VIRTUAL TABLE chunks_fts USING fts5 (
            text, content='chunks', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts (rowid, text) VALUES (new.rowid, new.text);
        END;
        CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
        END;
        CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text ON chunks BEGIN
            INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
            INSERT INTO chunks_fts (rowid, text) VALUES (new.rowid, new.text);
        END;

        CREATE TABLE embeddings (
            model TEXT NOT NULL,
            content_sha256 TEXT NOT NULL,
            dimensions INTEGER NOT NULL,
            vector BLOB NOT NULL,          -- little-endian float32, L2-normalised
            created_at TEXT NOT NULL,
            PRIMARY KEY (model, content_sha256)
        );

        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            source TEXT,
            document_id TEXT REFERENCES documents (id) ON DELETE SET NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE messages (
            id TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            sequence INTEGER NOT NULL,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            citations TEXT NOT NULL DEFAULT '[]',   -- JSON list of chunk ids
            created_at TEXT NOT NULL,
            UNIQUE (conversation_id, sequence)
        );

        CREATE TABLE facts (
            id TEXT PRIMARY KEY,
            subject TEXT NOT NULL,
            predicate TEXT NOT NULL,
            object TEXT NOT NULL,
            confidence TEXT NOT NULL,               -- exact decimal, e.g. '0.75'
            source_chunk_id TEXT,
            conversation_id TEXT,
            status TEXT NOT NULL DEFAULT 'approved',
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE INDEX facts_source ON facts (source_chunk_id);
        CREATE INDEX facts_conversation ON facts (conversation_id);

        CREATE TABLE summaries (
            id TEXT PRIMARY KEY,
            text TEXT NOT NULL,
            conversation_id TEXT REFERENCES conversations (id) ON DELETE CASCADE,
            document_id TEXT REFERENCES documents (id) ON DELETE CASCADE,
            status TEXT NOT NULL DEFAULT 'approved',
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );

        CREATE TABLE tombstones (
            record_id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',      -- what the forgetting removed (counts, source)
            forgotten_at TEXT NOT NULL
        );

        -- bumped on every write that changes chunks or embeddings, so search caches know when to reload
        CREATE TABLE vault_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO vault_state (key, value) VALUES ('generation', 0);
        """,
    )


@vault_migrations(2)
def create_document_parts(conn: sqlite3.Connection) -> None:
    """A document too large to hold in one row keeps its text here, as UTF-8 bytes in ordered parts.

    Its ``documents.text`` is then the empty string.  Writing a 200 MB value into one row makes SQLite
    build the whole record in memory (twice, for a column that is not the row's last), so a large text
    file is streamed in (vault/streamed.py) a part of 256 KiB at a time.  The parts go with their
    document when it is forgotten or replaced.
    """
    run_script(
        conn,
        """
        CREATE TABLE document_parts (
            document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
            part INTEGER NOT NULL,
            bytes BLOB NOT NULL,
            PRIMARY KEY (document_id, part)
        );
        """,
    )
