"""BM25 from kept term postings ranks exactly as FTS5 does, and stays true as the vault changes."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from arcticcodex.vault import HashingBackend, Searcher, Vault, import_paths
from arcticcodex.vault.query import phrase
from arcticcodex.vault.term_postings import TermPostings
from arcticcodex.workspace import Workspace

WORDS = "otter river queue disk token shard replica cache kernel pump valve turbine battery rack fan alert".split()
QUERIES = (("otter", "river"), ("disk", "cache", "kernel"), ("pump",), ("valve", "turbine", "battery", "rack"))


def write_corpus(root: Path, files: int, seed: int, first: int = 0) -> None:
    """Files of 30 words drawn unevenly (so frequencies and chunk lengths vary), one chunk each."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for number in range(first, first + files):
        words = [WORDS[min(int(rng.paretovariate(0.8)) - 1, len(WORDS) - 1)] for _ in range(rng.randint(5, 40))]
        (root / f"doc{number:03}.txt").write_text(f"note {number} " + " ".join(words), encoding="utf-8")


def fts5_ranking(vault: Vault, terms: tuple[str, ...]) -> list[tuple[int, float]]:
    """FTS5's own ranking of every chunk holding any of the terms: the truth."""
    expression = " OR ".join(map(phrase, terms))
    rows = vault.conn.execute(
        "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts), rowid",
        (expression,),
    )
    return [(int(rowid), float(score)) for rowid, score in rows]


def assert_same_ranking(found: list[tuple[int, float]], truth: list[tuple[int, float]], rel: float = 1e-5) -> None:
    """Exactly FTS5's chunks, each with its score, in FTS5's order (equal scores may swap).

    ``rel`` allows for a vault changed since the lists were made: the chunks they hold keep the
    average chunk length of then, which one chunk in this small corpus moves by up to a percent.
    """
    assert len(found) == len(truth)
    truth_scores = dict(truth)
    assert set(truth_scores) == {rowid for rowid, _ in found}
    for (rowid, score), (_, true_score) in zip(found, truth, strict=True):
        assert score == pytest.approx(true_score, rel=rel)
        assert truth_scores[rowid] == pytest.approx(score, rel=rel)


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    workspace, _ = Workspace.init(tmp_path / "ws")
    write_corpus(tmp_path / "corpus", 120, seed=1)
    opened = Vault(workspace, embedder=HashingBackend(dimensions=32))
    import_paths(opened, [tmp_path / "corpus"])
    return opened


def check_all(vault: Vault, postings: TermPostings, rel: float = 1e-5) -> None:
    for terms in QUERIES:
        assert_same_ranking(postings.top(terms, 1000), fts5_ranking(vault, terms), rel)


def test_summed_postings_rank_every_query_exactly_as_fts5_does(vault: Vault) -> None:
    postings = TermPostings(vault.conn, direct_matches=0)  # every term keeps a list
    check_all(vault, postings)
    assert postings.lists_made == len({term for terms in QUERIES for term in terms})
    top = postings.top(("disk", "cache", "kernel"), 5)
    assert [rowid for rowid, _ in top] == [rowid for rowid, _ in fts5_ranking(vault, ("disk", "cache", "kernel"))[:5]]
    kept = vault.conn.execute("SELECT count(*) FROM term_postings").fetchone()[0]
    assert kept == postings.lists_made
    # another searcher (another process) reads the kept lists instead of making them
    fresh = TermPostings(vault.conn, direct_matches=0)
    check_all(vault, fresh)
    assert fresh.lists_made == 0


def test_rare_terms_are_read_from_fts5_and_not_kept(vault: Vault) -> None:
    postings = TermPostings(vault.conn)  # the default: terms in ≤ 256 chunks are read directly
    check_all(vault, postings)
    assert postings.lists_made == 0
    assert vault.conn.execute("SELECT count(*) FROM term_postings").fetchone()[0] == 0


def test_appended_chunks_extend_the_kept_lists(vault: Vault, tmp_path: Path) -> None:
    check_all(vault, TermPostings(vault.conn, direct_matches=0))
    write_corpus(tmp_path / "corpus", 20, seed=2, first=120)  # a sixth more: inside the drift allowance
    import_paths(vault, [tmp_path / "corpus"])
    postings = TermPostings(vault.conn, direct_matches=0)
    # earlier chunks keep the average chunk length of their time: scores within a thousandth
    check_all(vault, postings, rel=1e-3)
    assert postings.lists_made == 0  # extended from FTS5's new rows, not made again
    highest = vault.conn.execute("SELECT max(rowid) FROM chunks").fetchone()[0]
    assert {row[0] for row in vault.conn.execute("SELECT max_rowid FROM term_postings")} == {highest}


def test_deleted_and_changed_documents_leave_no_trace_in_the_ranking(vault: Vault, tmp_path: Path) -> None:
    postings = TermPostings(vault.conn, direct_matches=0)
    check_all(vault, postings)
    doc_id = vault.conn.execute("SELECT id FROM documents WHERE source LIKE '%doc010.txt'").fetchone()[0]
    gone = [row[0] for row in vault.conn.execute("SELECT rowid FROM chunks WHERE document_id = ?", (doc_id,))]
    vault.forget(doc_id, "test")
    check_all(vault, postings, rel=1e-2)  # the same searcher; one chunk fewer moves the average length
    assert {row[0] for row in vault.conn.execute("SELECT rowid FROM term_postings_deleted")} == set(gone)
    assert all(rowid not in gone for terms in QUERIES for rowid, _ in postings.top(terms, 1000))
    # a changed file: its chunks deleted, new ones appended
    (tmp_path / "corpus" / "doc050.txt").write_text("note 50 otter otter otter river disk", encoding="utf-8")
    import_paths(vault, [tmp_path / "corpus"])
    check_all(vault, postings, rel=1e-2)
    assert postings.lists_made == len({term for terms in QUERIES for term in terms})  # none made again


def test_a_rowid_used_again_is_read_anew_not_taken_from_the_old_list(vault: Vault, tmp_path: Path) -> None:
    postings = TermPostings(vault.conn, direct_matches=0)
    check_all(vault, postings)
    last = vault.conn.execute("SELECT document_id, rowid FROM chunks ORDER BY rowid DESC LIMIT 1").fetchone()
    vault.forget(last[0], "test")
    (tmp_path / "corpus" / "doc119.txt").unlink()
    (tmp_path / "corpus" / "doc500.txt").write_text("note 500 pump pump pump pump", encoding="utf-8")
    import_paths(vault, [tmp_path / "corpus"])
    reused = vault.conn.execute("SELECT rowid FROM chunks WHERE text LIKE 'note 500%'").fetchone()[0]
    assert reused == last[1]  # SQLite gave the new chunk the deleted one's rowid
    check_all(vault, postings, rel=1e-2)
    assert postings.top(("pump",), 1)[0][0] == reused
    assert (
        vault.conn.execute("SELECT count(*) FROM term_postings_deleted WHERE rowid = ?", (reused,)).fetchone()[0] == 0
    )


@pytest.mark.parametrize(
    "damage",
    [
        "impacts = x'00'",  # not a whole float32
        "rowids = CAST(substr(rowids, 9) || substr(rowids, 1, 8) AS BLOB)",  # every rowid, out of order
        "rowids = 'otter'",  # text where bytes belong
        "chunks = 0",
    ],
)
def test_a_damaged_kept_list_is_made_again(vault: Vault, damage: str) -> None:
    check_all(vault, TermPostings(vault.conn, direct_matches=0))
    vault.conn.execute(f"UPDATE term_postings SET {damage} WHERE term = 'otter'")  # the test's own damage
    postings = TermPostings(vault.conn, direct_matches=0)
    check_all(vault, postings)
    assert postings.lists_made == 1


def test_a_search_while_another_process_writes_answers_without_waiting_or_storing(vault: Vault) -> None:
    other = sqlite3.connect(vault.workspace.database_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # an import in progress holds the write lock
    try:
        postings = TermPostings(vault.conn, direct_matches=0)
        check_all(vault, postings)
        assert postings.lists_made > 0
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert vault.conn.execute("SELECT count(*) FROM term_postings").fetchone()[0] == 0
    assert vault.conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0  # the vault's own timeout restored


def test_the_searcher_ranks_bm25_from_postings_as_fts5_does(vault: Vault) -> None:
    summed = Searcher(vault, postings_from=0)
    scored = Searcher(vault)  # 120 chunks: FTS5 scores every match
    for terms in QUERIES:
        query = " ".join(terms)
        found = [(hit.chunk_id, hit.rank) for hit in summed.search(query, k=8, mode="bm25")]
        truth = [(hit.chunk_id, hit.rank) for hit in scored.search(query, k=8, mode="bm25")]
        assert found == truth
    assert summed._postings is not None and scored._postings is None


def test_a_query_of_terms_in_most_chunks_still_ranks_as_fts5_does(vault: Vault) -> None:
    chunks = vault.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    everywhere = vault.conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'note'").fetchone()[0]
    assert everywhere == chunks  # "note" opens every file: FTS5 floors its IDF
    found = Searcher(vault, postings_from=0).search("note", k=10, mode="bm25")
    truth = fts5_ranking(vault, ("note",))[:10]
    assert [hit.chunk_id for hit in found] == [
        vault.conn.execute("SELECT id FROM chunks WHERE rowid = ?", (rowid,)).fetchone()[0] for rowid, _ in truth
    ]
