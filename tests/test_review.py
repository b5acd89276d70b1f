"""The review queue: proposals stay out of memory until approved; rejections and edits are kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcticcodex.agent import default_tools
from arcticcodex.errors import RecordNotFoundError, UserError
from arcticcodex.vault import HashingBackend, Vault, import_paths
from arcticcodex.vault.proposals import ReviewQueue
from arcticcodex.workspace import Workspace
from conftest import Acx


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    workspace, _ = Workspace.init(tmp_path / "ws")
    (tmp_path / "otters.md").write_text("# Otters\n\nOtters eat mostly fish.\n")
    opened = Vault(workspace, embedder=HashingBackend(64))
    import_paths(opened, [tmp_path / "otters.md"])
    return opened


def test_a_proposal_enters_memory_only_when_approved(vault: Vault) -> None:
    queue = ReviewQueue(vault)
    chunk = vault.chunks_of(vault.list_documents()[0].id)[0]
    item = queue.propose_fact("otters", "eat", "fish", source_chunk_id=chunk.id)
    assert vault.list_facts() == [] and [i.id for i in queue.list()] == [item.id]
    approved = queue.approve(item.id)
    assert approved.status == "approved" and [f.id for f in vault.list_facts()] == [item.id]
    assert approved.record.metadata["decided_by"] == "user" and queue.list() == []
    with pytest.raises(UserError, match="already approved"):
        queue.reject(item.id, reason="late")


def test_reject_and_edit(vault: Vault) -> None:
    queue = ReviewQueue(vault)
    wrong = queue.propose_fact("otters", "eat", "rocks")
    summary = queue.propose_summary("Otters like fish.")
    edited = queue.edit(summary.id, text="Otters mostly eat fish.")
    assert edited.text == "Otters mostly eat fish." and edited.status == "pending"
    with pytest.raises(UserError, match="a rejection needs a reason"):
        queue.reject(wrong.id, reason=" ")
    rejected = queue.reject(wrong.id, reason="the source says fish")
    assert rejected.status == "rejected" and rejected.record.metadata["reason"] == "the source says fish"
    assert vault.list_facts() == [] and [i.id for i in queue.list(status="rejected")] == [wrong.id]
    queue.approve(summary.id)
    assert [s.text for s in vault.list_summaries()] == ["Otters mostly eat fish."]
    with pytest.raises(UserError, match="object, predicate, subject to edit"):
        queue.edit(queue.propose_fact("a", "b", "c").id, text="nope")
    with pytest.raises(RecordNotFoundError):
        queue.approve("fact-doesnotexist")
    with pytest.raises(UserError, match="not a fact"):
        queue.approve("doc-123")
    with pytest.raises(RecordNotFoundError):
        queue.propose_fact("a", "b", "c", source_chunk_id="doc-nope:0")


def test_the_agent_tool_proposes_and_the_cli_decides(vault: Vault, acx: Acx) -> None:
    registry = default_tools(review=ReviewQueue(vault))
    reply = registry.call("propose_fact", {"subject": "otters", "predicate": "eat", "object": "fish"})
    assert reply.startswith("proposed fact-") and vault.list_facts() == []
    item_id = reply.split()[1].rstrip(";")
    root = ["--workspace", vault.workspace.root]
    listed = acx(*root, "review", "list", "--json")
    assert [i["id"] for i in json.loads(listed.stdout)] == [item_id]
    edited = acx(*root, "review", "edit", item_id, "--object", "fish and crabs")
    assert "fish and crabs" in edited.output
    acx(*root, "review", "approve", item_id)
    assert [f.object for f in vault.list_facts()] == ["fish and crabs"]
    again = acx(*root, "review", "reject", item_id, "--reason", "x", code=1)
    assert f"fact {item_id} was already approved; only pending proposals can change" in again.stderr


def test_proposed_text_reaches_the_terminal_with_its_controls_escaped(vault: Vault, acx: Acx) -> None:
    """A fact the agent proposed from a document can hold terminal escapes and rich markup."""
    hostile = "fish\x1b]0;pwned\x07\x1b[2J[red]loud[/red]\u202e"
    item = ReviewQueue(vault).propose_fact("otters", "eat", hostile)
    root = ["--workspace", vault.workspace.root]
    listed = acx(*root, "review", "list").output
    assert "\x1b" not in listed and "\x07" not in listed and "\u202e" not in listed
    assert "fish\\x1b]0;pwned\\x07\\x1b[2J[red]loud[/red]\\u202e" in listed
    as_json = acx(*root, "review", "list", "--json").stdout
    assert "\u202e" not in as_json and hostile in json.loads(as_json)[0]["text"]
    assert item.id in listed
