"""all-MiniLM-L6-v2 run from its ONNX export: the same weights as the sentence-transformers backend, no torch.

Why: a fresh ``vault search`` process spent 7–10 s importing torch and sentence-transformers before
its first result, and ingest embedded about 12 chunks/s per core.  An ONNX runtime (OpenVINO or
onnxruntime) and the ``tokenizers`` library load in under a second and run the transformer faster on
a CPU.

The ONNX graph is exported once and kept in the user's cache, checked on every load
(:mod:`.onnx_cache`).

Tokenisation uses the model's own ``tokenizer.json`` (truncated at ``max_seq_length`` from
``sentence_bert_config.json``, 256 word pieces); pooling is the attention-masked mean of the last
hidden state and the result is L2-normalised, exactly as sentence-transformers' Pooling and Normalize
modules do it.  The backend's ``name`` is the model's name, as the sentence-transformers backend's is:
the vectors are the same model's (cosine ≥ 0.99 per text, tests/test_vault_onnx.py), so a vault
embedded by either can be searched by the other.

On the CPU the graph runs on OpenVINO when the package is installed (:mod:`.openvino_runtime`: bf16
where the CPU computes it natively, 2.3× torch's chunks/s per core with vectors at cosine ≥ 0.9999 to
fp32), and on onnxruntime otherwise, or when OpenVINO cannot load here (``runtime`` chooses; after the
first call it names the runtime in use).  :func:`.embeddings.backend_named` asks for OpenVINO only for
an import: onnxruntime starts faster and is ~100 MB lighter for a search's few short texts.

With ``int8`` the backend runs the export quantised to int8 (2.4× the chunks/s on one core; made once
from the verified fp32 file, cached under a key holding that file's digest, in a child process too).
Its vectors move (cosine about 0.99), so it carries a name of its own, ``all-MiniLM-L6-v2-int8``,
and has no fallback: nothing else makes its vectors.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..configsections import DEFAULT_EMBEDDING_MODEL
from ..errors import ConfigError
from .onnx_cache import OnnxExportError, OnnxModelCache, default_model_folder, model_cache_dir
from .openvino_runtime import OpenVinoSession, openvino_available

if TYPE_CHECKING:
    from .embeddings import EmbeddingBackend

# word pieces per onnxruntime call on a CPU: a 256-piece chunk runs alone, short texts (queries) share a call.
# Small calls keep the activations in the core's caches: on one core a 1,200-character chunk embeds 1.15×
# (fp32) to 1.18× (int8) faster alone than in batches of 64 (benchmarks/cold_start.py).
CPU_TOKEN_BUDGET = 256
CUDA_TOKEN_BUDGET = 64 * 256  # a GPU wants large calls
DEVICES = ("cpu", "cuda")
RUNTIMES = ("auto", "onnxruntime", "openvino")  # auto: OpenVINO on the CPU when it is installed (openvino_runtime.py)
INT8_SUFFIX = "-int8"  # the default model's name with it: the int8 variant (embeddings.backend_named)


def onnxruntime_available() -> bool:
    """Whether onnxruntime is installed (found, not imported: choosing a backend must stay cheap)."""
    return importlib.util.find_spec("onnxruntime") is not None


def onnxruntime_cuda_available() -> bool:
    """Whether the installed onnxruntime can run on a CUDA device (onnxruntime-gpu's provider)."""
    if not onnxruntime_available():
        return False
    import onnxruntime  # type: ignore[import-untyped]

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def token_batches(lengths: Sequence[int], token_budget: int, max_rows: int) -> list[list[int]]:
    """Indices of ``lengths`` in calls of at most ``max_rows`` rows whose padded size stays in the budget.

    Longest first, so each call pads its rows to nearly their own length; a row longer than the budget
    goes alone.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for index in order:
        current = batches[-1] if batches else None
        # sorted longest first: the call's first row sets its padded width
        if current is not None and len(current) < max_rows and (len(current) + 1) * lengths[current[0]] <= token_budget:
            current.append(index)
        else:
            batches.append([index])
    return batches


class OnnxMiniLMBackend:
    """A BERT-style sentence-transformers model (mean pooling, normalised) run from its ONNX export.

    Loaded lazily on the first call.  ``threads`` caps onnxruntime's intra-op threads (None: its
    default, one per physical core).  ``device`` "cuda" runs the graph on onnxruntime's CUDA provider
    (onnxruntime-gpu), in calls of up to ``batch_size`` texts; on the CPU a call holds at most
    :data:`CPU_TOKEN_BUDGET` word pieces.  Without a usable export (the export's libraries are missing or
    it fails) and a ``fallback`` given, the fallback embeds instead: it must be the same model's.
    """

    def __init__(
        self,
        model_folder: Path | None = None,
        *,
        name: str = DEFAULT_EMBEDDING_MODEL,
        cache: OnnxModelCache | None = None,
        threads: int | None = None,
        batch_size: int = 64,
        fallback: EmbeddingBackend | None = None,
        onnx_file: Path | None = None,
        device: str = "cpu",
        token_budget: int | None = None,
        int8: bool = False,
        runtime: str = "auto",
    ) -> None:
        if device not in DEVICES:
            raise ConfigError(f"device {device!r}: use one of {', '.join(DEVICES)}")
        if runtime not in RUNTIMES:
            raise ConfigError(f"embedding runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
        if runtime == "openvino" and (device == "cuda" or int8 or onnx_file is not None):
            raise ConfigError("the OpenVINO runtime runs the fp32 export on the CPU only; use runtime onnxruntime")
        self.device = device
        self.runtime = runtime  # after the first call: the one in use, "onnxruntime" or "openvino"
        self._int8 = int8
        self._token_budget = token_budget or (CUDA_TOKEN_BUDGET if device == "cuda" else CPU_TOKEN_BUDGET)
        self._onnx_file = onnx_file  # a graph made elsewhere (a benchmark's int8 variant), used as given
        self._model_folder = model_folder
        self._name = name
        self.cache = cache if cache is not None else OnnxModelCache(model_cache_dir())
        self._threads = threads
        self._batch_size = batch_size
        self._fallback = fallback
        self._session: Any = None
        self._tokenizer: Any = None
        self._pad_id = 0
        self._dimensions: int | None = None
        self._use_fallback = False
        self._lock = threading.RLock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            config = json.loads((self._folder() / "config.json").read_text(encoding="utf-8"))
            self._dimensions = int(config["hidden_size"])
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        with self._lock:  # a fast tokenizer refuses two threads at once ("Already borrowed")
            self._load()
            if self._fallback is not None and self._use_fallback:
                return np.ascontiguousarray(self._fallback.embed(texts), dtype=np.float32)
            stripped = [str(text).strip() for text in texts]  # as sentence-transformers' Transformer does
            encodings = self._tokenizer.encode_batch(stripped)  # truncated, not padded: padded per call
            out = np.empty((len(stripped), self.dimensions), dtype=np.float32)
            lengths = [len(encoding.ids) for encoding in encodings]
            for rows in token_batches(lengths, self._token_budget, self._batch_size):
                out[rows] = self._embed_batch([encodings[i] for i in rows])
        return out

    def _embed_batch(self, encodings: list[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)  # padded on the right: the fused attention needs it
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
            types[row, : len(encoding.ids)] = encoding.type_ids
        hidden: np.ndarray = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )[0]
        weights = mask[:, :, None].astype(np.float32)  # sentence-transformers' Pooling (mean of real tokens)
        pooled: np.ndarray = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)  # its Normalize (torch's F.normalize eps)
        unit: np.ndarray = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def _folder(self) -> Path:
        if self._model_folder is None:
            self._model_folder = default_model_folder()
        return self._model_folder

    def _load(self) -> None:
        if self._session is not None or self._use_fallback:
            return
        folder = self._folder()
        try:
            base = self._name.removesuffix(INT8_SUFFIX) if self._int8 else self._name  # the fp32 export's
            onnx_path = self._onnx_file or self.cache.path_for(base, folder, int8=self._int8)
        except OnnxExportError:
            if self._fallback is None:
                raise
            self._use_fallback = True
            return
        from tokenizers import Tokenizer

        session = self._openvino_session(onnx_path)
        if session is None:
            session = self._onnxruntime_session(onnx_path)
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=_max_seq_length(folder))
        tokenizer.no_padding()  # tokenizer.json may ask for padding: each call is padded by _embed_batch
        self._pad_id = tokenizer.token_to_id("[PAD]") or 0
        self._tokenizer = tokenizer
        self._session = session

    def _openvino_session(self, onnx_path: Path) -> Any:
        """OpenVINO's session where it is wanted and works; None means onnxruntime (see openvino_runtime.py)."""
        wanted = self.runtime == "openvino" or (
            self.runtime == "auto"
            and self.device == "cpu"
            and not self._int8
            and self._onnx_file is None
            and openvino_available()
        )
        if not wanted:
            return None
        try:
            session = OpenVinoSession(onnx_path, threads=self._threads)
        except (ImportError, RuntimeError, OSError):
            if self.runtime == "openvino":
                raise
            return None  # an OpenVINO that cannot load here: onnxruntime runs the same graph
        self.runtime = "openvino"
        return session

    def _onnxruntime_session(self, onnx_path: Path) -> Any:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if self._threads is not None:
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no notes on the console of a search
        providers = ["CPUExecutionProvider"]
        if self.device == "cuda":
            providers.insert(0, "CUDAExecutionProvider")
        session = onnxruntime.InferenceSession(str(onnx_path), options, providers=providers)
        if self.device == "cuda" and "CUDAExecutionProvider" not in session.get_providers():
            raise ConfigError("onnxruntime found no CUDA device for the embedding model; use the CPU")
        self.runtime = "onnxruntime"
        return session


def _max_seq_length(folder: Path) -> int:
    """sentence-transformers' truncation length (tokenizer.json's own says 128; the model uses 256)."""
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        value = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    return 256
