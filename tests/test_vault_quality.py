"""Search quality on a labelled fixture, with the real offline MiniLM model.

The fixture (tests/fixtures/retrieval, see its README) is a fictional organisation's wiki: 500+
passages and 60+ queries, half of them paraphrases that share few words with their answers (where
embeddings should win) and half exact identifiers such as error codes (where BM25 should win).
Hybrid search must do at least as well as the better of the two on nDCG@10.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcticcodex.vault import Searcher, Vault, evaluate, import_paths, load_queries
from arcticcodex.workspace import Workspace

FIXTURE = Path(__file__).parent / "fixtures" / "retrieval"


@pytest.mark.slow
def test_hybrid_is_at_least_as_good_as_the_better_single_ranker(tmp_path: Path) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    corpus = workspace.root / "corpus"
    corpus.mkdir()
    passages = [json.loads(line) for line in (FIXTURE / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    for passage in passages:
        (corpus / f"{passage['id']}.md").write_text(f"# {passage['title']}\n\n{passage['text']}\n", encoding="utf-8")
    queries = load_queries(FIXTURE / "queries.jsonl")
    assert len(queries) >= 50

    with Vault(workspace) as vault:  # the configured default: all-MiniLM-L6-v2, offline
        report = import_paths(vault, [corpus])
        assert report.failed == [] and report.chunks >= 500
        scores = {score.mode: score for score in evaluate(Searcher(vault), queries, k=10)}
        convex = evaluate(Searcher(vault, fusion="convex"), queries, modes=("hybrid",), k=10)[0]

    table = "\n".join(
        f"{mode:7} recall@10 {s.recall_at_k:.3f}  MRR@10 {s.mrr_at_k:.3f}  nDCG@10 {s.ndcg_at_10:.3f}"
        for mode, s in [*scores.items(), ("convex", convex)]
    )
    print("\n" + table)
    best_single = max(scores["bm25"].ndcg_at_10, scores["vector"].ndcg_at_10)
    assert scores["hybrid"].ndcg_at_10 >= best_single, table  # the default: RRF
    assert convex.ndcg_at_10 >= best_single, table
    assert scores["hybrid"].recall_at_k >= max(scores["bm25"].recall_at_k, scores["vector"].recall_at_k), table
