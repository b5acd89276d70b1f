"""The agent answers from the vault with citations that resolve to chunks, keeps conversations, and
feeds the teacher loop; offline (extractive) and with a model over real HTTP (the fake server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcticcodex.agent import Agent, AgentAnswer, Sandbox, default_tools
from arcticcodex.agent.agent import NOTHING_FOUND
from arcticcodex.errors import ToolError, UserError
from arcticcodex.refine import TeacherRouter
from arcticcodex.teachers.entries import TeacherConfig
from arcticcodex.teachers.local_judge import LocalJudge
from arcticcodex.teachers.pool import TeacherPool
from arcticcodex.vault import HashingBackend, Vault, import_paths
from arcticcodex.vault.proposals import ReviewQueue
from arcticcodex.vault.search import Searcher
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer

OTTERS = "Otters eat mostly fish. They also eat crabs and frogs when fish are scarce."
BEAVERS = "Beavers build dams from branches and mud. A dam raises the water around their lodge."


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    workspace, _ = Workspace.init(tmp_path / "ws")
    (tmp_path / "otters.md").write_text(f"# Otters\n\n{OTTERS}\n")
    (tmp_path / "beavers.md").write_text(f"# Beavers\n\n{BEAVERS}\n")
    opened = Vault(workspace, embedder=HashingBackend(64))
    import_paths(opened, [tmp_path / "otters.md", tmp_path / "beavers.md"])
    return opened


def test_offline_answer_cites_the_chunks_it_used(vault: Vault) -> None:
    answer = Agent(vault, k=2).respond_sync("What do otters eat?")
    assert "Otters eat mostly fish." in answer.text and "[" in answer.text
    assert answer.answered_by.startswith("extractive-drafter")
    (citation,) = answer.citations
    chunk = vault.get_chunk(citation.chunk_id)
    assert "Otters eat mostly fish" in chunk.text and citation.sha256 == chunk.sha256
    assert citation.source.endswith("otters.md") and f"[{citation.number}]" in answer.text
    assert [c.chunk_id for c in answer.used_chunks] == [citation.chunk_id]


def test_says_so_when_nothing_answers(vault: Vault) -> None:
    answer = Agent(vault, k=2).respond_sync("Who won the 1998 chess olympiad?")
    assert answer.text == NOTHING_FOUND and answer.citations == ()


def test_conversations_are_kept_in_the_vault(vault: Vault) -> None:
    agent = Agent(vault, k=2)
    first = agent.respond_sync("What do otters eat?")
    second = agent.respond_sync("And when fish are scarce?", conversation_id=first.conversation_id)
    assert second.conversation_id == first.conversation_id
    assert "crabs and frogs" in second.text  # the earlier turn gave the follow-up its topic
    messages = vault.get_conversation(first.conversation_id).messages
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[1].citations == tuple(c.chunk_id for c in first.citations)
    with pytest.raises(UserError):
        agent.respond_sync("   ")


def test_a_model_answers_over_http_and_bad_citations_are_dropped(vault: Vault) -> None:
    with FakeOpenAIServer(model="student", api_key="k") as server:
        server.set_default("generic", "Otters mostly eat fish [1], never mice [7].")
        config = TeacherConfig(
            name="student", preset="vllm", model="student", base_url=server.base_url, api_key_env="VLLM_API_KEY"
        )
        answer = Agent(vault, model=config, k=2, environ={"VLLM_API_KEY": "k"}).respond_sync("What do otters eat?")
        (request,) = [r for r in server.requests if r.path == "/v1/chat/completions"]
    assert answer.text == "Otters mostly eat fish [1], never mice ."
    assert answer.unresolved == (7,) and "dropped citations" in answer.notes[0]
    assert [c.number for c in answer.citations] == [1]
    system = request.body["messages"][0]["content"]
    assert "Cite every claim" in system and "Otters eat mostly fish" in system
    assert request.body["messages"][-1] == {"role": "user", "content": "What do otters eat?"}
    assert "response_format" not in request.body  # answers are prose, not JSON
    assert answer.answered_by == "student (student)"


def test_an_answer_goes_straight_into_the_teacher_loop(vault: Vault) -> None:
    answer: AgentAnswer = Agent(vault, k=2).respond_sync("What do otters eat?")
    router = TeacherRouter(pool=TeacherPool([LocalJudge(HashingBackend(64))]))
    result = router.refine_sync(answer.text, answer.evidence_items(), instruction=answer.question)
    assert result.score is not None and result.status in ("accepted", "rejected")
    assert {item.chunk_id for item in answer.evidence_items()} >= {c.chunk_id for c in answer.citations}


def test_ask_on_the_command_line(tmp_path: Path, acx: Acx) -> None:
    Workspace.init(tmp_path / "cli")
    (tmp_path / "otters.md").write_text(f"# Otters\n\n{OTTERS}\n")
    base = ["--workspace", str(tmp_path / "cli")]
    acx(*base, "vault", "import", tmp_path / "otters.md")
    result = acx(*base, "ask", "What do otters eat?", "--json")
    answer = json.loads(result.stdout)
    assert "Otters eat mostly fish." in answer["text"] and answer["citations"][0]["source"].endswith("otters.md")
    follow = acx(*base, "ask", "And crabs?", "--conversation", answer["conversation_id"])
    assert f"(conversation {answer['conversation_id']})" in follow.output
    unknown = acx(*base, "ask", "x?", "--model", "nope", code=1)
    assert "--model 'nope' is not a configured teacher (configured: none yet)" in unknown.stderr
    assert "arcticcodex teachers add nope --preset" in unknown.stderr


def test_a_model_answer_streams_token_by_token(vault: Vault) -> None:
    with FakeOpenAIServer(model="student", api_key="k") as server:
        server.set_default("generic", "Otters eat fish [1]. Really [1].")
        config = TeacherConfig(
            name="student", preset="vllm", model="student", base_url=server.base_url, api_key_env="VLLM_API_KEY"
        )
        pieces: list[str] = []
        agent = Agent(vault, model=config, k=2, environ={"VLLM_API_KEY": "k"})
        answer = agent.respond_sync("What do otters eat?", on_text=pieces.append)
        (request,) = [r for r in server.requests if r.path == "/v1/chat/completions"]
    assert request.body["stream"] is True
    assert len(pieces) > 3 and "".join(pieces) == "Otters eat fish [1]. Really [1]."
    assert answer.text == "".join(pieces) and [c.number for c in answer.citations] == [1]


def test_a_model_calls_tools_through_the_registry(vault: Vault, tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "notes.md").write_text("The otter census counted 42 otters.")
    registry = default_tools(sandbox=Sandbox(tmp_path / "tools"), review=ReviewQueue(vault))
    with FakeOpenAIServer(model="student", api_key="k") as server:
        server.script(
            "generic",
            [
                {"tool_calls": [{"name": "read_file", "arguments": {"path": "../../etc/passwd"}}]},
                {"tool_calls": [{"name": "read_file", "arguments": {"path": "notes.md"}}]},
                {"tool_calls": [{"name": "calculate", "arguments": {"expression": "42 * 2"}}]},
                {"tool_calls": [{"name": "write_file", "arguments": {"path": "x.md", "text": "hi"}}]},
                "There were 42 otters, so 84 eyes [1].",
            ],
        )
        config = TeacherConfig(
            name="student", preset="vllm", model="student", base_url=server.base_url, api_key_env="VLLM_API_KEY"
        )
        agent = Agent(vault, model=config, k=2, environ={"VLLM_API_KEY": "k"}, tools=registry, max_tool_rounds=5)
        answer = agent.respond_sync("How many otter eyes?")
        chats = [r for r in server.requests if r.path == "/v1/chat/completions"]
    assert answer.text == "There were 42 otters, so 84 eyes [1]."
    assert [(c.name, c.error is None) for c in answer.tool_calls] == [
        ("read_file", False),  # ../ refused
        ("read_file", True),
        ("calculate", True),
        ("write_file", False),  # no approval: nothing written
    ]
    assert not (tmp_path / "tools" / "x.md").exists()
    assert {t["function"]["name"] for t in chats[0].body["tools"]} >= {"read_file", "calculate", "propose_fact"}
    last = chats[-1].body["messages"]
    tool_results = [m["content"] for m in last if m["role"] == "tool"]
    assert tool_results[0].startswith("error:") and "'..'" in tool_results[0]
    assert tool_results[1:3] == ["The otter census counted 42 otters.", "84"]
    assert "not approved" in tool_results[3]
    assert answer.to_json()["tool_calls"][2] == {
        "name": "calculate",
        "arguments": {"expression": "42 * 2"},
        "result": "84",
        "error": None,
    }


def test_agent_conversations_become_training_pairs(vault: Vault) -> None:
    from arcticcodex import KeyStore
    from arcticcodex.compat import DistillationDatasetWriter, FrameVerifier

    answer = Agent(vault, k=2).respond_sync("What do otters eat?")
    keys = KeyStore(vault.workspace.keys_dir)
    keys.create("dataset")
    signer = keys.signer("dataset")
    writer = DistillationDatasetWriter(vault=vault, verifier=FrameVerifier(signer=signer, signer_id="agent"))
    pairs = writer.import_from_conversation(answer.conversation_id)
    assert [p.instruction for p in pairs] == ["What do otters eat?"]
    assert pairs[0].completion == answer.text


def test_the_vault_search_tool(vault: Vault) -> None:
    registry = default_tools(searcher=Searcher(vault))
    found = json.loads(registry.call("vault_search", {"query": "otters fish", "k": 1}))
    assert len(found) == 1 and found[0]["source"].endswith("otters.md") and "fish" in found[0]["text"]
    with pytest.raises(ToolError, match="between 1 and 20"):
        registry.call("vault_search", {"query": "x", "k": 99})
