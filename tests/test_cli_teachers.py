"""``arcticcodex teachers`` and ``arcticcodex refine`` against the fake OpenAI-compatible server."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from arcticcodex.cli import cli
from arcticcodex.workspace import Workspace
from fakes.openai_server import FakeOpenAIServer

EVIDENCE = "Otters eat mostly fish. They also eat crabs and frogs."


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(model="fake-model") as fake:
        yield fake


@pytest.fixture
def root(tmp_path: Path) -> Path:
    workspace, _ = Workspace.init(tmp_path / "ws")
    (tmp_path / "answer.txt").write_text("Otters eat fish.")
    (tmp_path / "notes.md").write_text(EVIDENCE)
    return workspace.root


def run(root: Path, *args: str, code: int = 0, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, ["-w", str(root), *args], env=env)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def test_add_list_remove(root: Path, server: FakeOpenAIServer) -> None:
    run(root, "teachers", "add", "gpu", "--preset", "vllm", "--base-url", server.base_url, "--model", "fake-model")
    run(root, "teachers", "add", "ds", "--preset", "deepseek", "--roles", "critic")
    config = tomllib.loads((root / "arcticcodex.toml").read_text())
    assert [t["name"] for t in config["teachers"]] == ["gpu", "ds"]
    assert "api_key" not in json.dumps(config["teachers"]).replace("api_key_env", "")
    listed = json.loads(run(root, "teachers", "list", "--json").stdout)
    assert listed["teachers"][1]["api_key_env"] == "DEEPSEEK_API_KEY" and listed["teachers"][1]["roles"] == ["critic"]
    run(root, "teachers", "add", "gpu", "--preset", "vllm", "--model", "m", code=1)
    run(root, "teachers", "add", "bad", "--preset", "vllm", "--model", "m", "--roles", "judge", code=1)
    assert "serves fake-model" in run(root, "teachers", "ping", "gpu").stdout
    run(root, "teachers", "remove", "ds")
    run(root, "teachers", "remove", "ds", code=1)
    assert [t["name"] for t in tomllib.loads((root / "arcticcodex.toml").read_text())["teachers"]] == ["gpu"]


def test_refine_json_contract_with_an_api_teacher(root: Path, server: FakeOpenAIServer) -> None:
    run(root, "teachers", "add", "gpu", "--preset", "vllm", "--base-url", server.base_url, "--model", "fake-model")
    server.script("critic", [{"score": 0.5, "weaknesses": ["vague"]}, {"score": 0.85}])
    server.script("rewriter", [{"text": "Otters eat mostly fish, and crabs.", "changes": ["specific"]}])
    answer, notes = root.parent / "answer.txt", root.parent / "notes.md"
    result = json.loads(run(root, "refine", str(answer), "--evidence", str(notes), "--json").stdout)
    assert result["accepted"] is True and result["score"] == 0.85 and result["failure"] is None
    assert result["final_text"] == "Otters eat mostly fish, and crabs."
    assert [r["score"] for r in result["rounds"]] == [0.5, 0.85]
    calls = result["rounds"][0]["calls"]
    assert {c["role"] for c in calls} == {"critic", "verifier", "rewriter"} and all(c["prompt_sha256"] for c in calls)

    before = len(server.requests)  # the same text again: every call is answered by the workspace cache
    again = json.loads(run(root, "refine", str(answer), "--evidence", str(notes), "--json").stdout)
    assert len(server.requests) == before and again["final_text"] == result["final_text"]
    assert all(c["cached"] for r in again["rounds"] for c in r["calls"])


def test_refine_with_every_teacher_down_fails_and_accepts_nothing(root: Path, server: FakeOpenAIServer) -> None:
    run(root, "teachers", "add", "gpu", "--preset", "vllm", "--base-url", server.base_url, "--model", "fake-model")
    server.inject(*["503"] * 20)
    result = json.loads(run(root, "refine", str(root.parent / "answer.txt"), "--json", code=1).stdout)
    assert result["accepted"] is False and result["status"] == "failed" and "503" in result["failure"]


def test_refine_offline_with_the_local_judge(root: Path) -> None:
    output = run(root, "refine", str(root.parent / "answer.txt"), "--evidence", str(root.parent / "notes.md")).stdout
    assert "score" in output


def test_budget_stops_calls(root: Path, server: FakeOpenAIServer) -> None:
    run(root, "teachers", "add", "ds", "--preset", "deepseek", "--base-url", server.base_url, "--model", "fake-model")
    server.script("critic", [{"score": 0.1}] * 10)
    env = {"DEEPSEEK_API_KEY": "sk-fake"}
    result = run(
        root, "refine", str(root.parent / "answer.txt"), "--budget-usd", "0.0000001", "--json", code=1, env=env
    )
    data = json.loads(result.stdout)
    assert data["status"] == "failed" and "budget" in data["failure"]
    assert len(server.requests) == 1  # the call that crossed the budget, and nothing after it
