"""The one-time export of a BERT-style sentence-transformers model folder to ONNX, run as a subprocess.

:mod:`.onnx_minilm` runs this module with ``python -m`` when its cache holds no verified export, so that
the process that searches never imports torch or transformers: the export imports both (about 10 s),
writes one file and exits, and its memory goes with it. The graph is the bare transformer
(``input_ids``, ``attention_mask``, ``token_type_ids`` → ``last_hidden_state``, batch and sequence
length dynamic) with onnxruntime's BERT fusions applied (:func:`fuse`); pooling and normalisation are
done by the caller in NumPy, as sentence-transformers does them in torch.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
OPSET = 17


def export(model_folder: Path, target: Path) -> None:
    """Write ``model_folder``'s transformer (safetensors weights) to ``target`` as an ONNX graph."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_folder))
    model.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state  # type: ignore[no-any-return]

    sample = torch.ones((2, 8), dtype=torch.long)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in (*INPUT_NAMES, OUTPUT_NAME)}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's notes on indexing and deprecation
        torch.onnx.export(
            LastHiddenState(model),
            (sample, sample, torch.zeros_like(sample)),
            str(target),
            dynamo=False,  # the TorchScript exporter: one self-contained file, no onnxscript needed
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes=dynamic,
            opset_version=OPSET,
            do_constant_folding=True,
        )
    fuse(target, model.config.num_attention_heads, model.config.hidden_size)


def fuse(target: Path, heads: int, hidden: int) -> None:
    """Rewrite ``target`` with onnxruntime's BERT fusions (attention, LayerNorm, GELU as single kernels).

    The same arithmetic in fewer, larger kernels: measured 1.3× the plain export's chunks/s on one
    core, vectors unchanged (cosine 1.0000); benchmarks/cold_start.py.
    """
    from onnxruntime.transformers.optimizer import optimize_model  # type: ignore[import-untyped]

    fused = target.with_name(target.name + ".fused")
    optimize_model(str(target), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1).save_model_to_file(
        str(fused)
    )
    os.replace(fused, target)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m arcticcodex.vault.onnx_export MODEL_FOLDER TARGET.onnx", file=sys.stderr)
        return 2
    export(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
