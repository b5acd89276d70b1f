"""`arcticcodex train` on a GPU: tokens per second and model FLOPs utilisation of a ~100M-parameter full fine-tune.

Run (on a CUDA machine): ``python3 benchmarks/train_gpu.py [--steps 300] [--short-steps 50] [--batch-size 32]
[--max-length 1024]``; the whole path on CPU, in seconds: ``.venv/bin/python benchmarks/train_gpu.py --cpu-smoke``.

The chip's bf16 rate is measured in the same run (an 8192×8192×8192 ``torch.matmul`` on random bf16 data,
three warm-ups, then the mean of ten products timed with CUDA events): that is the peer the model FLOPs are
held against, rather than a datasheet figure.  Then a Llama of ~110M parameters is built from a config
(hidden 768, 12 layers, 12 heads, intermediate 2048, vocabulary 16384; random weights) with a byte-level BPE
tokenizer trained here on generated text with ChatML's turn tokens (nothing is downloaded), a signed
dataset of long answers is written with the workspace's key (every row is longer than ``--max-length``, so
every row trains exactly ``--max-length`` tokens and no step carries padding), and the real command runs
as a subprocess: ``python -m arcticcodex.cli train DATASET --base DIR --out DIR --full --max-steps N
--batch-size B --max-length L --save-steps N --json`` in a throwaway workspace.

Tokens: steps × batch × max-length (exact, since no row is shorter; otherwise the mean row length, and the
report says "estimate").  Seconds: the trainer's own ``train_runtime`` from the signed receipt's metrics (the
training loop, including the evaluation of the held-out split and the checkpoint at the last step; not the
start-up, the verification, the tokenisation or the final save); with ``--short-steps M`` a run of M steps
goes first and the steady rate is the difference of the two (the warm-up of the first steps, the last
evaluation and the checkpoint cancel out), printed beside it.  Model FLOPs per token: 6 × parameters
(the usual count; the input embedding is in it though it is a lookup) and, beside it, that plus the
attention term 12 × layers × hidden × max-length (PaLM's).  The trainer checkpoints activations (TRL's
default), so the chip does about 8 × parameters per token of work: MFU here is model FLOPs, not hardware
FLOPs.  MFU = achieved model FLOP/s ÷ the measured bf16 rate.  Also: peak GPU memory in use while the command
ran (device-wide, sampled every 0.2 s, minus what was in use before it; the CUDA context and the allocator's
cache included), whether the trainer ran in bf16 (its saved training arguments), and peak RSS of the training
process.  Writes all of it as JSON to ``$OUT/train_gpu.json`` and the command's log to ``$OUT/train_gpu.log``
when ``OUT`` is set.  Bound: MFU (6N) ≥ ``--min-mfu`` (default 0.05: a run that is not on the GPU in bf16
misses it by far); exit status 1 when it is missed or the command fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from arcticcodex.dataset import DatasetWriter, Revision, TrainingPair
from arcticcodex.dataset.record import PairSource, pair_id_for
from arcticcodex.provenance.keystore import KeyStore
from arcticcodex.provenance.trust import TrustedKeys
from arcticcodex.workspace import Workspace

SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"]


@dataclass(frozen=True, slots=True)
class Shape:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int


FULL = Shape(hidden=768, layers=12, heads=12, intermediate=2048, vocab=16384)
SMOKE = Shape(hidden=64, layers=2, heads=4, intermediate=128, vocab=1024)


# -- the chip ---------------------------------------------------------------------------------------


def bf16_rate(size: int = 8192, warmups: int = 3, timed: int = 10) -> float:
    """FLOP/s of a size³ bf16 matrix product on random data: the mean of ``timed`` products after ``warmups``."""
    import torch

    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(warmups):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    seconds = []
    for _ in range(timed):
        start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        start.record()
        torch.matmul(a, b)
        end.record()
        torch.cuda.synchronize()
        seconds.append(float(start.elapsed_time(end)) / 1000)
    del a, b
    torch.cuda.empty_cache()
    return float(2 * size**3 / (sum(seconds) / len(seconds)))


class GpuMemoryPeak:
    """Device-wide GPU memory in use, sampled in a thread while the training command runs, less the baseline."""

    def __init__(self, interval: float = 0.2) -> None:
        import torch

        self.torch = torch
        self.interval = interval
        self.baseline = self._used()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _used(self) -> int:
        free, total = self.torch.cuda.mem_get_info()
        return int(total - free)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._used())

    def __enter__(self) -> GpuMemoryPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def bytes(self) -> int:
        return self.peak - self.baseline


# -- the text, the tokenizer, the model ---------------------------------------------------------------


def lexicon(rng: random.Random, words: int) -> list[str]:
    """Made-up words of two to four syllables: a vocabulary large enough for BPE to learn thousands of merges."""
    onsets = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "kl", "tr", "sh"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou", "ea"]
    found: set[str] = set()
    while len(found) < words:
        found.add("".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(2, 4))))
    return sorted(found)


def answer(rng: random.Random, words: list[str], topic: str, count: int) -> str:
    """A text of at least ``count`` words (so at least ``count`` tokens: each word, with its space, is ≥ 1)."""
    out: list[str] = []
    while len(out) < count:
        out += ["the", topic, *rng.sample(words, rng.randint(4, 10))]
        out[-1] += "."
    return " ".join(out)


def texts(pairs: int, answer_words: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    words = lexicon(rng, 4000)
    topics = words[:64]
    rows = []
    for number in range(pairs):
        topic = topics[number % len(topics)]
        rows.append((f"Tell me about the {topic} of record {number}.", answer(rng, words, topic, answer_words)))
    return rows


def base_model(folder: Path, shape: Shape, corpus: list[str], max_length: int) -> int:
    """A byte-level BPE tokenizer trained on ``corpus`` with ChatML's turn tokens, and a random Llama; its size."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=shape.vocab, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    core.train_from_iterator([*corpus, "user assistant system"], trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    tokenizer.save_pretrained(folder)
    if len(tokenizer) > shape.vocab:
        raise SystemExit(f"the tokenizer has {len(tokenizer)} tokens, more than the model's {shape.vocab}")
    config = LlamaConfig(
        vocab_size=shape.vocab,  # ≥ the tokenizer's: the rows past it are never looked up, but are computed
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.heads,
        max_position_embeddings=max(2048, max_length),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)  # float32 weights; the trainer trains in bf16 autocast on a GPU
    model.save_pretrained(folder)
    return sum(parameter.numel() for parameter in model.parameters())


def signed_dataset(folder: Path, workspace: Workspace, rows: list[tuple[str, str]]) -> Path:
    """The rows as teacher-accepted pairs, signed with the workspace's ``dataset`` key (as benchmarks/train.py)."""

    def pair(number: int, question: str, text: str) -> TrainingPair:
        return TrainingPair(
            id=pair_id_for(question, text, ()),
            index=number,
            instruction=question,
            completion=text,
            quality=Decimal("0.9"),
            signer_id="bench",
            created_at="2026-12-04T00:00:00+00:00",
            source=PairSource("prompts", f"bench:{number}"),
            feedback="",
            revisions=(Revision(1, text, 0.9),),
            evidence=(),
            teachers=("bench",),
        )

    signer = KeyStore(workspace.keys_dir).signer("dataset")
    with DatasetWriter(folder, signer, validation_fraction=0.02) as writer:
        writer.add_many(pair(number, question, text) for number, (question, text) in enumerate(rows))
    return folder


# -- the run ------------------------------------------------------------------------------------------


def train(command: list[str], env: dict[str, str], log: Path, *, append: bool) -> tuple[int, float]:
    """Run the command, its output to ``log`` and to our stdout as it comes; its exit status and wall seconds."""
    started = time.perf_counter()
    with log.open("a" if append else "w", encoding="utf-8") as file:
        file.write("$ " + " ".join(command) + "\n")
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        assert process.stdout is not None
        for line in process.stdout:
            file.write(line)
            file.flush()
            sys.stdout.write(line)
        status = process.wait()
    return status, time.perf_counter() - started


def row_lengths(rows_file: Path, base: Path, max_length: int) -> list[int]:
    """Tokens the trainer sees per training row: the rows as the trainer wrote them, in its template, truncated."""
    from transformers import AutoTokenizer

    from arcticcodex.training.chat_templates import with_assistant_markers

    tokenizer = AutoTokenizer.from_pretrained(base)
    with_assistant_markers(tokenizer, base=str(base))
    lengths = []
    with rows_file.open(encoding="utf-8") as file:
        for line in file:
            ids = tokenizer.apply_chat_template(json.loads(line)["messages"], tokenize=True, return_dict=False)
            lengths.append(min(len(ids), max_length))
    return lengths


def ran_in_bf16(checkpoints: Path) -> dict[str, Any]:
    """The precision the trainer ran in, from the training arguments it saved with its last checkpoint."""
    import torch

    saved = sorted(checkpoints.glob("checkpoint-*/training_args.bin"), key=lambda p: int(p.parent.name.split("-")[1]))
    if not saved:
        return {"bf16": None, "use_cpu": None, "note": "no checkpoint with training_args.bin"}
    args = torch.load(saved[-1], weights_only=False)  # our own file, written by the run just now
    return {
        "bf16": bool(args.bf16),
        "use_cpu": bool(args.use_cpu),
        "gradient_checkpointing": bool(args.gradient_checkpointing),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--pairs", type=int, default=2048, help="rows in the signed dataset (steps loop over them)")
    parser.add_argument(
        "--short-steps", type=int, default=0, help="also run this many steps first: a steady rate from the difference"
    )
    parser.add_argument("--min-mfu", type=float, default=0.05, help="the bound on MFU (6N)")
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="tiny model, few steps, on CPU: the path, not a figure"
    )
    args = parser.parse_args()
    if args.cpu_smoke:
        shape = SMOKE
        args.steps, args.batch_size, args.max_length, args.pairs = 4, 2, 64, 64
        args.short_steps = 2 if args.short_steps else 0
    else:
        shape = FULL
    out_dir = Path(os.environ["OUT"]) if os.environ.get("OUT") else None
    peak_flops = None
    cuda = False
    if not args.cpu_smoke:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: run with --cpu-smoke for the CPU path")
        cuda = True
        print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}", flush=True)
        peak_flops = bf16_rate()
        print(f"measured bf16 matmul (8192³, random): {peak_flops / 1e12:.1f} TFLOP/s", flush=True)

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        env = dict(os.environ)
        env.update(
            ARCTICCODEX_WORKSPACE=str(root / "ws"),
            ARCTICCODEX_CONFIG_DIR=str(root / "user-config"),  # the trust list: never the user's own
            HF_HUB_OFFLINE="1",
            USE_HUB_KERNELS="NO",  # offline, the Hub kernels cannot be fetched: with `kernels` installed, loading fails
            PYTHONUNBUFFERED="1",
            TOKENIZERS_PARALLELISM="false",
        )
        if args.cpu_smoke:
            env["CUDA_VISIBLE_DEVICES"] = ""
        setup = time.perf_counter()
        workspace, _ = Workspace.init(root / "ws")
        keys = KeyStore(workspace.keys_dir)
        keys.create("dataset")
        trusted = TrustedKeys.for_user({"ARCTICCODEX_CONFIG_DIR": env["ARCTICCODEX_CONFIG_DIR"]})
        trusted.trust_key(keys.verifier("dataset"), name="bench", origin="bench")
        rows = texts(args.pairs, answer_words=args.max_length + 32)
        parameters = base_model(root / "base", shape, [text for _, text in rows], args.max_length)
        dataset = signed_dataset(root / "ds", workspace, rows)
        print(
            f"model: {parameters:,} parameters ({shape}); dataset: {len(rows)} pairs; "
            f"setup {time.perf_counter() - setup:.1f} s",
            flush=True,
        )
        log = (out_dir or root) / "train_gpu.log"
        runs = [args.short_steps, args.steps] if args.short_steps else [args.steps]
        results: list[tuple[dict[str, Any], float]] = []
        with contextlib.ExitStack() as stack:
            memory = stack.enter_context(GpuMemoryPeak()) if cuda else None
            for number, steps_here in enumerate(runs):
                out = root / f"out-{steps_here}"
                command = [
                    sys.executable, "-m", "arcticcodex.cli", "train", str(dataset), "--base", str(root / "base"),
                    "--out", str(out), "--full", "--max-steps", str(steps_here),
                    "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
                    "--save-steps", str(steps_here), "--json",
                ]  # fmt: skip
                print("$ arcticcodex " + " ".join(command[3:]), flush=True)
                status, wall = train(command, env, log, append=number > 0)
                if status != 0:
                    print(f"arcticcodex train failed (exit {status}); log: {log}")
                    return 1
                receipt = json.loads((out / "receipt.json").read_text(encoding="utf-8"))["receipt"]
                results.append((receipt["metrics"]["sft"], wall))
        gpu_peak = memory.bytes if memory is not None else None
        metrics, wall = results[-1]
        lengths = row_lengths(out / "data" / "sft-train.jsonl", root / "base", args.max_length)
        precision = ran_in_bf16(out / "checkpoints" / "sft")
        libraries = receipt["libraries"]
    exact = min(lengths) >= args.max_length
    steps = int(metrics["global_step"])
    per_row = args.max_length if exact else sum(lengths) / len(lengths)
    tokens = steps * args.batch_size * per_row
    if "train_runtime" in metrics:
        seconds, timed = float(metrics["train_runtime"]), "trainer train_runtime (receipt metrics)"
    else:
        seconds, timed = wall, "wall time of the whole command (no train_runtime in the receipt)"
    rate = tokens / seconds
    steady = None
    if len(results) == 2 and "train_runtime" in results[0][0]:
        short_metrics = results[0][0]
        extra_tokens = (steps - int(short_metrics["global_step"])) * args.batch_size * per_row
        extra_seconds = seconds - float(short_metrics["train_runtime"])
        steady = extra_tokens / extra_seconds if extra_seconds > 0 else None
    # a check on the count: transformers' total_flos is 6 × non-embedding parameters × every input token
    flos = metrics.get("total_flos")
    trainer_tokens = flos / (6 * (parameters - shape.vocab * shape.hidden)) if flos else None
    flops_6n = 6 * parameters * rate
    flops_attention = (6 * parameters + 12 * shape.layers * shape.hidden * args.max_length) * rate
    result: dict[str, Any] = {
        "mode": "cpu-smoke" if args.cpu_smoke else "gpu",
        "shape": asdict(shape),
        "parameters": parameters,
        "steps": steps,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "tokens": tokens,
        "tokens_exact": exact,
        "tokens_from_trainer_total_flos": trainer_tokens,
        "row_tokens_min_max": [min(lengths), max(lengths)],
        "seconds": seconds,
        "seconds_from": timed,
        "command_wall_seconds": wall,
        "tokens_per_second": rate,
        "short_run": {"steps": args.short_steps, "train_runtime": results[0][0].get("train_runtime")}
        if len(results) == 2
        else None,
        "tokens_per_second_steady": steady,
        "mfu_6n_steady": 6 * parameters * steady / peak_flops if steady and peak_flops else None,
        "model_flops_per_second_6n": flops_6n,
        "model_flops_per_second_6n_attention": flops_attention,
        "measured_bf16_flops_per_second": peak_flops,
        "mfu_6n": flops_6n / peak_flops if peak_flops else None,
        "mfu_6n_attention": flops_attention / peak_flops if peak_flops else None,
        "peak_gpu_memory_bytes": gpu_peak,
        "precision": precision,
        "train_loss": metrics.get("train_loss"),
        "eval_loss_before": metrics.get("eval_loss_before"),
        "eval_loss": metrics.get("eval_loss"),
        "libraries": libraries,
        "peak_rss_trainer_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "peak_rss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(f"parameters:        {parameters:,}")
    print(f"tokens trained:    {tokens:,.0f} ({steps} steps × {args.batch_size} rows × {per_row:g} tokens; "
          f"{'exact' if exact else 'estimate: mean row length'})")  # fmt: skip
    if trainer_tokens is not None:
        print(f"tokens (check):    {trainer_tokens:,.0f} (the trainer's total_flos ÷ 6 × non-embedding parameters)")
    print(f"seconds:           {seconds:.2f} ({timed}); whole command {wall:.1f} s")
    print(f"tokens/s:          {rate:,.0f}")
    if steady is not None:
        steady_mfu = f"; MFU (6N) {result['mfu_6n_steady']:.3f}" if peak_flops else ""
        print(
            f"steady tokens/s:   {steady:,.0f} (the {steps}-step run less the {args.short_steps}-step one: without "
            f"the first steps' warm-up, the last evaluation and checkpoint){steady_mfu}"
        )
    print(f"model FLOP/s:      {flops_6n / 1e12:.2f} T (6N); {flops_attention / 1e12:.2f} T (6N + 12·L·d·T)")
    if peak_flops:
        print(f"MFU vs measured bf16 ({peak_flops / 1e12:.1f} TFLOP/s): {result['mfu_6n']:.3f} (6N), "
              f"{result['mfu_6n_attention']:.3f} (with attention); bound ≥ {args.min_mfu}")  # fmt: skip
    if gpu_peak is not None:
        print(f"peak GPU memory:   {gpu_peak / 2**30:.1f} GiB (device-wide, sampled, context and cache included)")
    print(f"precision:         {precision}")
    print(f"loss:              train {metrics.get('train_loss')}; held-out {metrics.get('eval_loss_before')} → "
          f"{metrics.get('eval_loss')}")  # fmt: skip
    print(f"libraries:         {libraries}")
    print(f"peak RSS: trainer {result['peak_rss_trainer_mb']:.0f} MB, this script {result['peak_rss_self_mb']:.0f} MB")
    if out_dir is not None:
        (out_dir / "train_gpu.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    if args.cpu_smoke:
        return 0
    ok = result["mfu_6n"] >= args.min_mfu and precision.get("bf16") is True
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
