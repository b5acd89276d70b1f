"""``arcticcodex teachers`` and ``arcticcodex refine`` against the fake OpenAI-compatible server."""

from __future__ import annotations

import json
import socket
import tomllib
from pathlib import Path

import pytest

from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer

EVIDENCE = "Otters eat mostly fish. They also eat crabs and frogs."


@pytest.fixture
def root(tmp_path: Path) -> Path:
    workspace, _ = Workspace.init(tmp_path / "ws")
    (tmp_path / "answer.txt").write_text("Otters eat fish.")
    (tmp_path / "notes.md").write_text(EVIDENCE)
    return workspace.root


def test_add_list_remove(root: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    acx(
        "-w", root, "teachers", "add", "gpu", "--preset", "vllm", "--base-url", server.base_url, "--model", "fake-model"
    )
    acx("-w", root, "teachers", "add", "ds", "--preset", "deepseek", "--roles", "critic")
    config = tomllib.loads((root / "arcticcodex.toml").read_text())
    assert [t["name"] for t in config["teachers"]] == ["gpu", "ds"]
    assert "api_key" not in json.dumps(config["teachers"]).replace("api_key_env", "")
    listed = json.loads(acx("-w", root, "teachers", "list", "--json").stdout)
    assert listed["teachers"][1]["api_key_env"] == "DEEPSEEK_API_KEY" and listed["teachers"][1]["roles"] == ["critic"]
    again = acx("-w", root, "teachers", "add", "gpu", "--preset", "vllm", "--model", "m", code=1)
    assert f"a teacher named 'gpu' already exists in {root / 'arcticcodex.toml'}; remove it first" in again.stderr
    judge = acx("-w", root, "teachers", "add", "bad", "--preset", "vllm", "--model", "m", "--roles", "judge", code=1)
    assert "teacher 'bad' has unknown roles ['judge']; roles are critic, verifier, rewriter" in judge.stderr
    assert "serves fake-model" in acx("-w", root, "teachers", "ping", "gpu").stdout
    acx("-w", root, "teachers", "remove", "ds")
    gone = acx("-w", root, "teachers", "remove", "ds", code=1)
    assert f"no teacher named 'ds' in {root / 'arcticcodex.toml'} (teachers there: gpu)" in gone.stderr
    assert [t["name"] for t in tomllib.loads((root / "arcticcodex.toml").read_text())["teachers"]] == ["gpu"]


def test_refine_json_contract_with_an_api_teacher(root: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    acx(
        "-w", root, "teachers", "add", "gpu", "--preset", "vllm", "--base-url", server.base_url, "--model", "fake-model"
    )
    server.script("critic", [{"score": 0.5, "weaknesses": ["vague"]}, {"score": 0.85}])
    server.script("rewriter", [{"text": "Otters eat mostly fish, and crabs.", "changes": ["specific"]}])
    answer, notes = root.parent / "answer.txt", root.parent / "notes.md"
    result = json.loads(acx("-w", root, "refine", answer, "--evidence", notes, "--json").stdout)
    assert result["accepted"] is True and result["score"] == 0.85 and result["failure"] is None
    assert result["final_text"] == "Otters eat mostly fish, and crabs."
    assert [r["score"] for r in result["rounds"]] == [0.5, 0.85]
    calls = result["rounds"][0]["calls"]
    assert {c["role"] for c in calls} == {"critic", "verifier", "rewriter"} and all(c["prompt_sha256"] for c in calls)

    before = len(server.requests)  # the same text again: every call is answered by the workspace cache
    again = json.loads(acx("-w", root, "refine", answer, "--evidence", notes, "--json").stdout)
    assert len(server.requests) == before and again["final_text"] == result["final_text"]
    assert all(c["cached"] for r in again["rounds"] for c in r["calls"])


def test_refine_with_every_teacher_down_fails_and_accepts_nothing(
    root: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    acx(
        "-w", root, "teachers", "add", "gpu", "--preset", "vllm", "--base-url", server.base_url, "--model", "fake-model"
    )
    server.inject(*["503"] * 20)
    result = json.loads(acx("-w", root, "refine", root.parent / "answer.txt", "--json", code=1).stdout)
    assert result["accepted"] is False and result["status"] == "failed" and "503" in result["failure"]


def test_refine_offline_with_the_local_judge(root: Path, acx: Acx) -> None:
    output = acx("-w", root, "refine", root.parent / "answer.txt", "--evidence", root.parent / "notes.md").stdout
    assert "score" in output


def test_budget_stops_calls(root: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    acx(
        "-w",
        root,
        "teachers",
        "add",
        "ds",
        "--preset",
        "deepseek",
        "--base-url",
        server.base_url,
        "--model",
        "fake-model",
    )
    server.script("critic", [{"score": 0.1}] * 10)
    env = {"DEEPSEEK_API_KEY": "sk-fake"}
    result = acx(
        "-w", root, "refine", root.parent / "answer.txt", "--budget-usd", "0.0000001", "--json", code=1, env=env
    )
    data = json.loads(result.stdout)
    assert data["status"] == "failed" and "budget" in data["failure"]
    assert len(server.requests) == 1  # the call that crossed the budget, and nothing after it


# -- names, URLs and keys on `teachers add`; `teachers ping` reports every teacher (issue 12) -------------


@pytest.mark.parametrize("name", ["my teacher", "-gpu", "a/b", "x" * 65, "gpu\x1b[2J", ""])
def test_a_teacher_name_no_command_could_use_is_refused_on_add(root: Path, name: str, acx: Acx) -> None:
    config = root / "arcticcodex.toml"
    before = config.read_text()
    result = acx("-w", root, "teachers", "add", "--preset", "ollama", "--model", "llama3", "--", name, code=1)
    assert "is not a valid teacher name: a teacher name is 1-64 characters: letters, digits, '.', '_' or '-', " in (
        result.output
    )
    assert "\x1b" not in result.output and config.read_text() == before


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:8000/v1", "must start with http:// or https:// and name a host"),
        ("ftp://models.example.com/v1", "must start with http:// or https:// and name a host"),
        ("http:///v1", "must start with http:// or https:// and name a host"),
        ("http://127.0.0.1:99999/v1", "is not a URL (Port out of range 0-65535)"),
        ("http://exa mple.com/v1", "is not a usable URL"),
        ("https://me:s3cret-password@api.example.com/v1", "holds a user name or password; remove it from the URL"),
    ],
    ids=["no scheme", "ftp", "no host", "bad port", "space", "password"],
)
def test_a_base_url_that_is_not_an_http_url_with_a_host_is_refused_on_add(
    root: Path, url: str, message: str, acx: Acx
) -> None:
    config = root / "arcticcodex.toml"
    before = config.read_text()
    result = acx("-w", root, "teachers", "add", "mine", "--preset", "vllm", "--base-url", url, "--model", "m", code=1)
    assert "teachers add mine: teacher 'mine': base_url" in result.output and message in result.output
    fix = "put the key in the environment variable" if "password" in message else "e.g. http://127.0.0.1:8000/v1"
    assert fix in result.output
    assert "s3cret" not in result.output, "a password in a URL is never repeated"
    assert config.read_text() == before


def test_local_server_presets_need_no_key_and_say_so(root: Path, acx: Acx) -> None:
    added = acx("-w", root, "teachers", "add", "box", "--preset", "vllm", "--model", "qwen")
    assert (
        "no API key needed: a local vllm server takes none (if yours was started with --api-key, set "
        "VLLM_API_KEY to that key)"
    ) in added.output
    assert "note: set VLLM_API_KEY" not in added.output
    added = acx("-w", root, "teachers", "add", "laptop", "--preset", "ollama", "--model", "llama3")
    assert "no API key needed: a local ollama server takes none\n" in added.output
    added = acx("-w", root, "teachers", "add", "ds", "--preset", "deepseek")
    assert "note: set DEEPSEEK_API_KEY in the environment before using it" in added.output

    lines = {line.split()[0]: line for line in acx("-w", root, "teachers", "list").output.splitlines()}
    assert lines["box"].endswith("no key needed (a local vllm server)")
    assert lines["laptop"].endswith("no key needed (a local ollama server)")
    assert lines["ds"].endswith("key DEEPSEEK_API_KEY NOT SET")
    with_key = acx("-w", root, "teachers", "list", env={"VLLM_API_KEY": "k"}).output
    assert "key VLLM_API_KEY set" in with_key
    listed = json.loads(acx("-w", root, "teachers", "list", "--json").output)
    assert {t["name"]: t["key_needed"] for t in listed["teachers"]} == {"box": False, "laptop": False, "ds": True}


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_ping_reports_every_teacher_with_its_url_error_and_hint(root: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    down = f"http://127.0.0.1:{closed_port()}/v1"
    with FakeOpenAIServer(model="fake-model", api_key="the-right-key") as guarded:
        for args in (
            ("good", "--preset", "vllm", "--base-url", server.base_url, "--model", "fake-model"),
            ("down", "--preset", "vllm", "--base-url", down, "--model", "qwen"),
            ("nokey", "--preset", "deepseek", "--base-url", server.base_url, "--model", "fake-model"),
            ("wrong", "--preset", "openai", "--base-url", guarded.base_url, "--api-key-env", "WRONG_KEY"),
        ):
            acx("-w", root, "teachers", "add", *args)
        config = root / "arcticcodex.toml"
        pool = f'name = "pool"\npreset = "vllm"\nbase_url = "{server.base_url}"\nreplicas = ["{down}"]\nmodel = "m"\n'
        cloned = f'name = "cloned"\npreset = "openai"\nbase_url = "{guarded.base_url}"\napi_key_env = "GITHUB_TOKEN"\n'
        config.write_text(config.read_text() + f"\n[[teachers]]\n{pool}\n[[teachers]]\n{cloned}")
        acx("-w", root, "teachers", "trust", "pool")  # cloned stays untrusted

        result = acx("-w", root, "teachers", "ping", env={"WRONG_KEY": "nope", "GITHUB_TOKEN": "ghp_secret"}, code=1)
        lines = result.output.splitlines()
        assert f"good: {server.base_url}: serves fake-model" in lines
        assert any(line.startswith(f"down: {down}: FAILED: teacher down: ") for line in lines), lines
        assert (
            f"  hint: nothing usable answered at {down}: is the server running there? start it with `vllm serve qwen`"
        ) in result.output
        assert (
            f"nokey: {server.base_url}: FAILED: teacher nokey needs an API key: set DEEPSEEK_API_KEY" in result.output
        )
        assert f"wrong: {guarded.base_url}: FAILED: teacher wrong: HTTP 401" in result.output
        assert "  hint: the endpoint refused the key from $WRONG_KEY: check that it is the right, current key" in lines
        assert f"pool: {server.base_url}: serves fake-model; NOTE: 'm' is not among them" in lines
        assert any(line.startswith(f"pool: {down}: FAILED: ") for line in lines), "each replica is asked"
        assert f"cloned: {guarded.base_url}: NOT TRUSTED: teacher 'cloned' in {config} is not trusted" in result.output
        assert "`arcticcodex teachers trust cloned`" in result.output and "ghp_secret" not in result.output
        names = [line.split(":")[0] for line in lines if not line.startswith(" ")]
        assert names == ["good", "down", "nokey", "wrong", "pool", "pool", "cloned"], "every teacher, in order"
        (asked,) = guarded.requests  # the wrong key's; the untrusted entry got no request and no key
        assert asked.headers["authorization"] == "Bearer nope"


def test_ping_of_an_unknown_teacher_names_the_ones_there(root: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    acx(
        "-w",
        root,
        "teachers",
        "add",
        "good",
        "--preset",
        "vllm",
        "--base-url",
        server.base_url,
        "--model",
        "fake-model",
    )
    result = acx("-w", root, "teachers", "ping", "good", "ghost", code=1)
    assert f"no teacher named 'ghost' in {root / 'arcticcodex.toml'}; teachers there: good" in result.output
    assert server.requests == []


def test_ping_with_only_untrusted_entries_exits_2(root: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    config = root / "arcticcodex.toml"
    entry = f'name = "cloned"\npreset = "vllm"\nbase_url = "{server.base_url}"\nmodel = "fake-model"\n'
    config.write_text(config.read_text() + f"\n[[teachers]]\n{entry}")
    result = acx("-w", root, "teachers", "ping", code=2)
    assert f"cloned: {server.base_url}: NOT TRUSTED: teacher 'cloned' in {config} is not trusted" in result.output
    assert "`arcticcodex teachers trust cloned`" in result.output and server.requests == []
