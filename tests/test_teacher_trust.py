"""A cloned repository's arcticcodex.toml must not be able to send the user's secrets anywhere.

The attacker's "teacher" is a real HTTP server on 127.0.0.1 (the fake OpenAI server), so the tests
can see that nothing reached it: no connection, no request, no key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result

from arcticcodex.teachers.trust import TrustedTeachers
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer

SECRET = "ghp_the-users-github-token-0123456789"


@pytest.fixture
def attacker() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(model="fake-model") as server:
        yield server


def cloned_repository(tmp_path: Path, teacher: str) -> Path:
    """A folder as `git clone` leaves it: a workspace with a teacher entry its author wrote."""
    workspace, _ = Workspace.init(tmp_path / "clone")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n\n[[teachers]]\n' + teacher)
    (workspace.root / "src").mkdir()
    (workspace.root / "answer.txt").write_text("Otters eat fish.")
    return workspace.root


def run_inside(acx: Acx, folder: Path, *args: str, monkeypatch: pytest.MonkeyPatch, code: int = 0) -> Result:
    """Run a command from inside the folder (the workspace is found by walking upwards), the user's token set."""
    monkeypatch.chdir(folder)
    return acx(*args, code=code, env={"GITHUB_TOKEN": SECRET})


def evil_entry(url: str, key: str = 'api_key_env = "GITHUB_TOKEN"') -> str:
    return f'name = "helper"\npreset = "openai"\nbase_url = "{url}"\nmodel = "fake-model"\n{key}\n'


@pytest.mark.parametrize(
    "command",
    [
        ["teachers", "ping"],
        ["refine", "../answer.txt"],
        ["distill", "--prompts", "../prompts.jsonl", "--out", "../out", "--teachers", "helper"],
        ["ask", "What do otters eat?", "--model", "helper"],
    ],
    ids=["teachers ping", "refine", "distill", "ask"],
)
def test_a_cloned_teacher_entry_gets_no_key_and_no_request(
    tmp_path: Path, attacker: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, command: list[str], acx: Acx
) -> None:
    root = cloned_repository(tmp_path, evil_entry(attacker.base_url))
    (root / "prompts.jsonl").write_text('{"instruction": "What do otters eat?", "evidence": "Otters eat fish."}\n')
    run_inside(acx, root, "keys", "new", "dataset", monkeypatch=monkeypatch)
    result = run_inside(acx, root / "src", *command, monkeypatch=monkeypatch, code=2)
    assert f"teacher 'helper' in {root / 'arcticcodex.toml'} is not trusted" in result.output
    assert f"to {attacker.base_url} with the key from $GITHUB_TOKEN; nothing was sent" in result.output
    assert "`arcticcodex teachers trust helper`" in result.output
    assert SECRET not in result.output
    assert attacker.connections == 0 and attacker.requests == []


def test_trusting_the_entry_is_what_lets_it_have_the_key(
    tmp_path: Path, attacker: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, acx: Acx
) -> None:
    root = cloned_repository(tmp_path, evil_entry(attacker.base_url))
    listed = run_inside(acx, root, "teachers", "list", monkeypatch=monkeypatch).output
    assert "NOT TRUSTED (run `arcticcodex teachers trust helper`)" in listed
    trusted = run_inside(acx, root, "teachers", "trust", "helper", monkeypatch=monkeypatch)
    assert f"trusted teacher 'helper': requests go to\n  {attacker.base_url}   (host 127.0.0.1)" in trusted.output
    assert "key from    $GITHUB_TOKEN" in trusted.output
    assert TrustedTeachers.for_user().path.parent == Path(os.environ["ARCTICCODEX_CONFIG_DIR"])

    pinged = run_inside(acx, root, "teachers", "ping", monkeypatch=monkeypatch)
    assert f"helper: {attacker.base_url}: serves fake-model" in pinged.output
    (request,) = attacker.requests
    assert request.headers["authorization"] == f"Bearer {SECRET}"  # sent, now that the user said so

    # the same entry pointed elsewhere afterwards is a new entry: no trust carried over
    config = root / "arcticcodex.toml"
    config.write_text(config.read_text().replace(attacker.base_url, attacker.base_url.replace("/v1", "/v2")))
    result = run_inside(acx, root, "teachers", "ping", monkeypatch=monkeypatch, code=2)
    assert f"teacher 'helper' in {config} is not trusted" in result.output
    assert "`arcticcodex teachers trust helper`" in result.output
    assert len(attacker.requests) == 1

    config.write_text(config.read_text().replace("/v2", "/v1"))
    run_inside(acx, root, "teachers", "untrust", "helper", monkeypatch=monkeypatch)
    untrusted = run_inside(acx, root, "teachers", "ping", monkeypatch=monkeypatch, code=2)
    assert f"teacher 'helper' in {config} is not trusted" in untrusted.output
    assert len(attacker.requests) == 1


def test_a_model_change_keeps_trust_but_a_key_source_change_does_not(
    tmp_path: Path, attacker: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, acx: Acx
) -> None:
    root = cloned_repository(tmp_path, evil_entry(attacker.base_url, 'api_key_env = "HELPER_KEY"'))
    run_inside(acx, root, "teachers", "trust", "helper", monkeypatch=monkeypatch)
    config = root / "arcticcodex.toml"
    config.write_text(config.read_text().replace('model = "fake-model"', 'model = "fake-model"\ntimeout = 30'))
    monkeypatch.setenv("HELPER_KEY", "k")
    pinged = run_inside(acx, root, "teachers", "ping", monkeypatch=monkeypatch)
    assert f"helper: {attacker.base_url}: serves fake-model" in pinged.output
    config.write_text(config.read_text().replace("HELPER_KEY", "GITHUB_TOKEN"))
    refused = run_inside(acx, root, "teachers", "ping", monkeypatch=monkeypatch, code=2)
    assert f"teacher 'helper' in {config} is not trusted" in refused.output
    assert "with the key from $GITHUB_TOKEN; nothing was sent" in refused.output
    assert [r.headers["authorization"] for r in attacker.requests] == ["Bearer k"]


def test_entries_the_cli_writes_are_trusted(tmp_path: Path, attacker: FakeOpenAIServer, acx: Acx) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    add = ["teachers", "add", "mine", "--preset", "vllm", "--base-url", attacker.base_url, "--model", "fake-model"]
    result = acx("-w", workspace.root, *add)
    assert "trusted" in result.output
    result = acx("-w", workspace.root, "teachers", "ping")
    assert "serves fake-model" in result.output


@pytest.mark.parametrize(
    "key_file",
    ["{outside}/stolen", "../{outside_name}/stolen", "~/.ssh/id_ed25519", ".arcticcodex/gpu/keys/link"],
    ids=["absolute", "relative, up", "home", "symlink out of the data folder"],
)
def test_a_key_file_outside_the_data_and_config_folders_is_refused(
    tmp_path: Path, attacker: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, key_file: str, acx: Acx
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "stolen").write_text("the content of someone's private file\n")
    (outside / "stolen").chmod(0o600)
    named = key_file.format(outside=outside, outside_name="../outside")
    root = cloned_repository(tmp_path, evil_entry(attacker.base_url, f'api_key_file = "{named}"'))
    keys = root / ".arcticcodex" / "gpu" / "keys"
    keys.mkdir(parents=True)
    (keys / "link").symlink_to(outside / "stolen")
    result = run_inside(acx, root, "teachers", "ping", monkeypatch=monkeypatch, code=1)
    assert f"teacher 'helper': api_key_file {Path(named).expanduser()} resolves to " in result.output
    assert "outside the workspace's data folder" in result.output and "move the key file" in result.output
    assert "private file" not in result.output and attacker.requests == []


@pytest.mark.parametrize("data_dir", ["../../.ssh", "/home/someone/.ssh"])
def test_a_data_folder_written_outside_the_workspace_is_refused(tmp_path: Path, data_dir: str, acx: Acx) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text().replace('data_dir = ".arcticcodex"', f'data_dir = "{data_dir}"'))
    result = acx("-w", workspace.root, "teachers", "list", code=1)
    assert f"[workspace] data_dir '{data_dir}' leaves the workspace; write it as a folder inside it" in result.output


def test_a_data_folder_the_user_linked_to_another_disk_still_works(tmp_path: Path, acx: Acx) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    big_disk = tmp_path / "big" / "data"
    big_disk.parent.mkdir()
    workspace.data_dir.rename(big_disk)
    workspace.data_dir.symlink_to(big_disk)
    result = acx("-w", workspace.root, "vault", "stats")
    assert result.output.startswith("documents        0\n")  # the database behind the link was opened


def test_trusting_an_entry_whose_key_file_lies_outside_the_workspace_says_so(tmp_path: Path, acx: Acx) -> None:
    key = tmp_path / "user-config" / "keys" / "remote.key"
    key.parent.mkdir(parents=True)
    key.write_text("sk-remote\n")
    key.chmod(0o600)
    root = cloned_repository(tmp_path, evil_entry("https://api.example.com/v1", f'api_key_file = "{key}"'))
    result = acx("-w", root, "teachers", "trust", "helper")
    assert "host api.example.com" in result.output
    assert f"key from    file {key}" in result.output and "the key file lies outside this workspace" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("x = " + "[" * 100_000 + "]" * 100_000 + "\n", "nests arrays or tables too deeply"),
        ("# " + "x" * (2 << 20) + "\n", "over the 1,048,576-byte limit"),
        ("name = '\udcff'\n", "is not UTF-8 text"),
    ],
    ids=["100k-deep array", "2 MB", "not UTF-8"],
)
def test_a_hostile_configuration_is_a_clear_error(tmp_path: Path, content: str, message: str, acx: Acx) -> None:
    root = tmp_path / "clone"
    root.mkdir()
    (root / "arcticcodex.toml").write_bytes(content.encode("utf-8", "surrogateescape"))
    result = acx("-w", root, "teachers", "list", code=1)
    assert message in result.stderr, result.stderr
    assert str(root / "arcticcodex.toml") in result.output
