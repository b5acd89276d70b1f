"""A model folder served on 127.0.0.1 through an OpenAI-compatible endpoint, by ``transformers serve``.

Why a server and not an in-process ``generate``: the student is then reached exactly as a served
student is on a rented GPU (vLLM with ``--enable-lora``) — through the teacher client, its request
cache, ledger, budget and retries — so an evaluation measures the model, never a second code path.
``transformers serve`` (the ``transformers[serving]`` extra: FastAPI and uvicorn) loads a full
model folder by path with no download (``HF_HUB_OFFLINE=1``), in its own process, bound to the
loopback address only, on a free port; it is stopped (and waited for) when the evaluation ends,
whatever happens.  It does not load a PEFT adapter folder (it reads the folder's ``config.json``
first), so an adapter — what ``arcticcodex train`` writes by default — is merged into its base model
(named in ``adapter_config.json``, which must be on this machine) in a temporary folder, and that
is served: the same weights vLLM applies with ``--enable-lora``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError, TeacherUnavailableError
from ..teachers.entries import TeacherConfig

__all__ = [
    "HOST",
    "SERVED_TIMEOUT_S",
    "SERVE_TIMEOUT_S",
    "is_model_folder",
    "merge_adapter",
    "serve_folder",
    "served_teacher",
]

HOST = "127.0.0.1"
SERVE_TIMEOUT_S = 180.0
SERVED_TIMEOUT_S = 300.0  # a CPU writing a long answer is slow; the server is ours, on loopback
_MODEL_FILES = ("config.json", "adapter_config.json")


def is_model_folder(path: Path) -> bool:
    """A full model (``config.json``) or a PEFT adapter (``adapter_config.json``), or a training output
    folder holding one in ``model/``."""
    return path.is_dir() and any((path / name).is_file() for name in _MODEL_FILES)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _command(folder: Path, port: int) -> list[str]:
    found = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers")
    if found is None:
        raise ConfigError(
            f"serving the model folder {folder} needs `transformers serve`, which is not installed here: "
            "install the serving extra (pip install 'transformers[serving]'), or serve the model yourself "
            "(vLLM, any OpenAI-compatible server) and add it with "
            "`arcticcodex teachers add NAME --preset vllm --base-url URL --model MODEL`",
            parameters=["student"],
        )
    return [
        found,
        "serve",
        str(folder),
        "--host",
        HOST,
        "--port",
        str(port),
        "--device",
        "cpu",
        "--log-level",
        "warning",
    ]


@contextlib.contextmanager
def serve_folder(
    folder: Path, *, timeout_s: float = SERVE_TIMEOUT_S, log: Path | None = None
) -> Iterator[tuple[str, str]]:
    """Serve ``folder`` for the ``with`` block; yields the base URL (``http://127.0.0.1:PORT/v1``) and the
    model name to ask for (the folder served: a merged adapter's is a temporary one)."""
    folder = folder.resolve()
    with contextlib.ExitStack() as scratch:
        if not (folder / "config.json").is_file():
            merged = Path(scratch.enter_context(tempfile.TemporaryDirectory(prefix="acx-eval-merged-")))
            folder = merge_adapter(folder, merged)
        yield from _served(folder, timeout_s, log)


def served_teacher(name: str, base_url: str, model: str) -> TeacherConfig:
    """How a folder served by :func:`serve_folder` is asked: through the teacher client, in prose (a
    student answers as it was trained, not in the drafting protocol's JSON), one answer at a time.
    Keyless: our own loopback server is sent no key (not even a VLLM_API_KEY set for a real vLLM)."""
    return TeacherConfig(
        name=name,
        preset="vllm",  # an OpenAI-compatible server of ours; api_key_env stays None
        model=model,
        base_url=base_url,
        timeout=SERVED_TIMEOUT_S,
        concurrency=1,  # one CPU process generates one answer at a time
        response_format="none",
    )


def merge_adapter(adapter: Path, into: Path) -> Path:
    """The adapter in ``adapter`` merged into its base model, saved (with the adapter's tokenizer) to ``into``."""
    try:
        from peft import AutoPeftModelForCausalLM
        from transformers import AutoTokenizer

        from ..training.trainer import libraries_quiet
    except ImportError:
        # from None: the ImportError adds nothing the message does not already say
        raise ConfigError(
            f"{adapter} is a LoRA adapter; serving it here merges it into its base model, which needs the "
            "train extra: pip install 'arcticcodex[train]'",
            parameters=["student"],
        ) from None
    with libraries_quiet():  # their notices and bars about each other's calls are not the user's to act on
        try:
            model = AutoPeftModelForCausalLM.from_pretrained(str(adapter))
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"{adapter} is a LoRA adapter whose base model could not be loaded ({error}); the base model "
                "named in its adapter_config.json must be on this machine",
                parameters=["student"],
            ) from error
        model.merge_and_unload().save_pretrained(str(into))
        AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(str(into))
    return into


def _served(folder: Path, timeout_s: float, log: Path | None) -> Iterator[tuple[str, str]]:
    port = _free_port()
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(log.open("ab")) if log is not None else subprocess.DEVNULL
        process = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
            _command(folder, port), stdout=sink, stderr=subprocess.STDOUT, env=environment, stdin=subprocess.DEVNULL
        )
        try:
            _wait_until_ready(process, port, folder, timeout_s)
            yield f"http://{HOST}:{port}/v1", str(folder)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_ready(process: subprocess.Popen[bytes], port: int, folder: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TeacherUnavailableError(
                f"`transformers serve` could not serve the model folder {folder} (it exited with status "
                f"{process.returncode}); check that the folder holds a model or an adapter whose base model is "
                "on this machine",
                teacher=str(folder),
            )
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.25)
    raise TeacherUnavailableError(
        f"`transformers serve` did not answer on {HOST}:{port} within {timeout_s:g} s while loading {folder}",
        teacher=str(folder),
    )
