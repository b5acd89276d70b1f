"""Shared fixtures: a clean environment for every test, a fresh workspace on demand, and the command line."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

from arcticcodex.cli import cli
from arcticcodex.workspace import Workspace
from fakes.openai_server import FakeOpenAIServer
from fakes.vast_server import FakeVastServer

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=300)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(scope="session", autouse=True)
def private_user_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Not even a module-scoped fixture records trust in the developer's own config folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCTICCODEX_CONFIG_DIR", str(tmp_path_factory.mktemp("user-config")))
        yield


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's workspace, keys or debugging switches."""
    for name in list(os.environ):
        if name.startswith(("ARCTICCODEX_", "DEEPSEEK_", "OPENAI_", "VAST_")):
            monkeypatch.delenv(name, raising=False)
    # trust decisions (trusted keys, trusted teacher entries) go to a folder of the test's own
    monkeypatch.setenv("ARCTICCODEX_CONFIG_DIR", str(tmp_path / "user-config"))
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws, _ = Workspace.init(tmp_path / "ws")
    return ws


def hashing_docs_workspace(tmp_path: Path) -> tuple[Path, Path]:
    """(root, docs folder) of a fresh workspace whose vault embeds with hashing-64 (no model to load)."""
    workspace, _ = Workspace.init(tmp_path / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    docs = workspace.root / "docs"
    docs.mkdir()
    return workspace.root, docs


# -- the command line, in this process ----------------------------------------------------------------------


class Acx:
    """``acx ARGS…`` run in this process: click's CliRunner with ``catch_exceptions=False``.

    Why the one helper: a runner that catches exceptions turns a crash into exit status 1, so a
    failure case that checks only the status (or that "Traceback" is missing from output the runner
    never prints a traceback into) passes on a crash.  Here an exception escapes and fails the test
    with its own traceback, and every call names the exit status it expects (``code``, 0 unless
    given), printing both streams when it differs.  The result keeps ``stdout``, ``stderr`` and
    ``output`` (the two interleaved) apart, so a failure case checks its message on the stream it is
    written to.  Arguments may be paths; ``input`` is standard input, ``env`` extra environment.
    """

    def __call__(
        self,
        *args: str | Path,
        code: int = 0,
        input: str | bytes | None = None,
        env: Mapping[str, str | None] | None = None,
        color: bool = False,
    ) -> Result:
        arguments = [str(argument) for argument in args]
        result = CliRunner().invoke(cli, arguments, input=input, env=env, color=color, catch_exceptions=False)
        assert result.exit_code == code, (
            f"acx {' '.join(arguments)}: exit status {result.exit_code}, expected {code}\n"
            f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
        )
        return result

    def add_teacher(self, root: Path, server: FakeOpenAIServer, *, name: str = "t", model: str = "m") -> Result:
        """``teachers add NAME --preset vllm`` pointed at ``server``: a trusted teacher every role uses."""
        return self(
            "-w", root, "teachers", "add", name, "--preset", "vllm", "--base-url", server.base_url, "--model", model
        )


@pytest.fixture(scope="session")
def acx() -> Acx:
    """The command line (session-scoped: it holds no state, and Hypothesis tests may use it too)."""
    return Acx()


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    """A fresh fake OpenAI-compatible server on 127.0.0.1 serving "fake-model" (steer it with ``script``/``inject``)."""
    with FakeOpenAIServer(model="fake-model") as fake:
        yield fake


# -- GPU: the fake Vast.ai API, whose instances run a real SSH server and the fake OpenAI server as vLLM --------

VAST_KEY = "vast-secret-key-0123456789"
VLLM_KEY = "vllm-secret-key-9876543210"
GPU_MODEL = "Qwen/Qwen2.5-7B-Instruct"


@pytest.fixture
def vllm() -> Iterator[FakeOpenAIServer]:
    """The model server inside every fake instance, guarded by the key the workspace gives vLLM."""
    with FakeOpenAIServer(model=GPU_MODEL, api_key=VLLM_KEY) as server:
        yield server


@pytest.fixture
def vast(vllm: FakeOpenAIServer) -> Iterator[FakeVastServer]:
    with FakeVastServer(api_key=VAST_KEY, vllm_port=vllm.port, boot_seconds=(0.1, 0.3)) as server:
        yield server


@pytest.fixture
def gpu_workspace(tmp_path: Path, vast: FakeVastServer, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A workspace pointed at the fake Vast (fast polling), with the vLLM key the fake vLLM expects."""
    monkeypatch.setenv("VAST_API_KEY", VAST_KEY)
    monkeypatch.setenv("VAST_URL", vast.url)
    return make_gpu_workspace(tmp_path / "ws")


def make_gpu_workspace(root: Path) -> Workspace:
    workspace, _ = Workspace.init(root)
    with workspace.config.path.open("a", encoding="utf-8") as handle:
        handle.write("\n[gpu]\npoll_interval_s = 0.05\nboot_timeout_s = 5\nvllm_timeout_s = 5\n")
    keys = workspace.data_dir / "gpu" / "keys"
    keys.mkdir(parents=True, mode=0o700)
    (keys / "gpu.key").write_text(VLLM_KEY + "\n")
    (keys / "gpu.key").chmod(0o600)
    return Workspace.open(workspace.root)
