"""The persisted ANN index of chunk vectors: in step with the database, rebuilt when it cannot be trusted."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from arcticcodex.vault import HashingBackend, Searcher, SearchFilters, Vault, import_paths
from arcticcodex.vault.store import PreparedChunk, PreparedDocument
from arcticcodex.vault.vector_index import VectorIndex, index_path
from arcticcodex.workspace import Workspace

WORDS = "otter river queue disk token shard replica cache kernel pump valve turbine battery rack fan alert".split()


def text_for(rng: random.Random, number: int) -> str:
    return f"note {number} " + " ".join(rng.choice(WORDS) for _ in range(30))


def write_corpus(root: Path, files: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for number in range(files):
        (root / f"doc{number:03}.txt").write_text(text_for(rng, number), encoding="utf-8")


def approximate(vault: Vault) -> Searcher:
    return Searcher(vault, approximate_from=0)


def exact(vault: Vault) -> Searcher:
    return Searcher(vault, approximate_from=10**12)


def vector_hits(
    searcher: Searcher, query: str, k: int = 10, filters: SearchFilters | None = None
) -> list[tuple[str, float]]:
    return [(hit.chunk_id, hit.cosine or 0.0) for hit in searcher.search(query, k=k, mode="vector", filters=filters)]


def same_ranking(found: list[tuple[str, float]], truth: list[tuple[str, float]]) -> bool:
    """The same cosines in the same order, each for the chunk that has it (equal cosines may swap)."""
    cosines = dict(truth)
    return (
        len(found) == len(truth)
        and all(abs(a[1] - b[1]) < 1e-5 for a, b in zip(found, truth, strict=True))
        and all(chunk not in cosines or abs(cosines[chunk] - cosine) < 1e-5 for chunk, cosine in found)
        and all(abs(cosine - truth[-1][1]) < 1e-5 for chunk, cosine in found if chunk not in cosines)
    )


def database_rowids(vault: Vault) -> list[int]:
    rows = vault.conn.execute(
        "SELECT c.rowid FROM chunks c JOIN embeddings e ON e.content_sha256 = c.sha256 AND e.model = ?"
        " ORDER BY c.rowid",
        (vault.model_name,),
    )
    return [row[0] for row in rows]


def index_of(searcher: Searcher) -> VectorIndex:
    index = searcher._index
    if index is None:
        raise AssertionError("the searcher did not use the ANN index")
    return index


QUERIES = ("otter river", "disk cache kernel", "pump valve turbine battery", "note 7 shard")


@pytest.fixture
def vault(workspace: Workspace) -> Iterator[Vault]:
    write_corpus(workspace.root / "corpus", 60)
    with Vault(workspace, embedder=HashingBackend(64)) as opened:
        import_paths(opened, [workspace.root / "corpus"])
        yield opened


def test_index_agrees_with_the_database_after_import_forget_and_reimport(vault: Vault) -> None:
    searcher = approximate(vault)
    for query in QUERIES:  # few vectors: every list is probed, so the answer is the exact one
        assert same_ranking(vector_hits(searcher, query), vector_hits(exact(vault), query))
    index = index_of(searcher)
    assert index.path == index_path(vault.workspace.database_path, "hashing-64")
    assert index.path.parent == vault.workspace.database_path.parent and index.path.is_file()
    assert index._entries.rowids.tolist() == database_rowids(vault)
    assert index.rebuilds == 1

    gone = vault.list_documents(source_glob="*doc005.txt")[0]
    gone_chunks = {chunk.id for chunk in vault.chunks_of(gone.id)}
    vault.forget(gone.id, "test")
    hits = vector_hits(searcher, "note 5", k=60)
    assert not gone_chunks & {chunk for chunk, _ in hits}
    assert same_ranking(hits, vector_hits(exact(vault), "note 5", k=60))
    assert index._entries.rowids.tolist() == database_rowids(vault)
    assert index.rebuilds == 1  # removed in place, not rebuilt

    (vault.workspace.root / "corpus" / "doc009.txt").write_text("zebra zebra zebra giraffe", encoding="utf-8")
    import_paths(vault, [vault.workspace.root / "corpus"])
    top = searcher.search("zebra giraffe", k=3, mode="vector")
    assert top[0].source.endswith("doc009.txt") and top[0].cosine is not None and top[0].cosine > 0.5
    for query in (*QUERIES, "zebra"):
        assert same_ranking(vector_hits(searcher, query), vector_hits(exact(vault), query))
    assert index._entries.rowids.tolist() == database_rowids(vault)
    assert index.rebuilds == 1

    reopened = approximate(vault)  # a new process: reads the file, checks it against the database
    assert same_ranking(vector_hits(reopened, "zebra"), vector_hits(exact(vault), "zebra"))
    assert index_of(reopened).rebuilds == 0


def test_filters_are_honoured_by_the_index(vault: Vault) -> None:
    filters = SearchFilters(source_glob="corpus/doc01*")
    hits = approximate(vault).search("otter river", k=5, mode="vector", filters=filters)
    assert hits and all(hit.source.startswith("corpus/doc01") for hit in hits)
    found = [(hit.chunk_id, hit.cosine or 0.0) for hit in hits]
    assert same_ranking(found, vector_hits(exact(vault), "otter river", k=5, filters=filters))


def test_an_import_by_another_process_is_seen_not_ignored(vault: Vault) -> None:
    searcher = approximate(vault)
    searcher.search("otter", mode="vector")
    old_file = index_of(searcher).path.read_bytes()
    other_root = vault.workspace.root / "other"
    other_root.mkdir()
    (other_root / "late.txt").write_text("walrus walrus iceberg", encoding="utf-8")
    with Vault(vault.workspace, embedder=HashingBackend(64)) as other:  # its own connection, as another process
        import_paths(other, [other_root])
    assert searcher.search("walrus iceberg", k=1, mode="vector")[0].source.endswith("late.txt")

    index_of(searcher).path.write_bytes(old_file)  # a file from before that import, whole and well formed
    fresh = approximate(vault)
    assert fresh.search("walrus iceberg", k=1, mode="vector")[0].source.endswith("late.txt")
    assert index_of(fresh)._entries.rowids.tolist() == database_rowids(vault)


def test_a_file_saved_at_the_present_state_is_used_without_reading_every_entry(vault: Vault) -> None:
    approximate(vault).search("otter", mode="vector")  # builds and saves the file
    reads: list[int] = []

    class Counting(VectorIndex):
        def _database_entries(self) -> Any:
            reads.append(1)
            return super()._database_entries()

    fresh = Counting(vault.conn, vault.workspace.database_path, vault.model_name)
    fresh.sync()
    assert reads == [] and fresh.rebuilds == 0 and fresh._entries.rowids.tolist() == database_rowids(vault)

    # another tool deletes a chunk without moving the generation: the chunk count gives it away
    rowid = database_rowids(vault)[3]
    vault.conn.execute("DELETE FROM chunks WHERE rowid = ?", (rowid,))
    wary = Counting(vault.conn, vault.workspace.database_path, vault.model_name)
    wary.sync()
    assert reads == [1] and rowid not in wary._entries.rowids.tolist()
    assert wary._entries.rowids.tolist() == database_rowids(vault)


def test_an_import_past_the_threshold_leaves_the_file_up_to_date(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("arcticcodex.vault.vector_index.APPROXIMATE_FROM", 30)
    corpus = tmp_path / "many"
    write_corpus(corpus, 40)
    with Vault(workspace, embedder=HashingBackend(64)) as vault:
        import_paths(vault, [corpus])
        path = index_path(workspace.database_path, vault.model_name)
        assert path.is_file()  # built by the import, not left for the first search
        (corpus / "doc999.txt").write_text("walrus iceberg walrus", encoding="utf-8")
        import_paths(vault, [corpus])
        fresh = VectorIndex(vault.conn, workspace.database_path, vault.model_name)
        fresh._load()
        generation = vault.conn.execute("SELECT value FROM vault_state WHERE key = 'generation'").fetchone()[0]
        assert fresh._saved_state == (int(generation), *fresh._fingerprint())
        assert fresh._entries.rowids.tolist() == database_rowids(vault)


def test_a_forgotten_document_leaves_the_index_file_at_once(vault: Vault) -> None:
    searcher = approximate(vault)
    searcher.search("otter", mode="vector")  # the file now holds every chunk's code
    doc_id, rowid = vault.conn.execute("SELECT document_id, rowid FROM chunks ORDER BY rowid LIMIT 1").fetchone()
    vault.forget(doc_id, "contains personal data")
    on_disk = VectorIndex(vault.conn, vault.workspace.database_path, vault.model_name)
    on_disk._load()  # the file as the forget left it, before any search
    assert rowid not in on_disk._entries.rowids.tolist()
    assert on_disk._entries.rowids.tolist() == database_rowids(vault)
    assert on_disk._index.ntotal == len(database_rowids(vault))


def test_a_reused_rowid_with_new_text_is_not_taken_for_the_old_entry(vault: Vault) -> None:
    searcher = approximate(vault)
    searcher.search("otter", mode="vector")
    rowids_before = database_rowids(vault)
    last = vault.conn.execute("SELECT document_id FROM chunks WHERE rowid = ?", (rowids_before[-1],)).fetchone()[0]
    vault.forget(last, "test")
    extra = vault.workspace.root / "extra"
    extra.mkdir()
    (extra / "new.txt").write_text("narwhal tusk narwhal", encoding="utf-8")
    import_paths(vault, [extra])
    assert database_rowids(vault)[-1] == rowids_before[-1]  # SQLite gave the freed rowid to the new chunk
    assert searcher.search("narwhal tusk", k=1, mode="vector")[0].source.endswith("new.txt")
    assert index_of(searcher)._entries.rowids.tolist() == database_rowids(vault)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_a_damaged_file_is_rebuilt_never_used(vault: Vault, damage: str) -> None:
    first = approximate(vault)
    first.search("otter", mode="vector")
    path = index_of(first).path
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-100] ^= 0xFF  # inside the faiss codes: only the checksum can tell
    elif damage == "garbage":
        data = bytearray(b"\x00" * len(data))
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    searcher = approximate(vault)
    for query in QUERIES:
        assert same_ranking(vector_hits(searcher, query), vector_hits(exact(vault), query))
    assert index_of(searcher).rebuilds == 1
    assert approximate(vault).search("otter", mode="vector")  # the rewritten file is whole again
    reread = VectorIndex(vault.conn, vault.workspace.database_path, vault.model_name)
    reread._load()
    assert reread._index is not None and len(reread) == len(database_rowids(vault))


def test_a_symlinked_index_file_is_not_followed(vault: Vault, tmp_path: Path) -> None:
    first = approximate(vault)
    first.search("otter", mode="vector")
    path = index_of(first).path
    elsewhere = tmp_path / "elsewhere.ann"
    shutil.copyfile(path, elsewhere)
    planted = elsewhere.read_bytes()
    path.unlink()
    path.symlink_to(elsewhere)
    searcher = approximate(vault)
    assert same_ranking(vector_hits(searcher, "otter river"), vector_hits(exact(vault), "otter river"))
    assert index_of(searcher).rebuilds == 1
    assert not path.is_symlink() and path.is_file()
    assert elsewhere.read_bytes() == planted  # the link's target was neither trusted nor overwritten


def clustered(rng: np.random.Generator, count: int, dimensions: int) -> np.ndarray:
    centres = rng.standard_normal((max(1, count // 50), dimensions)).astype(np.float32)
    vectors = centres[rng.integers(0, len(centres), count)] * 0.6
    vectors += rng.standard_normal((count, dimensions)).astype(np.float32) * 0.35
    normalised: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normalised


def fill(vault: Vault, vectors: np.ndarray) -> None:
    per_document = 100
    for first in range(0, len(vectors), per_document * 20):
        documents, by_hash = [], {}
        for doc in range(first // per_document, min(len(vectors), first + per_document * 20) // per_document):
            chunks = []
            for sequence in range(per_document):
                text = f"chunk {doc * per_document + sequence}"
                chunks.append(PreparedChunk(sequence, 0, len(text), None, text))
                by_hash[chunks[-1].sha256] = vectors[doc * per_document + sequence]
            documents.append(
                PreparedDocument(f"s/{doc}.txt", f"s{doc}", "text/plain", f"{doc:064x}", "", 0, None, tuple(chunks))
            )
        vault.write_documents(documents, by_hash)


def test_recall_at_10_against_exact_on_clustered_vectors(workspace: Workspace) -> None:
    rng = np.random.default_rng(5)
    vectors = clustered(rng, 10_000, 64)
    with Vault(workspace, embedder=HashingBackend(64)) as vault:
        fill(vault, vectors)
        index = VectorIndex(vault.conn, vault.workspace.database_path, vault.model_name)
        index.sync()
        rowids = np.array(database_rowids(vault))
        assert len(index) == len(vectors) == len(rowids)
        matrix = vectors  # written in order, so row i is the i-th rowid
        found = 0
        queries = 200
        for _ in range(queries):
            query = matrix[rng.integers(0, len(matrix))] + rng.standard_normal(64).astype(np.float32) * 0.05
            query /= np.linalg.norm(query)
            truth = set(rowids[np.argsort(-(matrix @ query), kind="stable")[:10]].tolist())
            found += len(truth & {rowid for rowid, _ in index.search(query, 10)})
        assert found / (queries * 10) >= 0.98


SCRIPT = textwrap.dedent(
    """
    import random, sys
    from pathlib import Path
    from arcticcodex.vault import HashingBackend, Searcher, Vault, import_paths
    from arcticcodex.workspace import Workspace
    root = Path(sys.argv[1])
    with Vault(Workspace.discover(root), embedder=HashingBackend(64)) as vault:
        searcher = Searcher(vault, approximate_from=0)
        rng = random.Random(2)
        words = "otter river queue disk token shard replica cache kernel pump".split()
        for batch in range(10_000):
            folder = root / f"batch{batch}"
            folder.mkdir()
            for n in range(20):
                (folder / f"f{n}.txt").write_text(" ".join(rng.choice(words) for _ in range(400)))
            import_paths(vault, [folder])
            searcher.search("otter disk", mode="vector")  # rewrites the index file
            print(batch, flush=True)
    """
)


@pytest.mark.slow
def test_kill_9_mid_import_then_search_equals_exact(workspace: Workspace) -> None:
    write_corpus(workspace.root / "corpus", 30)
    with Vault(workspace, embedder=HashingBackend(64)) as vault:
        import_paths(vault, [workspace.root / "corpus"])
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(workspace.root)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for _ in range(3):
        process.stdout.readline()  # a few imports and index files written
    time.sleep(0.35)  # then somewhere inside the next import or file write
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    with Vault(workspace, embedder=HashingBackend(64)) as vault:
        searcher = approximate(vault)
        for query in (*QUERIES, "otter disk", "queue replica"):
            assert same_ranking(vector_hits(searcher, query, k=20), vector_hits(exact(vault), query, k=20))
        assert index_of(searcher)._entries.rowids.tolist() == database_rowids(vault)
