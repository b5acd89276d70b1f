"""Every table of the workspace database, as the migration sets that make them, in the order applied.

Why one module: the sets are plain values that :func:`~arcticcodex.db.connection.connect` is given
explicitly (:data:`WORKSPACE_MIGRATIONS`), so every workspace gets every table whichever parts of
ArcticCodex a process imported, in one deterministic order.  They live here, below the packages that
use the tables, because importing those packages is costly (``arcticcodex.gpu`` and
``arcticcodex.distill`` load the HTTP and teacher stacks, ``arcticcodex.vault`` NumPy) and the
persistence layer must not import upwards; opening a workspace imports only this.  Each section
names the module that reads and writes its tables, and that module's docstring says why they are so.

A set's name, its steps' numbers and the functions' names are recorded in every database
(``schema_migrations``): never rename or renumber a step; add a new one at the end of its set.

Ownership in the vault decides what forgetting removes: a document owns its chunks (and so their
full-text index rows and their links to embeddings); a conversation owns its messages and the
summaries made of it.  Facts only *cite* a chunk (``source_chunk_id``), so forgetting a document
leaves them in place with a dangling citation the integrity check reports as forgotten, not broken.
Embeddings are a cache keyed by (model, sha256 of the text), shared by identical texts; entries no
live chunk uses are dropped when something is forgotten, so no vector of forgotten text stays behind.
A document's text is in its row, except for a large file streamed in: its bytes are then in
``document_parts`` (vault step 2), which the document owns too.  Chunk ids are scoped to their
document (``<doc id>:<sequence>``), so two documents with the same paragraph never share a chunk.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime

from .migrations import Migrations, run_script

__all__ = [
    "WORKSPACE_MIGRATIONS",
    "batch_migrations",
    "core_migrations",
    "distill_migrations",
    "eval_migrations",
    "gpu_migrations",
    "loop_migrations",
    "pair_review_migrations",
    "teacher_migrations",
    "training_migrations",
    "vault_migrations",
]

# --- the workspace itself (arcticcodex.workspace) -------------------------------------------------


def create_workspace_meta(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE workspace_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
    )
    now = datetime.now(UTC).isoformat()
    conn.executemany(
        "INSERT INTO workspace_meta (key, value) VALUES (?, ?)",
        [("workspace_id", str(uuid.uuid4())), ("created_at", now)],
    )


core_migrations = Migrations("workspace", [create_workspace_meta])

# --- the vault: documents, chunks, embeddings, conversations, facts (arcticcodex.vault.store) -----


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


def add_heading_paths(conn: sqlite3.Connection) -> None:
    """Each chunk keeps its heading path ("Guide › Installation › Linux"), searchable as its own FTS5 column.

    ``chunks.heading_path`` is NULL for chunks written before this step (and for text under no heading)
    until their document is imported again.  ``embeddings.heading_path`` records the path a vector was
    embedded with (the path is prepended to the text embedded): a vector made with another path, or
    none, is not reused, so a renamed heading re-embeds exactly the chunks under it.  The FTS5 table is
    an external-content index of ``chunks``, so it is recreated with the new column and rebuilt from the
    chunks: existing databases are searchable as before straight after the migration.
    """
    run_script(
        conn,
        """
        ALTER TABLE chunks ADD COLUMN heading_path TEXT;
        ALTER TABLE embeddings ADD COLUMN heading_path TEXT;

        DROP TRIGGER chunks_fts_insert;
        DROP TRIGGER chunks_fts_delete;
        DROP TRIGGER chunks_fts_update;
        DROP TABLE chunks_fts;
        CREATE VIRTUAL TABLE chunks_fts USING fts5 (
            text, heading_path,
            content='chunks', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts (rowid, text, heading_path) VALUES (new.rowid, new.text, new.heading_path);
        END;
        CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts (chunks_fts, rowid, text, heading_path)
                VALUES ('delete', old.rowid, old.text, old.heading_path);
        END;
        CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text, heading_path ON chunks BEGIN
            INSERT INTO chunks_fts (chunks_fts, rowid, text, heading_path)
                VALUES ('delete', old.rowid, old.text, old.heading_path);
            INSERT INTO chunks_fts (rowid, text, heading_path) VALUES (new.rowid, new.text, new.heading_path);
        END;
        INSERT INTO chunks_fts (chunks_fts) VALUES ('rebuild');
        """,
    )


def create_term_postings(conn: sqlite3.Connection) -> None:
    """Each common term's chunks with their BM25 impacts, so a search need not have FTS5 score them all.

    :mod:`arcticcodex.vault.term_postings` fills a row the first time a term matching many chunks is
    searched and extends it with chunks appended later (rowids above ``max_rowid``).  The rows are a
    cache, kept true by triggers whoever writes: a deleted chunk's rowid is recorded in
    ``term_postings_deleted`` (searches skip it); a rowid used again lowers ``max_rowid`` below it, so
    what a list held for the old chunk is ignored and the new chunk is read from FTS5; a chunk whose
    text changes in place empties both tables.
    """
    run_script(
        conn,
        """
        CREATE TABLE term_postings (
            term TEXT PRIMARY KEY,
            chunks INTEGER NOT NULL,
            max_rowid INTEGER NOT NULL,
            rowids BLOB NOT NULL,
            impacts BLOB NOT NULL
        );
        CREATE TABLE term_postings_deleted (rowid INTEGER PRIMARY KEY);
        CREATE TRIGGER term_postings_delete AFTER DELETE ON chunks BEGIN
            INSERT OR IGNORE INTO term_postings_deleted (rowid) VALUES (old.rowid);
        END;
        CREATE TRIGGER term_postings_reuse AFTER INSERT ON chunks
        WHEN EXISTS (SELECT 1 FROM term_postings_deleted WHERE rowid = new.rowid) BEGIN
            UPDATE term_postings SET max_rowid = new.rowid - 1 WHERE max_rowid >= new.rowid;
            DELETE FROM term_postings_deleted WHERE rowid = new.rowid;
        END;
        CREATE TRIGGER term_postings_update AFTER UPDATE OF text, heading_path ON chunks BEGIN
            DELETE FROM term_postings;
            DELETE FROM term_postings_deleted;
        END;
        """,
    )


vault_migrations = Migrations(
    "vault", [create_vault_tables, create_document_parts, add_heading_paths, create_term_postings]
)

# --- the teachers' request cache (arcticcodex.teachers.cache) -------------------------------------


def create_teacher_cache(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE teacher_cache (
            request_sha256 TEXT PRIMARY KEY,
            teacher TEXT NOT NULL,
            model TEXT NOT NULL,
            content TEXT NOT NULL,
            usage TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        """,
    )


teacher_migrations = Migrations("teachers", [create_teacher_cache])

# --- rented GPU instances (arcticcodex.gpu.state) -------------------------------------------------


def create_gpu_instances(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE gpu_instances (
            label TEXT PRIMARY KEY,              -- the Vast label: arcticcodex-<workspace>-<launch>
            instance_id INTEGER UNIQUE,          -- NULL until Vast accepted the rental
            offer_id INTEGER NOT NULL,
            machine_id INTEGER NOT NULL,
            gpu_name TEXT NOT NULL,
            num_gpus INTEGER NOT NULL,
            model TEXT NOT NULL,
            served_model TEXT NOT NULL,
            status TEXT NOT NULL,                -- launching | booting | ready | stopped | destroyed
            reason TEXT NOT NULL DEFAULT '',     -- why it was stopped or destroyed
            owner_pid INTEGER,                   -- the process launching it, until it is ready
            run TEXT NOT NULL,                   -- budget group
            teacher TEXT,                        -- the teacher it serves, when registered
            running_rate REAL NOT NULL,          -- $/h while running (storage included)
            storage_rate REAL NOT NULL,          -- $/h while stopped
            rate REAL NOT NULL,                  -- $/h billed now
            rate_since REAL NOT NULL,            -- epoch seconds
            accrued_usd REAL NOT NULL DEFAULT 0, -- billed before rate_since
            created_at REAL NOT NULL,
            ready_at REAL,
            destroyed_at REAL,
            ttl_s REAL,                          -- destroy this long after launch
            idle_s REAL,                         -- stop after this long without requests
            last_used_at REAL NOT NULL,
            requests_seen REAL,                  -- vLLM's request counter when last looked at
            local_port INTEGER,
            tunnel_pid INTEGER
        );
        CREATE INDEX gpu_instances_status ON gpu_instances (status);
        """,
    )


gpu_migrations = Migrations("gpu", [create_gpu_instances])

# --- distillation runs and their tasks (arcticcodex.distill.journal) ------------------------------


def create_run_tables(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE distill_runs (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            status TEXT NOT NULL,
            settings TEXT NOT NULL,
            out TEXT NOT NULL,
            task_count INTEGER NOT NULL,
            duplicate_prompts INTEGER NOT NULL DEFAULT 0,
            spent_usd REAL NOT NULL DEFAULT 0,
            note TEXT,
            written TEXT
        );
        CREATE TABLE distill_tasks (
            run_id TEXT NOT NULL REFERENCES distill_runs(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            key TEXT NOT NULL,
            task TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            pair TEXT,
            reason TEXT,
            retryable INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            finished_at TEXT,
            PRIMARY KEY (run_id, position),
            UNIQUE (run_id, key)
        );
        CREATE INDEX distill_tasks_status ON distill_tasks (run_id, status, position);
        """,
    )


def create_distill_reviews(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE distill_reviews (
            run_id TEXT NOT NULL REFERENCES distill_runs (id),
            position INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('approved', 'rejected')),
            reason TEXT NOT NULL DEFAULT '',
            decided_by TEXT NOT NULL,
            decided_at TEXT NOT NULL,
            PRIMARY KEY (run_id, position)
        );
        """,
    )


def add_review_columns(conn: sqlite3.Connection) -> None:
    """What the review queue filters and pages pairs by, beside each pair and in one covering index.

    A pair's JSON is kilobytes (its revisions and evidence); reading ``quality`` out of it for every
    pending pair made the Studio's review page take half a second at 100k pairs, and a column added
    after the pair lies beyond its overflow pages.  So the quality, the source kind and the teachers
    of the final revision (a JSON array) are kept in the index the queue is read through.  Filled
    from the pairs already recorded (see ``distill.journal.review_columns`` for the same reading).
    """
    run_script(
        conn,
        """
        ALTER TABLE distill_tasks ADD COLUMN quality REAL;
        ALTER TABLE distill_tasks ADD COLUMN source_kind TEXT;
        ALTER TABLE distill_tasks ADD COLUMN judged_by TEXT;
        UPDATE distill_tasks SET
            quality = CAST(json_extract(pair, '$.quality') AS REAL),
            source_kind = json_extract(pair, '$.source.kind'),
            judged_by = coalesce(
                json_extract(pair, '$.revisions[#-1].teachers'), json_extract(pair, '$.teachers'), '[]'
            )
        WHERE pair IS NOT NULL AND json_valid(pair);
        CREATE INDEX distill_tasks_review
            ON distill_tasks (run_id, status, position, quality, source_kind, judged_by);
        CREATE INDEX distill_tasks_finished ON distill_tasks (run_id, finished_at);
        """,
    )


distill_migrations = Migrations("distill", [create_run_tables, create_distill_reviews, add_review_columns])

# --- people's edits of a run's pairs (arcticcodex.distill.pair_review) ----------------------------


def create_pair_edits(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE distill_pair_edits (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES distill_runs (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            edited_by TEXT NOT NULL,
            edited_at TEXT NOT NULL,
            before TEXT NOT NULL,
            after TEXT NOT NULL
        );
        CREATE INDEX distill_pair_edits_pair ON distill_pair_edits (run_id, position, id);
        """,
    )


pair_review_migrations = Migrations("pair_review", [create_pair_edits])

# --- a run's batches at providers' Batch APIs (arcticcodex.teachers.batch_journal) ---------------


def create_teacher_batches(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE teacher_batches (
            run_id TEXT NOT NULL REFERENCES distill_runs (id) ON DELETE CASCADE,
            input_file_id TEXT NOT NULL,         -- the uploaded JSONL, written before the batch is created
            batch_id TEXT,                       -- NULL until the provider accepted the batch
            teacher TEXT NOT NULL,
            base_url TEXT NOT NULL,
            custom_ids TEXT NOT NULL,            -- JSON list: the request-cache keys of its lines
            estimated_usd REAL NOT NULL,         -- reserved against the budget until the results are in
            status TEXT NOT NULL,                -- uploaded | submitted | completed | failed
            failed_ids TEXT NOT NULL DEFAULT '[]',  -- lines the provider answered with an error
            created_at TEXT NOT NULL,
            finished_at TEXT,
            PRIMARY KEY (run_id, input_file_id)
        );
        """,
    )


batch_migrations = Migrations("batches", [create_teacher_batches])

# --- training runs and where their models are (arcticcodex.training.runs) ---------------------------


def create_training_runs(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE training_runs (
            id TEXT PRIMARY KEY,
            out TEXT NOT NULL UNIQUE,            -- the run's folder (resolved): a resumed run is found by it
            dataset_path TEXT NOT NULL,
            dataset_merkle_root TEXT,
            base_model TEXT NOT NULL,
            method TEXT NOT NULL,
            settings TEXT NOT NULL,              -- JSON: TrainSettings.to_json()
            status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed')),
            started_at TEXT NOT NULL,
            finished_at TEXT,
            metrics TEXT,                        -- JSON, once complete
            receipt_sha256 TEXT,                 -- SHA-256 of receipt.json as written, once complete
            error TEXT NOT NULL DEFAULT ''       -- why it failed
        );
        CREATE INDEX training_runs_started ON training_runs (started_at);
        """,
    )


training_migrations = Migrations("training", [create_training_runs])


# --- a student's evaluations on held-out questions (arcticcodex.evaluation.store) ---------------------


def create_evals(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE evals (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            student TEXT NOT NULL,               -- a teacher's name, or a model folder (resolved)
            baseline TEXT,                       -- the same, for the model it was compared with
            receipt_sha256 TEXT,                 -- SHA-256 of the student's receipt.json, when it has one
            baseline_receipt_sha256 TEXT,
            dataset_path TEXT NOT NULL,
            dataset_merkle_root TEXT,
            judges TEXT NOT NULL,                -- JSON list of the judges' names
            questions INTEGER NOT NULL,
            summary TEXT NOT NULL,               -- JSON: each model's aggregated metrics with their intervals
            report TEXT NOT NULL                 -- JSON: the whole report, per question included
        );
        CREATE INDEX evals_receipt ON evals (receipt_sha256, created_at);
        CREATE INDEX evals_created ON evals (created_at);
        """,
    )


eval_migrations = Migrations("evals", [create_evals])


# --- train → distill → train loops, a step at a time (arcticcodex.loop.journal) ---------------------


def create_loops(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE loops (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            out TEXT NOT NULL UNIQUE,            -- the loop's folder (resolved): datasets and models per iteration
            settings TEXT NOT NULL,              -- JSON: LoopSettings.to_json(), fixed when the loop starts
            status TEXT NOT NULL CHECK (status IN ('running', 'stopped', 'stopped_early', 'complete', 'failed')),
            note TEXT NOT NULL DEFAULT ''        -- why it stopped, in words
        );
        CREATE TABLE loop_steps (
            loop_id TEXT NOT NULL REFERENCES loops(id) ON DELETE CASCADE,
            iteration INTEGER NOT NULL,          -- 0: the base model's evaluation; 1..N the iterations
            stage TEXT NOT NULL CHECK (stage IN ('distill', 'train', 'eval')),
            status TEXT NOT NULL CHECK (status IN ('running', 'complete')),
            ref TEXT,                            -- the distill run, training folder or evaluation it made
            result TEXT,                         -- JSON: what the step measured, once complete
            started_at TEXT NOT NULL,
            finished_at TEXT,
            PRIMARY KEY (loop_id, iteration, stage)
        );
        CREATE INDEX loops_created ON loops (created_at);
        """,
    )


loop_migrations = Migrations("loops", [create_loops])

WORKSPACE_MIGRATIONS: tuple[Migrations, ...] = (
    core_migrations,
    vault_migrations,
    teacher_migrations,
    gpu_migrations,
    distill_migrations,
    pair_review_migrations,
    batch_migrations,
    training_migrations,
    eval_migrations,
    loop_migrations,
)
"""What every workspace database is migrated with, in this order (a set may refer to an earlier one's tables)."""
