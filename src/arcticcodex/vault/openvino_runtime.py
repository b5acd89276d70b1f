"""OpenVINO as the CPU runtime of the exported embedding graph: bf16 where the CPU computes it natively.

The graph is the very file onnxruntime runs (:mod:`.onnx_export`); OpenVINO's ONNX reader knows
onnxruntime's fused operators (``Attention``, ``EmbedLayerNormalization``, ``SkipLayerNormalization``).
On a CPU that computes bf16 natively (AVX-512 BF16 or AMX; OpenVINO's own capability list says) it
multiplies in bf16 and accumulates in fp32: on this project's development machine (an AMD EPYC Zen 4
core) 29 chunks per CPU second against 14.4 for onnxruntime fp32 and 12.2 for torch, vectors at
cosine ≥ 0.9999 to fp32 (``benchmarks/README.md``, ``benchmarks/cold_start.py``); elsewhere it runs
fp32.  :class:`~.onnx_minilm.OnnxMiniLMBackend` uses it on the CPU whenever the ``openvino`` package
imports and compiles the graph, and onnxruntime otherwise: the opt-in int8 graph (onnxruntime's own
quantised operators) and CUDA stay on onnxruntime.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OpenVinoSession", "openvino_available"]


def openvino_available() -> bool:
    """Whether the ``openvino`` package is installed (found without importing it)."""
    return importlib.util.find_spec("openvino") is not None


class OpenVinoSession:
    """The graph compiled for the CPU, answering ``run(None, feeds)`` as an onnxruntime session does.

    One inference request, reused: not thread-safe (the backend calls it under its lock).
    """

    def __init__(self, onnx_path: Path, *, threads: int | None = None) -> None:
        import openvino

        core = openvino.Core()
        capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        self.precision = "bf16" if "BF16" in capabilities else "f32"
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": self.precision, "PERFORMANCE_HINT": "LATENCY"}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = core.compile_model(core.read_model(str(onnx_path)), "CPU", config)
        self._request = compiled.create_infer_request()

    def run(self, _outputs: None, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        self._request.infer(dict(feeds))
        # a copy: the request reuses its output buffer on the next call
        return [np.array(self._request.get_output_tensor(0).data, dtype=np.float32)]
