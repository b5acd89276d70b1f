"""Search: BM25, vectors, fusion, filters, citations and snippets; evidence packs; memory API."""

from __future__ import annotations

import os
import time
from decimal import Decimal
from pathlib import Path

import pytest

from arcticcodex.errors import RecordNotFoundError, UserError
from arcticcodex.vault import HashingBackend, Searcher, SearchFilters, Vault, import_paths
from arcticcodex.vault.query import fts_query, highlight, query_terms
from arcticcodex.workspace import Workspace

NOTES = {
    "ops/oncall.md": "# On-call\n\nThe on-call engineer answers pages within 15 minutes.\n\n"
    "Escalate to the incident commander when an outage lasts longer than one hour.",
    "ops/errors.md": "# Error codes\n\nE-4471 means the ingest queue is full; raise max_inflight_batches.\n\n"
    "E-5002 means the signing key is missing.",
    "guides/travel.txt": "Travel must be booked through the portal. Trains are preferred over flights under 500 km.",
    "guides/otters.txt": "Otters eat mostly fish. They also eat crabs, frogs and sometimes birds.",
}


@pytest.fixture
def vault(workspace: Workspace) -> Vault:
    for name, text in NOTES.items():
        path = workspace.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    old = workspace.root / "guides" / "otters.txt"
    os.utime(old, (time.time(), 1_600_000_000))  # 2020-09-13
    with Vault(workspace, embedder=HashingBackend(128)) as opened:
        import_paths(opened, [workspace.root / "ops", workspace.root / "guides"])
        yield opened  # type: ignore[misc]


def test_hybrid_results_carry_citations_snippets_and_both_ranks(vault: Vault) -> None:
    results = Searcher(vault).search("what does E-4471 mean", k=3)
    top = results[0]
    assert top.source == "ops/errors.md" and top.rank == 1
    assert top.bm25_rank == 1 and top.vector_rank is not None and top.cosine is not None
    document_text = vault.document_text(top.doc_id).encode()
    assert document_text[top.start_byte : top.end_byte] == top.text.encode()
    assert [top.snippet[a:b] for a, b in top.highlights] == ["E-4471", "means", "means"]
    assert top.citation.startswith("ops/errors.md [")
    assert [r.rank for r in results] == [1, 2, 3] and results[0].score >= results[-1].score


def test_modes_and_bad_arguments(vault: Vault) -> None:
    searcher = Searcher(vault)
    assert searcher.search("max_inflight_batches", mode="bm25")[0].source == "ops/errors.md"
    assert all(r.bm25_rank is None for r in searcher.search("fish", mode="vector"))
    assert all(r.vector_rank is None for r in searcher.search("fish", mode="bm25"))
    with pytest.raises(UserError):
        searcher.search("x", mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(UserError):
        searcher.search("x", k=0)


@pytest.mark.parametrize("query", ['"unbalanced', "AND OR NOT", "NEAR(", "*", "col:value", "-- ; DROP TABLE chunks"])
def test_user_text_is_never_fts_syntax(vault: Vault, query: str) -> None:
    Searcher(vault).search(query, k=3)  # must not raise
    assert vault.stats()["chunks"] > 0


def test_filters_by_document_source_and_date(vault: Vault) -> None:
    searcher = Searcher(vault)
    guides = searcher.search("eat fish trains", k=10, filters=SearchFilters(source_glob="guides/*"))
    assert guides and {r.source for r in guides} <= {"guides/travel.txt", "guides/otters.txt"}
    travel = vault.find_document("guides/travel.txt")
    assert travel is not None
    only = searcher.search("eat fish trains", filters=SearchFilters(document_ids=(travel.id,)))
    assert {r.doc_id for r in only} == {travel.id}
    recent = searcher.search("otters fish", k=10, filters=SearchFilters(since="2024-01-01"))
    assert "guides/otters.txt" not in {r.source for r in recent}
    old = searcher.search("otters fish", k=10, filters=SearchFilters(until="2020-12-31"))
    assert {r.source for r in old} == {"guides/otters.txt"}


def test_searcher_sees_new_documents_without_being_rebuilt(vault: Vault) -> None:
    searcher = Searcher(vault)
    assert not any(r.source == "late.txt" for r in searcher.search("zeppelin hangar", mode="vector"))
    late = vault.workspace.root / "late.txt"
    late.write_text("The zeppelin hangar opens at dawn.", encoding="utf-8")
    import_paths(vault, [late])
    assert searcher.search("zeppelin hangar", mode="vector")[0].source == "late.txt"


def test_evidence_pack_numbers_its_items(vault: Vault) -> None:
    pack = Searcher(vault).evidence_pack("when to escalate an outage", k=2)
    assert len(pack.items) == 2
    prompt = pack.to_prompt()
    assert prompt.startswith("[1] (ops/oncall.md, ")
    assert "[2] (" in prompt
    assert pack.to_json()["items"][0]["sha256"] == pack.items[0].sha256


def test_query_helpers() -> None:
    assert query_terms("what does E-4471 mean?") == ["E-4471", "mean"]
    assert query_terms("what is the") == ["what", "is", "the"]  # all stopwords: keep them
    assert fts_query('say "hi" twice') == '"say" OR "hi" OR "twice"'
    snippet, spans = highlight("Deployments happen on Tuesdays; deploys are rare.", ["deploys"])
    assert [snippet[a:b] for a, b in spans] == ["Deployments", "deploys"]


def test_facts_summaries_and_conversations_filter(vault: Vault) -> None:
    chunk = vault.chunks_of(vault.list_documents(source_glob="ops/errors.md")[0].id)[0]
    conversation = vault.create_conversation("Support chat", [("user", "Is E-4471 bad?")])
    fact = vault.add_fact("E-4471", "means", "ingest queue full", confidence="0.90", source_chunk_id=chunk.id)
    pending = vault.add_fact("Otters", "eat", "fish", confidence=0.8, conversation_id=conversation, status="pending")
    assert fact.confidence == Decimal("0.9")
    assert [f.id for f in vault.list_facts(source_chunk_id=chunk.id)] == [fact.id]
    assert [f.id for f in vault.list_facts(document_id=chunk.document_id)] == [fact.id]
    assert vault.list_facts(conversation_id=conversation) == []  # pending is not listed by default
    assert [f.id for f in vault.list_facts(conversation_id=conversation, status="pending")] == [pending.id]
    assert len(vault.list_facts(status=None)) == 2
    assert vault.list_facts(since="2999-01-01") == []
    summary = vault.add_summary("Customer asked about E-4471.", conversation_id=conversation)
    assert [s.id for s in vault.list_summaries(conversation_id=conversation)] == [summary.id]
    message = vault.append_message(conversation, "assistant", "Yes: the queue is full.", citations=[chunk.id])
    assert message.sequence == 1 and message.citations == (chunk.id,)
    with pytest.raises(UserError):
        vault.add_fact("a", "b", "c", confidence="1.5")
    with pytest.raises(UserError):
        vault.append_message(conversation, "robot", "beep")
    with pytest.raises(RecordNotFoundError):
        vault.get_fact("fact-missing")
    tombstone = vault.forget(conversation, "customer request")
    assert tombstone.detail == {"messages": 2, "summaries": 1, "embeddings": 0}
    assert vault.list_summaries(conversation_id=conversation) == []


def test_forgotten_citation_is_a_warning_not_an_error(vault: Vault) -> None:
    document = vault.list_documents(source_glob="ops/errors.md")[0]
    chunk = vault.chunks_of(document.id)[0]
    vault.add_fact("E-5002", "means", "signing key missing", source_chunk_id=chunk.id)
    vault.add_fact("ghost", "cites", "nothing", source_chunk_id="doc-nope:0")
    vault.forget(document.id, "obsolete")
    report = vault.verify()
    severities = {problem.problem.split(",")[0]: problem.severity for problem in report.problems}
    assert severities == {f"cites chunk {chunk.id}": "warning", "cites chunk doc-nope:0": "error"}
    assert not report.ok


def test_stats_and_repair(vault: Vault, tmp_path: Path) -> None:
    assert vault.stats()["documents"] == 4
    vault.conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('delete-all')")
    assert not vault.verify().ok
    vault.rebuild_index()
    assert vault.verify().ok


def test_forgetting_summaries_facts_and_imported_conversations(vault: Vault) -> None:
    summary = vault.add_summary("A summary to forget.")
    assert vault.forget(summary.id, "test").kind == "summary"
    fact = vault.add_fact("a", "b", "c")
    assert vault.forget(fact.id, "test").kind == "fact"
    chat = vault.workspace.root / "chat.jsonl"
    chat.write_text('{"role": "user", "content": "my number is 555-0100"}\n{"role": "assistant", "content": "noted"}\n')
    import_paths(vault, [chat])
    document = vault.find_document("chat.jsonl")
    assert document is not None and len(vault.list_conversations()) == 1
    tombstone = vault.forget(document.id, "personal data")
    assert tombstone.detail["conversations"] == 1
    assert vault.list_conversations() == []


def test_facts_by_document_match_the_exact_id_prefix(vault: Vault) -> None:
    document = vault.list_documents(source_glob="ops/errors.md")[0]
    vault.add_fact("E-4471", "means", "queue full", source_chunk_id=f"{document.id}:0")
    assert len(vault.list_facts(document_id=document.id)) == 1
    assert vault.list_facts(document_id="%") == []
    assert vault.list_facts(document_id=document.id.upper()) == []
