"""The one-time export of a BERT-style sentence-transformers model folder to ONNX, run as a subprocess.

:mod:`.onnx_minilm` runs this module with ``python -m`` when its cache holds no verified export, so that
the process that searches never imports torch or transformers: the export imports both (about 10 s),
writes one file and exits, and its memory goes with it. The graph is the bare transformer
(``input_ids``, ``attention_mask``, ``token_type_ids`` → ``last_hidden_state``, batch and sequence
length dynamic) with onnxruntime's BERT fusions applied (:func:`fuse`); pooling and normalisation are
done by the caller in NumPy, as sentence-transformers does them in torch.

The model is traced with transformers' eager attention: the same arithmetic as its default (SDPA), but
SDPA's mask handling traces into ``Where``/``IsNaN`` nodes that onnxruntime's fusion does not recognise,
which left twelve MatMuls, a softmax and the masking per layer as separate kernels; the eager graph
fuses into one ``Attention`` node per layer and an ``EmbedLayerNormalization``.  The fused attention
takes the padding as each row's length (a mask index), so inputs must be padded on the right, as
:mod:`.onnx_minilm` pads them.
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

    model = AutoModel.from_pretrained(str(model_folder), attn_implementation="eager")  # see the module's note
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

    The same arithmetic in fewer, larger kernels (vectors unchanged, cosine 1.0000): measured 1.3× the
    plain export's chunks/s on one core, and the eager trace's fused ``Attention`` another 1.1×;
    benchmarks/cold_start.py.
    """
    from onnxruntime.transformers.optimizer import optimize_model  # type: ignore[import-untyped]

    fused = target.with_name(target.name + ".fused")
    optimize_model(str(target), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1).save_model_to_file(
        str(fused)
    )
    os.replace(fused, target)


def quantize(source: Path, target: Path) -> None:
    """``source`` with its MatMuls and fused attention in dynamic int8 (per-channel s8 weights).

    u8 activations, quantised per call (each call's own range), × s8 weights: the VNNI path of
    onnxruntime's CPU kernels, 2.4× the fp32 graph's chunks/s on one core.  The vectors move (cosine
    about 0.993 to the fp32 model's), so the variant is a model of its own name; benchmarks/cold_start.py.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Attention"],
        extra_options={"DefaultTensorType": 1},  # FLOAT, for the fused nodes' outputs
    )


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "int8":
        quantize(Path(argv[1]), Path(argv[2]))
        return 0
    if len(argv) != 2:
        print(
            "usage: python -m arcticcodex.vault.onnx_export MODEL_FOLDER TARGET.onnx | int8 SOURCE.onnx TARGET.onnx",
            file=sys.stderr,
        )
        return 2
    export(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
