"""The second stage of hybrid search (vault/rerank.py): specificity, score mixing, and its place in Searcher."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

import numpy as np
import pytest

from arcticcodex.vault import HashingBackend, Searcher, Vault, import_paths
from arcticcodex.vault.rerank import (
    candidate_vectors,
    local_density,
    rerank,
    second_stage_scores,
    specificity,
    standardise,
)
from arcticcodex.workspace import Workspace
from embedders import RecordingBackend


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_local_density_is_the_mean_cosine_to_the_nearest_other_rows() -> None:
    rows = np.stack([unit(1, 0, 0), unit(1, 0.1, 0), unit(0, 1, 0), unit(0, 0, 1)])
    cosines = rows @ rows.T
    one = local_density(rows, neighbours=1)
    assert one[0] == pytest.approx(cosines[0, 1]) and one[1] == pytest.approx(cosines[1, 0])
    assert one[3] == pytest.approx(0.0)  # orthogonal to everything: its nearest other is at cosine 0
    two = local_density(rows, neighbours=2)
    assert two[2] == pytest.approx((cosines[2, 1] + 0.0) / 2)  # never itself (cosine 1) among its neighbours
    every = local_density(rows, neighbours=10)  # more neighbours asked than there are: all the others
    assert every[0] == pytest.approx((cosines[0, 1] + cosines[0, 2] + cosines[0, 3]) / 3)
    assert local_density(rows[:1]).tolist() == [0.0]
    assert local_density(rows[:0]).shape == (0,)


def test_specificity_puts_a_distinct_candidate_above_slightly_closer_lookalikes() -> None:
    """Six near-copies of one template score 0.62 against the query, the distinct answer 0.55: CSLS swaps them."""
    query = unit(1, 0, 0, 0)
    rng = np.random.default_rng(7)
    template = np.array([0.62, 0.78, 0.0, 0.0])
    lookalikes = [unit(*(template + rng.normal(0, 0.01, 4) * [0, 1, 1, 1])) for _ in range(6)]
    answer = unit(0.55, 0.0, 0.0, np.sqrt(1 - 0.55**2))
    candidates = np.stack([*lookalikes, answer])
    cosines = candidates @ query
    assert int(np.argmax(cosines)) != 6  # the raw cosine prefers a lookalike
    assert int(np.argmax(specificity(query, candidates))) == 6


def test_standardise_gives_z_scores_and_all_zeros_for_equal_values() -> None:
    z = standardise(np.array([2.0, 4.0, 6.0]))
    assert z.tolist() == pytest.approx([-1.224744871, 0.0, 1.224744871])
    assert float(z.mean()) == pytest.approx(0.0) and float(z.std()) == pytest.approx(1.0)
    assert standardise(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]  # nothing to tell apart
    assert standardise(np.array([])).shape == (0,)
    # one outlier does not flatten everyone else to the bottom as min-max would
    spread = standardise(np.array([1.0, 2.0, 3.0, 100.0]))
    assert spread[1] - spread[0] == pytest.approx(spread[2] - spread[1])


def test_the_query_weights_decide_between_a_lexical_and_a_semantic_favourite() -> None:
    query = unit(1, 0, 0)
    vectors = {1: unit(0.2, 1, 0), 2: unit(1, 0.2, 0), 3: unit(0.5, 0, 1)}
    bm25 = {1: 12.0, 2: 3.0, 3: 1.0}  # 1 is BM25's favourite, 2 the vectors'
    identifier = second_stage_scores([1, 2, 3], bm25, query, vectors, (2.0, 1.0))
    question = second_stage_scores([1, 2, 3], bm25, query, vectors, (1.0, 2.0))
    assert max(identifier, key=identifier.__getitem__) == 1
    assert max(question, key=question.__getitem__) == 2
    assert sum(identifier.values()) == pytest.approx(0.0)  # a weighted sum of z-scores: centred on zero
    # no BM25 score and no vector: nothing to go on, the lowest score there is
    bare = second_stage_scores([1, 2, 4], bm25, query, vectors, (1.0, 1.0))
    assert bare[4] < min(bare[1], bare[2])


def test_rerank_permutes_only_the_head_and_keeps_it_above_the_tail() -> None:
    query = unit(1, 0, 0)
    fused = {10: 0.9, 11: 0.8, 12: 0.7, 13: 0.6, 14: 0.5}
    vectors = {10: unit(0, 1, 0), 11: unit(0.3, 1, 0), 12: unit(1, 0.1, 0)}
    result = rerank(fused, {12: 5.0}, query, vectors, (1.0, 1.0), depth=3)
    order = sorted(result, key=lambda rowid: -result[rowid])
    assert order[0] == 12  # BM25's and the vectors' choice, third before
    assert set(order[:3]) == {10, 11, 12} and order[3:] == [13, 14]
    assert (result[13], result[14]) == (0.6, 0.5)  # the tail keeps its first-stage scores
    assert min(result[rowid] for rowid in (10, 11, 12)) > 0.6
    assert rerank({7: 1.0}, {}, query, {7: query}, (1.0, 1.0)) == {7: 1.0}  # one candidate: nothing to reorder


@pytest.fixture
def otter_vault(workspace: Workspace) -> Iterator[Vault]:
    """Eight notes that repeat "otter" and one passage that is about an otter's burrow, among herons."""
    filler = "Rivers carry silt downstream past the reeds and stones in spring. " * 4
    notes = [
        f"## Note {n}\n\nThe otter swims and the otter dives and the otter eats fish near bank {n}." for n in range(8)
    ]
    notes.insert(3, f"## Holts\n\nA holt is an otter burrow dug into a river bank. {filler}")
    notes += [f"## Heron {n}\n\nHerons stand still in rivers and wait for fish {n}. {filler[:60]}" for n in range(10)]
    (workspace.root / "otters.md").write_text("# Otters\n\n" + "\n\n".join(notes) + "\n", encoding="utf-8")
    with Vault(workspace, embedder=HashingBackend(256)) as vault:
        import_paths(vault, [workspace.root / "otters.md"])
        yield vault


def test_the_default_search_keeps_a_clear_lexical_lead_that_rank_fusion_loses(otter_vault: Vault) -> None:
    """The only passage with both words is BM25's first by far but low on the vectors: RRF puts it 4th or 5th."""
    first_stage = Searcher(otter_vault, rerank_depth=0).search("otter burrow", k=5)
    assert [r.text.startswith("## Holts") for r in first_stage].index(True) >= 3
    results = Searcher(otter_vault).search("otter burrow", k=5)
    assert results[0].text.startswith("## Holts") and results[0].bm25_rank == 1
    assert results[0].vector_rank is not None and results[0].vector_rank >= 9
    assert [result.rank for result in results] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in pairwise(results))
    # BM25 and vector modes are single rankers: the second stage is hybrid's only
    assert [r.chunk_id for r in Searcher(otter_vault).search("otter burrow", k=5, mode="vector")] == [
        r.chunk_id for r in Searcher(otter_vault, rerank_depth=0).search("otter burrow", k=5, mode="vector")
    ]


@pytest.fixture
def kettle_vault(workspace: Workspace) -> Iterator[Vault]:
    """A manual page where twelve templated entries share the query's words and one entry answers it."""
    parts = ["lid", "spout", "handle", "base", "switch", "filter", "cord", "light", "valve", "gauge", "plate", "seal"]
    lookalikes = [
        f"kettle.boil_{part}(x)\n\nBoils the water of the kettle given by x, looking at each {part} it refers to."
        for part in parts
    ]
    answer = "kettle.heat(x)\n\nWarms water quickly for tea; the kettle switches off once it boils."
    page = "# kettle\n\n" + "\n\n".join([*lookalikes[:6], answer, *lookalikes[6:]]) + "\n"
    (workspace.root / "kettle.md").write_text(page, encoding="utf-8")
    with Vault(workspace, embedder=HashingBackend(256)) as vault:
        import_paths(vault, [workspace.root / "kettle.md"])
        yield vault


def test_specificity_ranks_the_answer_above_its_templated_lookalikes(kettle_vault: Vault) -> None:
    """Off by default (see rerank.py): when asked for, the density correction lifts the one distinct entry."""
    query = "boil water in the kettle"
    for searcher in (Searcher(kettle_vault, rerank_depth=0), Searcher(kettle_vault)):
        assert all("kettle.heat(x)" not in result.text for result in searcher.search(query, k=5))
    results = Searcher(kettle_vault, specificity=True).search(query, k=5)
    assert results[0].text.startswith("kettle.heat(x)")


def test_candidate_vectors_are_the_stored_ones_and_damaged_rows_are_left_out(kettle_vault: Vault) -> None:
    conn, model = kettle_vault.conn, kettle_vault.model_name
    rowids = [int(row[0]) for row in conn.execute("SELECT rowid FROM chunks ORDER BY rowid")]
    vectors = candidate_vectors(conn, model, [*rowids[:3], 99_999], 256)
    assert sorted(vectors) == rowids[:3]  # an unknown rowid is simply absent
    stored = conn.execute(
        "SELECT e.vector FROM chunks c JOIN embeddings e ON e.content_sha256 = c.sha256 WHERE c.rowid = ?",
        (rowids[0],),
    ).fetchone()[0]
    assert vectors[rowids[0]].tobytes() == stored
    assert candidate_vectors(conn, model, [], 256) == {}
    assert candidate_vectors(conn, "another-model", rowids, 256) == {}
    assert candidate_vectors(conn, model, rowids, 384) == {}  # another model's length: never mixed in
    # a truncated blob (a damaged row) is left out, not read as garbage or raised on
    sha = conn.execute("SELECT sha256 FROM chunks WHERE rowid = ?", (rowids[1],)).fetchone()[0]
    conn.execute("UPDATE embeddings SET vector = substr(vector, 1, 100) WHERE content_sha256 = ?", (sha,))
    assert rowids[1] not in candidate_vectors(conn, model, rowids[:3], 256)
    # so is a vector holding a NaN: one NaN cosine would make every candidate's normalised score NaN
    poisoned = np.zeros(256, dtype="<f4")
    poisoned[5] = np.nan
    sha = conn.execute("SELECT sha256 FROM chunks WHERE rowid = ?", (rowids[2],)).fetchone()[0]
    conn.execute("UPDATE embeddings SET vector = ? WHERE content_sha256 = ?", (poisoned.tobytes(), sha))
    assert sorted(candidate_vectors(conn, model, rowids[:3], 256)) == [rowids[0]]


def test_a_hybrid_search_embeds_its_query_once(workspace: Workspace) -> None:
    (workspace.root / "notes.md").write_text("# Notes\n\nOtters eat fish.\n\nKettles boil water.\n", encoding="utf-8")
    backend = RecordingBackend()
    with Vault(workspace, embedder=backend) as vault:
        import_paths(vault, [workspace.root / "notes.md"])
        imported = len(backend.texts)
        searcher = Searcher(vault)
        searcher.search("what do otters eat", k=3)
        assert backend.texts[imported:] == ["what do otters eat"]  # the vector ranking and the rerank share it
        searcher.search("boiling water", k=3)
        assert backend.texts[imported:] == ["what do otters eat", "boiling water"]
