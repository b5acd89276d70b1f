"""Where ingest embeds: ``vault import --device auto|cpu|cuda`` and the backends a device gets.

This machine has no CUDA device (and CI neither): the refusal of ``--device cuda`` and ``auto``'s fall
back to the CPU are checked for real where no device is found, and with the detection answering "none"
where one is.  The CUDA backends are checked as built, not run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from arcticcodex.errors import ConfigError
from arcticcodex.vault import embeddings as embeddings_module
from arcticcodex.vault.embeddings import (
    DEFAULT_MODEL,
    INT8_MODEL,
    HashingBackend,
    SentenceTransformerBackend,
    backend_named,
    cuda_runtime,
    resolve_device,
)
from arcticcodex.vault.onnx_minilm import CPU_TOKEN_BUDGET, OnnxMiniLMBackend, token_batches
from conftest import Acx, hashing_docs_workspace

no_cuda_here = pytest.mark.skipif(cuda_runtime() is not None, reason="a CUDA device is present")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root, docs = hashing_docs_workspace(tmp_path)
    (docs / "otters.md").write_text("# Otters\n\nOtters eat mostly fish.\n")
    return root


def _documents(acx: Acx, root: Path) -> list[dict[str, object]]:
    documents: list[dict[str, object]] = json.loads(acx("-w", root, "vault", "docs", "--json").stdout)
    return documents


@pytest.mark.parametrize("detected", ["real", "none"])
def test_device_cuda_without_a_device_is_refused_before_anything_is_imported(
    root: Path, acx: Acx, monkeypatch: pytest.MonkeyPatch, detected: str
) -> None:
    if detected == "none":
        monkeypatch.setattr(embeddings_module, "cuda_runtime", lambda: None)
    elif cuda_runtime() is not None:
        pytest.skip("a CUDA device is present")
    refused = acx("-w", root, "vault", "import", root / "docs", "--device", "cuda", code=2)
    assert "Error: device cuda: no CUDA device is available here" in refused.stderr
    assert "use `--device cpu`, or `--device auto`" in refused.stderr
    assert refused.stdout == ""
    assert _documents(acx, root) == []


@no_cuda_here
def test_device_auto_falls_back_to_the_cpu(root: Path, acx: Acx) -> None:
    done = acx("-w", root, "vault", "import", root / "docs")  # --device auto is the default
    assert "embedding on the CPU (--device auto)" in done.stderr
    assert "1 added" in done.stdout
    assert [doc["source"] for doc in _documents(acx, root)] == ["docs/otters.md"]
    explicit = acx("-w", root, "vault", "import", root / "docs", "--device", "cpu")
    assert "embedding on" not in explicit.stderr and "1 unchanged" in explicit.stdout


def test_device_auto_chooses_cuda_when_a_runtime_sees_one(
    root: Path, acx: Acx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embeddings_module, "cuda_runtime", lambda: "torch")
    done = acx("-w", root, "vault", "import", root / "docs")
    assert "embedding on a CUDA device (--device auto)" in done.stderr and "1 added" in done.stdout


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings_module, "cuda_runtime", lambda: None)
    assert resolve_device("cpu") == "cpu" and resolve_device("auto") == "cpu"
    with pytest.raises(ConfigError, match="device cuda: no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="'tpu': use one of auto, cpu, cuda"):
        resolve_device("tpu")
    monkeypatch.setattr(embeddings_module, "cuda_runtime", lambda: "onnxruntime")
    assert resolve_device("cuda") == "cuda" and resolve_device("auto") == "cuda"
    assert resolve_device("cpu") == "cpu"


def test_a_cuda_device_gets_a_cuda_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """Built, not run: onnxruntime's CUDA provider for the default model when it has one, else torch's."""
    monkeypatch.setattr(embeddings_module, "onnxruntime_cuda_available", lambda: True)
    on_onnx = backend_named(DEFAULT_MODEL, device="cuda")
    assert isinstance(on_onnx, OnnxMiniLMBackend) and on_onnx.device == "cuda" and on_onnx.name == DEFAULT_MODEL
    other = backend_named("sentence-transformers/all-mpnet-base-v2", device="cuda")
    assert isinstance(other, SentenceTransformerBackend) and other._device == "cuda"
    monkeypatch.setattr(embeddings_module, "onnxruntime_cuda_available", lambda: False)
    on_torch = backend_named(DEFAULT_MODEL, device="cuda")
    assert isinstance(on_torch, SentenceTransformerBackend) and on_torch._device == "cuda"
    assert isinstance(backend_named("hashing-16", device="cuda"), HashingBackend)
    with pytest.raises(ConfigError, match="resolve it to cpu or cuda first"):
        backend_named(DEFAULT_MODEL, device="auto")
    with pytest.raises(ConfigError, match="device 'gpu': use one of cpu, cuda"):
        OnnxMiniLMBackend(device="gpu")


@pytest.mark.parametrize("budget", [1, 40, CPU_TOKEN_BUDGET, 4096])
def test_token_batches_keep_each_call_within_its_budget(budget: int) -> None:
    lengths = [256, 12, 9, 256, 30, 130, 7, 7, 64, 250, 3, 128, 128, 2]
    batches = token_batches(lengths, budget, max_rows=4)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))  # each text once
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(lengths, reverse=True)  # longest first: a call pads to about its own length
    for batch in batches:
        assert len(batch) <= 4
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= budget
    if budget == CPU_TOKEN_BUDGET:
        assert [len(b) for b in batches] == [1, 1, 1, 1, 2, 4, 4]  # 256-piece chunks alone, short ones shared


@no_cuda_here
def test_the_gpu_benchmark_exits_1_naming_the_missing_device() -> None:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).parents[1] / "benchmarks" / "ingest_gpu.py"), "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "ingest_gpu: no CUDA device to measure (device cuda: no CUDA device is available here" in done.stderr
    assert done.stdout == ""


def test_the_int8_model_stays_on_the_cpu(root: Path, acx: Acx, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CUDA device present: auto embeds the int8 model on the CPU, and --device cuda is refused for it."""
    monkeypatch.setattr(embeddings_module, "cuda_runtime", lambda: "torch")
    assert resolve_device("auto", INT8_MODEL) == "cpu" and resolve_device("auto", DEFAULT_MODEL) == "cuda"
    config = root / "arcticcodex.toml"
    config.write_text(config.read_text().replace('"hashing-64"', f'"{INT8_MODEL}"'))
    refused = acx("-w", root, "vault", "import", root / "docs", "--device", "cuda", code=2)
    assert f"device cuda: {INT8_MODEL} runs on the CPU only; use `--device cpu`" in refused.stderr
    assert _documents(acx, root) == []
    with pytest.raises(ConfigError, match="runs on onnxruntime on the CPU only"):
        backend_named(INT8_MODEL, device="cuda")


def test_the_device_setting_is_the_default_and_a_refusal_names_it(
    root: Path, acx: Acx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embeddings_module, "cuda_runtime", lambda: None)
    config = root / "arcticcodex.toml"
    config.write_text(
        config.read_text().replace('embedding_model = "hashing-64"', 'embedding_model = "hashing-64"\ndevice = "cuda"')
    )
    refused = acx("-w", root, "vault", "import", root / "docs", code=2)
    assert "no CUDA device is available here" in refused.stderr
    assert f"[vault] device = 'cuda' in {config}; change it there" in refused.stderr
    assert _documents(acx, root) == []
    done = acx("-w", root, "vault", "import", root / "docs", "--device", "cpu")  # the option wins
    assert "1 added" in done.stdout
