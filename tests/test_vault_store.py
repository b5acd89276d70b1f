"""The vault on a real SQLite file: import, offsets, ownership, forgetting, integrity, crash safety."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from arcticcodex.errors import ConfigError, RecordNotFoundError, UserError
from arcticcodex.vault import HashingBackend, Searcher, Vault, import_paths
from arcticcodex.workspace import Workspace

PARAGRAPHS = [
    "Otters are semiaquatic mammals. They eat mostly fish, and sometimes crabs and frogs.",
    "Café owners in Zürich serve Rösti at breakfast — naïve visitors expect croissants. ☕",
    "The Kestrel scheduler was retired in 2019 after repeated memory leaks in its worker pool.",
]


@pytest.fixture
def vault(workspace: Workspace) -> Vault:
    with Vault(workspace, embedder=HashingBackend(64)) as opened:
        yield opened  # type: ignore[misc]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def test_chunk_offsets_map_back_to_the_exact_source_bytes(vault: Vault, tmp_path: Path) -> None:
    body = "# Notes\n\n" + "\n\n".join(PARAGRAPHS * 12) + "\n"
    source = write(vault.workspace.root / "docs" / "notes.md", body)
    report = import_paths(vault, [source])
    assert len(report.added) == 1
    document = vault.find_document(report.added[0])
    assert document is not None and document.title == "Notes"
    raw = source.read_bytes()
    chunks = vault.chunks_of(document.id)
    assert len(chunks) > 3
    for chunk in chunks:
        assert raw[chunk.start_byte : chunk.end_byte] == chunk.text.encode("utf-8")
        assert chunk.id == f"{document.id}:{chunk.sequence}"
    assert vault.verify().ok


def test_identical_texts_keep_separate_chunks_and_forgetting_one_spares_the_other(vault: Vault, tmp_path: Path) -> None:
    text = "\n\n".join(PARAGRAPHS)
    first, second = write(vault.workspace.root / "a.txt", text), write(vault.workspace.root / "b.txt", text)
    import_paths(vault, [first, second])
    doc_a, doc_b = (vault.find_document(name) for name in ("a.txt", "b.txt"))
    assert doc_a and doc_b and doc_a.id != doc_b.id
    chunks_a, chunks_b = vault.chunks_of(doc_a.id), vault.chunks_of(doc_b.id)
    assert [c.text for c in chunks_a] == [c.text for c in chunks_b]
    assert {c.id for c in chunks_a}.isdisjoint({c.id for c in chunks_b})
    assert vault.stats()["embeddings"] == len({c.sha256 for c in chunks_a})  # identical text embedded once

    tombstone = vault.forget(doc_a.id, "duplicate upload")
    assert tombstone.detail["chunks"] == len(chunks_a) and tombstone.detail["embeddings"] == 0
    assert [c.text for c in vault.chunks_of(doc_b.id)] == [c.text for c in chunks_b]
    hits = Searcher(vault).search("Kestrel scheduler memory leaks", k=5)
    assert hits and {hit.doc_id for hit in hits} == {doc_b.id}
    with pytest.raises(RecordNotFoundError):
        vault.get_document(doc_a.id)
    assert vault.verify().ok


def test_forgetting_the_last_copy_removes_its_vectors_and_index_rows(vault: Vault, tmp_path: Path) -> None:
    import_paths(vault, [write(vault.workspace.root / "only.txt", PARAGRAPHS[2])])
    document = vault.find_document("only.txt")
    assert document is not None
    vault.forget(document.id, "retention policy")
    stats = vault.stats()
    assert (stats["chunks"], stats["embeddings"], stats["tombstones"]) == (0, 0, 1)
    assert Searcher(vault).search("Kestrel", k=3) == []
    assert vault.tombstones()[0].reason == "retention policy"
    with pytest.raises(RecordNotFoundError, match="already forgotten"):
        vault.forget(document.id, "again")
    with pytest.raises(UserError, match="reason"):
        vault.forget("doc-x", " ")


def test_integrity_check_catches_an_edited_chunk(vault: Vault, tmp_path: Path) -> None:
    import_paths(vault, [write(vault.workspace.root / "n.txt", "\n\n".join(PARAGRAPHS))])
    vault.conn.execute("UPDATE chunks SET text = replace(text, 'fish', 'fisk') WHERE sequence = 0")
    report = vault.verify()
    assert not report.ok
    assert any(problem.kind == "chunk" and "SHA-256" in problem.problem for problem in report.problems)


def test_integrity_check_catches_a_flipped_byte_in_the_database_file(workspace: Workspace, tmp_path: Path) -> None:
    marker = "zebra-crossing-marker-7731 " * 3
    with Vault(workspace, embedder=HashingBackend(64)) as vault:
        import_paths(vault, [write(workspace.root / "m.txt", marker)])
        vault.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    database = workspace.database_path.read_bytes()
    position = database.find(b"zebra-crossing-marker-7731")
    assert position > 0
    flipped = bytearray(database)
    flipped[position] ^= 0x01  # 'z' → '{'
    workspace.database_path.write_bytes(bytes(flipped))
    with Vault(workspace, embedder=HashingBackend(64)) as vault:
        report = vault.verify()
    assert not report.ok
    assert any("SHA-256" in problem.problem or "differ" in problem.problem for problem in report.problems)


def test_crash_between_batches_leaves_a_consistent_vault_and_the_rerun_completes(vault: Vault, tmp_path: Path) -> None:
    folder = vault.workspace.root / "corpus"
    for index in range(12):
        write(folder / f"doc{index:02}.txt", f"Document {index}. " + PARAGRAPHS[index % 3])

    class CrashError(RuntimeError):
        pass

    def crash_after_first_batch(report: object) -> None:
        raise CrashError("killed between batches")

    with pytest.raises(CrashError):
        import_paths(vault, [folder], batch_chunks=4, after_batch=crash_after_first_batch)
    committed = vault.list_documents()
    assert 0 < len(committed) < 12
    for document in committed:  # each committed document is whole
        assert len(vault.chunks_of(document.id)) == document.chunk_count >= 1
    assert vault.verify().ok

    report = import_paths(vault, [folder], batch_chunks=4)
    assert len(report.unchanged) == len(committed)
    assert len(report.added) == 12 - len(committed)
    assert len(vault.list_documents()) == 12
    assert vault.verify().ok


def test_reimport_is_a_no_op_and_a_changed_file_replaces_its_chunks(vault: Vault, tmp_path: Path) -> None:
    numbered = [f"{n}. {paragraph}" for n, paragraph in enumerate(PARAGRAPHS * 10)]
    path = write(vault.workspace.root / "n.md", "\n\n".join(numbered))
    first = import_paths(vault, [path])
    assert first.embedded >= 3
    generation = vault.generation()
    again = import_paths(vault, [path])
    assert (again.unchanged, again.added, again.embedded) == (["n.md"], [], 0)
    assert vault.generation() == generation

    write(path, "\n\n".join([*numbered[:-1], "Kestrel was replaced by Osprey in 2020."]))
    changed = import_paths(vault, [path])
    assert changed.updated == ["n.md"]
    assert 0 < changed.embedded < first.embedded  # unchanged chunks were not embedded again
    assert changed.reused > 0
    document = vault.find_document("n.md")
    assert document is not None
    texts = " ".join(chunk.text for chunk in vault.chunks_of(document.id))
    assert "Osprey" in texts and "29. The Kestrel" not in texts
    assert vault.verify().ok


def test_a_bad_file_is_reported_and_skipped(vault: Vault, tmp_path: Path) -> None:
    folder = vault.workspace.root / "mixed"
    write(folder / "good.txt", PARAGRAPHS[0])
    (folder / "bad.txt").write_bytes("café ".encode() + b"\xe9 damaged")  # UTF-8 and a stray byte (latin-1 is read)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    report = import_paths(vault, [folder])
    assert report.added == ["mixed/good.txt"]
    failed = dict(report.failed)
    assert len(failed) == 2
    assert any("UTF-8" in reason for reason in failed.values())


def test_include_and_exclude_globs(vault: Vault, tmp_path: Path) -> None:
    folder = vault.workspace.root / "tree"
    for name in ("a.md", "b.txt", "drafts/c.md", "sub/d.md", ".hidden/e.md", "notes.bin"):
        write(folder / name, PARAGRAPHS[0] + name)
    report = import_paths(vault, [folder], include=["*.md"], exclude=["drafts/*"])
    assert sorted(report.added) == ["tree/a.md", "tree/sub/d.md"]
    with pytest.raises(UserError, match="does not exist"):
        import_paths(vault, [folder / "missing"])


def test_conversations_import_as_documents_and_records(vault: Vault, tmp_path: Path) -> None:
    lines = [
        '{"role": "user", "content": "What do otters eat?"}',
        '{"role": "assistant", "content": "Mostly fish.", "citations": ["doc-1:0"]}',
        '{"role": "user", "content": "And crabs?"}',
        '{"role": "assistant", "content": "Sometimes."}',
    ]
    import_paths(vault, [write(vault.workspace.root / "chat.jsonl", "\n".join(lines))])
    (conversation,) = vault.list_conversations()
    assert [m.role for m in conversation.messages] == ["user", "assistant", "user", "assistant"]
    assert conversation.messages[1].citations == ("doc-1:0",)
    turns = list(vault.iter_turns(conversation.id))
    assert [(q.content, a.content) for q, a in turns] == [
        ("What do otters eat?", "Mostly fish."),
        ("And crabs?", "Sometimes."),
    ]
    assert Searcher(vault).search("otters eat", k=1)[0].source == "chat.jsonl"
    vault.forget(conversation.id, "user asked")
    assert vault.list_conversations() == []


def test_configured_model_that_cannot_load_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    workspace, _ = Workspace.init(tmp_path / "w")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "/nonexistent/model"\n')
    with Vault(Workspace.open(workspace.root)) as vault:
        assert vault.model_name == "/nonexistent/model"
        with pytest.raises(ConfigError, match="cannot load the embedding model"):
            import_paths(vault, [write(workspace.root / "x.txt", "some text")])
        assert vault.list_documents() == []


def test_bad_vault_settings_are_config_errors(tmp_path: Path) -> None:
    workspace, _ = Workspace.init(tmp_path / "w")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + "\n[vault]\nchunk_chars = -5\n")
    with pytest.raises(ConfigError, match="chunk_chars"):
        Vault(Workspace.open(workspace.root))


def test_migrations_created_the_vault_tables(vault: Vault) -> None:
    tables = {row[0] for row in vault.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "documents",
        "chunks",
        "chunks_fts",
        "embeddings",
        "facts",
        "summaries",
        "conversations",
        "messages",
        "tombstones",
    } <= tables
    with pytest.raises(sqlite3.IntegrityError):
        vault.conn.execute(
            "INSERT INTO chunks (id, document_id, sequence, start_byte, end_byte, text, sha256)"
            " VALUES ('x', 'nope', 0, 0, 1, 't', 's')"
        )


def test_reimporting_a_folder_does_not_undo_forgetting(vault: Vault) -> None:
    folder = vault.workspace.root / "keep"
    write(folder / "private.txt", "A secret plan about otters.")
    write(folder / "public.txt", PARAGRAPHS[0])
    import_paths(vault, [folder])
    private = vault.find_document("keep/private.txt")
    assert private is not None
    vault.forget(private.id, "personal data")
    again = import_paths(vault, [folder])
    assert again.forgotten == ["keep/private.txt"] and again.unchanged == ["keep/public.txt"]
    assert vault.find_document("keep/private.txt") is None
    forced = import_paths(vault, [folder], force=True)
    assert forced.added == ["keep/private.txt"]
    assert import_paths(vault, [folder]).unchanged == ["keep/private.txt", "keep/public.txt"]
