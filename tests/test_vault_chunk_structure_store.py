"""Heading paths in the vault: stored with each chunk, indexed as an FTS5 column, embedded before the text."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from arcticcodex.db import Migrations
from arcticcodex.db.schema import add_heading_paths, create_document_parts, create_vault_tables, vault_migrations
from arcticcodex.vault import Searcher, Vault, import_paths
from arcticcodex.workspace import Workspace
from embedders import RecordingBackend

GUIDE = """# Guide

Read this first.

## Installation

### Linux

Use the distribution's package manager to install the otter tool.

### macOS

Use the signed installer package from the releases page.

## Usage

Run the otter tool with a file name and it prints a summary.
"""


@pytest.fixture
def recorder() -> RecordingBackend:
    return RecordingBackend()


@pytest.fixture
def vault(workspace: Workspace, recorder: RecordingBackend) -> Iterator[Vault]:
    with Vault(workspace, embedder=recorder) as opened:
        yield opened


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def stored(vault: Vault) -> list[tuple[str, str | None, str | None]]:
    rows = vault.conn.execute("SELECT text, heading, heading_path FROM chunks ORDER BY sequence")
    return [(row[0], row[1], row[2]) for row in rows]


def test_paths_are_stored_headings_embedded_before_the_text_and_not_shown_in_it(
    vault: Vault, recorder: RecordingBackend
) -> None:
    import_paths(vault, [write(vault.workspace.root / "guide.md", GUIDE)])
    chunks = stored(vault)
    assert [(heading, path) for _, heading, path in chunks] == [
        ("Guide", "Guide"),
        ("Linux", "Guide › Installation › Linux"),
        ("macOS", "Guide › Installation › macOS"),
        ("Usage", "Guide › Usage"),
    ]
    assert (
        chunks[1][0]
        == "## Installation\n\n### Linux\n\nUse the distribution's package manager to install the otter tool."
    )
    [sent] = recorder.calls
    assert sent == [f"{heading}\n\n{text}" for text, heading, _ in chunks]  # the chunk's own heading, then it
    # what is shown and cited is the chunk's own text
    document = vault.find_document("guide.md")
    assert document is not None
    assert [chunk.text for chunk in vault.chunks_of(document.id)] == [text for text, _, _ in chunks]
    assert vault.verify().ok


def test_the_heading_path_is_its_own_fts5_column(vault: Vault) -> None:
    import_paths(vault, [write(vault.workspace.root / "guide.md", GUIDE)])
    rows = vault.conn.execute(
        "SELECT c.heading_path FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid"
        " WHERE chunks_fts MATCH 'heading_path : macos'"
    ).fetchall()
    assert [row[0] for row in rows] == ["Guide › Installation › macOS"]
    # "Guide" is in every chunk's path but in the text of none but the first: BM25 finds them all by it
    hits = Searcher(vault).search("guide", k=10, mode="bm25")
    assert len(hits) == 4


def test_a_renamed_heading_re_embeds_only_the_chunks_under_it(vault: Vault, recorder: RecordingBackend) -> None:
    path = write(vault.workspace.root / "guide.md", GUIDE)
    first = import_paths(vault, [path])
    assert first.embedded == 4
    write(path, GUIDE.replace("### macOS", "### Mac OS X"))
    changed = import_paths(vault, [path])
    assert changed.updated == ["guide.md"] and (changed.embedded, changed.reused) == (1, 3)
    assert recorder.calls[-1] == [
        "Mac OS X\n\n### Mac OS X\n\nUse the signed installer package from the releases page."
    ]
    # a renamed parent section: its chunks' own headings are what is embedded, so only the chunk whose
    # text holds the renamed heading line is embedded again; the whole new path is searchable at once
    write(path, GUIDE.replace("## Installation", "## Setup").replace("### macOS", "### Mac OS X"))
    again = import_paths(vault, [path])
    assert (again.embedded, again.reused) == (1, 3)
    assert [text.split("\n\n")[:2] for text in recorder.calls[-1]] == [["Linux", "## Setup"]]
    hits = Searcher(vault).search("setup", k=5, mode="bm25")
    assert {hit.text.split("\n\n")[-1][:22] for hit in hits} >= {"Use the signed install"}
    vectors = dict(vault.conn.execute("SELECT content_sha256, heading_path FROM embeddings").fetchall())
    assert sorted(p for p in vectors.values() if p) == ["Guide", "Linux", "Mac OS X", "Usage"]
    assert vault.verify().ok


def test_unchanged_text_under_an_unchanged_path_is_not_embedded_again(vault: Vault) -> None:
    path = write(vault.workspace.root / "guide.md", GUIDE)
    import_paths(vault, [path])
    write(path, GUIDE + "\n## Appendix\n\nA new section at the end.\n")
    changed = import_paths(vault, [path])
    assert (changed.embedded, changed.reused) == (1, 4)


def test_an_existing_database_migrates_its_chunks_into_the_new_index(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    conn = sqlite3.connect(database, isolation_level=None)
    Migrations("vault", [create_vault_tables, create_document_parts]).apply(conn)
    conn.execute(
        "INSERT INTO documents (id, title, source, media_type, source_sha256, text_sha256, text, size_bytes,"
        " created_at, updated_at) VALUES ('doc-1', 't', 'a.md', 'text/markdown', 'x', 'y', 'Kestrel leaks', 13,"
        " '2026', '2026')"
    )
    conn.execute(
        "INSERT INTO chunks (id, document_id, sequence, start_byte, end_byte, heading, text, sha256)"
        " VALUES ('doc-1:0', 'doc-1', 0, 0, 13, NULL, 'Kestrel leaks', 'h')"
    )
    assert [m.name for m in vault_migrations.pending(conn)] == [add_heading_paths.__name__, "create_term_postings"]
    vault_migrations.apply(conn)
    assert conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'kestrel'").fetchall() == [(1,)]
    assert conn.execute("SELECT heading_path FROM chunks").fetchall() == [(None,)]
    # the triggers index the new column, and a delete leaves nothing behind
    conn.execute("UPDATE chunks SET heading_path = 'Birds › Falcons'")
    assert conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'heading_path : falcons'").fetchall() == [
        (1,)
    ]
    conn.execute("DELETE FROM chunks")
    conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')")
    assert conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'kestrel OR falcons'").fetchone() == (
        0,
    )
    conn.close()


def test_a_corrupted_index_row_is_repaired_by_a_rebuild(vault: Vault) -> None:
    import_paths(vault, [write(vault.workspace.root / "guide.md", GUIDE)])
    # the index drifts from the chunks (as a crash outside a transaction or a hand edit could leave it)
    vault.conn.execute(
        "INSERT INTO chunks_fts (chunks_fts, rowid, text, heading_path) VALUES ('delete', 3, "
        "(SELECT text FROM chunks WHERE rowid = 3), (SELECT heading_path FROM chunks WHERE rowid = 3))"
    )
    with pytest.raises(sqlite3.DatabaseError):
        vault.conn.execute("INSERT INTO chunks_fts (chunks_fts, rank) VALUES ('integrity-check', 1)")
    vault.rebuild_index()
    vault.conn.execute("INSERT INTO chunks_fts (chunks_fts, rank) VALUES ('integrity-check', 1)")
    assert len(Searcher(vault).search("macos installer", k=5, mode="bm25")) >= 1


def test_a_streamed_large_file_stores_and_embeds_its_heading_paths(vault: Vault, recorder: RecordingBackend) -> None:
    """Files of STREAM_FROM_BYTES or more go through the streamed import: the same paths as a small file's."""
    from arcticcodex.vault.ingest import STREAM_FROM_BYTES

    def filler(n: int) -> str:  # a text of its own per section: one vector per text
        return f"Otters of part {n} keep their fur dry with oil and air. " * 40 + "\n\n"

    sections = "".join(
        f"## Part {n}\n\n### Notes {n}\n\n{filler(n)}" for n in range(STREAM_FROM_BYTES // len(filler(0)) + 1)
    )
    path = write(vault.workspace.root / "big.md", "# Field Guide\n\n" + sections)
    assert path.stat().st_size >= STREAM_FROM_BYTES
    import_paths(vault, [path], batch_chunks=64)
    chunks = stored(vault)
    assert all(heading_path for _, _, heading_path in chunks[1:])
    assert chunks[1][2] == "Field Guide › Part 0 › Notes 0"
    sent = [text for call in recorder.calls for text in call]
    by_text = {text: heading_path for text, _, heading_path in chunks}
    own_heading = {text: path.rsplit(" › ", 1)[-1] for text, path in by_text.items() if path}
    assert all(any(embedded == f"{own_heading[text]}\n\n{text}" for embedded in sent) for text in list(by_text)[1:4])
