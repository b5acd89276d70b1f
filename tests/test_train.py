"""`arcticcodex train` and `arcticcodex receipt verify` (issue 14, item 1) on a tiny model built in the test.

The student learns from a signed dataset only after it verifies; SFT lowers the held-out loss and
DPO runs against an explicit reference; the rows are `messages` only with the loss on the
assistant's turns, end-of-turn token included, for ChatML and Llama 3 tokenizers alike; and the
receipt binds the model to its data: an edited receipt, a swapped weight file, an extra weight file
and a different dataset are each caught and named.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl")

from arcticcodex.errors import UserError
from arcticcodex.provenance import Ed25519Signer
from arcticcodex.provenance.keystore import KeyStore
from arcticcodex.training.chat_templates import with_assistant_markers
from arcticcodex.workspace import Workspace
from conftest import Acx
from tiny_student import make_base, make_dataset

FAST = ["--lora", "8,16", "--lr", "5e-3", "--batch-size", "4", "--max-length", "64"]


@pytest.fixture
def root(tmp_path: Path, acx: Acx) -> Path:
    """A workspace made by `init` (its signing key `dataset` is trusted), with a dataset it signed."""
    acx("init", tmp_path / "ws")
    make_dataset(tmp_path / "ds", KeyStore(Workspace.open(tmp_path / "ws").keys_dir).signer("dataset"))
    return tmp_path / "ws"


@pytest.fixture(scope="module")
def chatml_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_base(tmp_path_factory.mktemp("chatml-base"), "chatml")


def train(acx: Acx, root: Path, *args: str | Path, code: int = 0) -> dict:
    result = acx("-w", root, "train", *args, "--json", code=code)
    return json.loads(result.stdout) if code == 0 else {"output": result.output}


def test_sft_lowers_the_held_out_loss_and_its_receipt_verifies(
    root: Path, tmp_path: Path, chatml_base: Path, acx: Acx
) -> None:
    out = tmp_path / "student"
    result = train(acx, root, tmp_path / "ds", "--base", chatml_base, "--out", out, "--max-steps", "30", *FAST)
    sft = result["metrics"]["sft"]
    assert sft["eval_loss"] < sft["eval_loss_before"] - 0.2  # it learned the held-out answers' shape
    assert result["metrics"]["rows"] == {"sft_train": 18, "dpo_train": 18, "sft_validation": 6, "dpo_validation": 6}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json"} <= set(os.listdir(out / "model"))
    rows = [json.loads(line) for line in (out / "data" / "sft-train.jsonl").read_text().splitlines()]
    assert {tuple(row) for row in rows} == {("messages",)}  # never messages and completion side by side
    checked = acx("-w", root, "receipt", "verify", out, "--dataset", tmp_path / "ds", "--base", chatml_base)
    assert "OK: intact, signer trusted (trusted key 'dataset')" in checked.stdout
    receipt = json.loads((out / "receipt.json").read_text())["receipt"]
    dataset_manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert receipt["dataset"]["merkle_root"] == dataset_manifest["merkle_root"]
    assert receipt["config"]["method"] == "sft" and receipt["config"]["lora"] == [8, 16]
    assert set(receipt["base_model"]["files"]) >= {"config.json", "model.safetensors", "tokenizer.json"}
    assert {"torch", "transformers", "trl", "peft"} <= set(receipt["libraries"])


def test_each_tampering_of_a_receipt_or_its_model_is_caught_and_named(
    root: Path, tmp_path: Path, chatml_base: Path, acx: Acx
) -> None:
    out = tmp_path / "student"
    train(acx, root, tmp_path / "ds", "--base", chatml_base, "--out", out, "--max-steps", "2", *FAST)
    receipt_path = out / "receipt.json"
    original = receipt_path.read_bytes()

    edited = json.loads(original)
    edited["receipt"]["metrics"]["sft"]["eval_loss"] = 0.01  # a better number than was measured
    receipt_path.write_text(json.dumps(edited))
    failed = acx("-w", root, "receipt", "verify", out, code=1)
    assert "receipt.json: the signature does not verify: the receipt was edited" in failed.output
    receipt_path.write_bytes(original)

    weights = out / "model" / "adapter_model.safetensors"
    kept = weights.read_bytes()
    weights.write_bytes(kept[:-8] + bytes(8))
    failed = acx("-w", root, "receipt", "verify", out, code=1)
    assert "model/adapter_model.safetensors: changed since training (its SHA-256 is not the receipt's)" in failed.output
    weights.write_bytes(kept)

    (out / "model" / "extra.safetensors").write_bytes(b"not trained here")
    failed = acx("-w", root, "receipt", "verify", out, code=1)
    assert "model/extra.safetensors: a weight file the receipt does not name" in failed.output
    (out / "model" / "extra.safetensors").unlink()

    other = make_dataset(tmp_path / "other", KeyStore(Workspace.open(root).keys_dir).signer("dataset"), copies=2)
    failed = acx("-w", root, "receipt", "verify", out, "--dataset", other, code=1)
    assert f"{other}: is not the dataset this model was trained on" in failed.output
    assert "OK: intact" in acx("-w", root, "receipt", "verify", out).stdout


def test_a_receipt_signed_by_a_stranger_is_intact_but_not_trusted(
    root: Path, tmp_path: Path, chatml_base: Path, acx: Acx, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "student"
    train(acx, root, tmp_path / "ds", "--base", chatml_base, "--out", out, "--max-steps", "2", *FAST)
    monkeypatch.setenv("ARCTICCODEX_CONFIG_DIR", str(tmp_path / "stranger-config"))  # another user
    elsewhere = tmp_path / "elsewhere"
    acx("init", elsewhere)  # their workspace: the receipt's key is not one they trust
    refused = acx("-w", elsewhere, "receipt", "verify", out, code=2)
    assert "intact, signer NOT trusted" in refused.output


def test_a_tampered_dataset_is_never_trained_on_and_an_untrusted_one_needs_the_flag(
    root: Path, tmp_path: Path, chatml_base: Path, acx: Acx
) -> None:
    records = tmp_path / "ds" / "train.jsonl"
    lines = records.read_text().splitlines()
    lines[0] = lines[0].replace("Otters", "Stoats", 1)
    records.write_text("\n".join(lines) + "\n")
    refused = acx("-w", root, "train", tmp_path / "ds", "--base", chatml_base, "--out", tmp_path / "s", code=1)
    assert "is NOT intact" in refused.output and "nothing was used from it" in refused.output
    assert not (tmp_path / "s").exists()

    stranger = make_dataset(tmp_path / "stranger", Ed25519Signer.generate())
    untrusted = acx("-w", root, "train", stranger, "--base", chatml_base, "--out", tmp_path / "s", code=2)
    assert "its signer is NOT trusted" in untrusted.output and "--allow-untrusted" in untrusted.output
    assert not (tmp_path / "s").exists()
    args = ("--base", chatml_base, "--out", tmp_path / "s", "--max-steps", "1", "--allow-untrusted", *FAST)
    trained = train(acx, root, stranger, *args)
    receipt = json.loads((tmp_path / "s" / "receipt.json").read_text())["receipt"]
    assert trained["metrics"]["sft"]["train_loss"] > 0 and receipt["dataset"]["trusted_as"] is None


def test_dpo_trains_against_an_explicit_reference_and_sft_then_dpo_merges(
    root: Path, tmp_path: Path, chatml_base: Path, acx: Acx
) -> None:
    dpo = train(
        acx,
        root,
        tmp_path / "ds",
        "--base",
        chatml_base,
        "--out",
        tmp_path / "dpo",
        "--method",
        "dpo",
        "--max-steps",
        "4",
        *FAST,
    )
    assert dpo["metrics"]["dpo"]["train_loss"] > 0 and "eval_loss" in dpo["metrics"]["dpo"]
    both = train(
        acx,
        root,
        tmp_path / "ds",
        "--base",
        chatml_base,
        "--out",
        tmp_path / "both",
        "--method",
        "sft+dpo",
        "--max-steps",
        "3",
        *FAST,
    )
    assert set(both["metrics"]) >= {"sft", "dpo"}
    assert "model.safetensors" in os.listdir(tmp_path / "both" / "model")  # both stages merged into one model
    assert "OK: intact" in acx("-w", root, "receipt", "verify", tmp_path / "both").stdout


@pytest.mark.parametrize("family", ["chatml", "llama3"])
def test_the_loss_covers_the_assistants_turns_and_their_end_token_only(tmp_path: Path, family: str) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(make_base(tmp_path / family, family))
    assert with_assistant_markers(tokenizer, base=family) == family
    messages = [{"role": "user", "content": "What do otters eat?"}, {"role": "assistant", "content": "Fish."}]
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    trained = [token for token, mask in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if mask]
    end = {"chatml": "<|im_end|>", "llama3": "<|eot_id|>"}[family]
    assert tokenizer.decode(trained) == f"Fish.{end}"
    assert tokenizer.eos_token == end  # a served student stops at the end of its turn


def test_a_tokenizer_of_no_known_family_is_refused_with_the_fix(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(make_base(tmp_path / "plain", "plain"))
    with pytest.raises(UserError, match="my-base has no chat template that marks the assistant's turns") as raised:
        with_assistant_markers(tokenizer, base="my-base")
    assert "start from a chat model of one of those families" in str(raised.value)


def test_a_resumed_run_must_keep_its_settings(root: Path, tmp_path: Path, chatml_base: Path, acx: Acx) -> None:
    out = tmp_path / "student"
    train(acx, root, tmp_path / "ds", "--base", chatml_base, "--out", out, "--max-steps", "2", *FAST)
    taken = acx("-w", root, "train", tmp_path / "ds", "--base", chatml_base, "--out", out, *FAST, code=1)
    assert f"--out {out} is not empty; choose a new folder, or --resume the run there" in taken.output
    changed = acx(
        "-w",
        root,
        "train",
        tmp_path / "ds",
        "--base",
        chatml_base,
        "--out",
        out,
        "--max-steps",
        "3",
        *FAST,
        "--resume",
        code=1,
    )
    assert "was started with other settings (max_steps)" in changed.output


def test_a_checkpoint_a_kill_cut_short_is_set_aside_and_the_run_resumes_from_the_last_whole_one(
    root: Path, tmp_path: Path, chatml_base: Path, acx: Acx
) -> None:
    """A kill while the trainer writes checkpoint-N leaves a folder without its trainer_state.json (written
    last); resuming from it would fail.  Set the run back to "killed after checkpoint-4 and during checkpoint-6"."""
    out = tmp_path / "student"
    args = ("--base", chatml_base, "--out", out, "--max-steps", "6", "--save-steps", "2", *FAST)
    train(acx, root, tmp_path / "ds", *args)
    checkpoints = out / "checkpoints" / "sft"
    (checkpoints / "done.json").unlink()
    (out / "receipt.json").unlink()
    whole = checkpoints / "checkpoint-6"
    (whole / "trainer_state.json").unlink()  # cut short: everything but the state the trainer writes last
    resumed = train(acx, root, tmp_path / "ds", *args, "--resume")
    assert resumed["metrics"]["sft"]["resumed_from_step"] == 4 and resumed["metrics"]["sft"]["global_step"] == 6
    assert (checkpoints / "incomplete-checkpoint-6").is_dir()  # kept for a look, never resumed from
    assert "OK: intact" in acx("-w", root, "receipt", "verify", out).stdout


@pytest.mark.slow
def test_a_run_killed_mid_training_resumes_from_its_last_checkpoint(
    root: Path, tmp_path: Path, chatml_base: Path
) -> None:
    out = tmp_path / "student"
    args = [
        sys.executable,
        "-m",
        "arcticcodex.cli",
        "-w",
        str(root),
        "train",
        str(tmp_path / "ds"),
        "--base",
        str(chatml_base),
        "--out",
        str(out),
        "--max-steps",
        "200",
        "--save-steps",
        "10",
        *FAST,
        "--json",
    ]
    env = {**os.environ, "ARCTICCODEX_CONFIG_DIR": os.environ["ARCTICCODEX_CONFIG_DIR"]}
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300  # a freeze guard, not a timing assertion
        # a whole checkpoint (trainer_state.json is written last): killed while its folder was still being
        # written, there would be nothing to resume from (that case: the test above, incomplete-checkpoint-6)
        whole = out / "checkpoints" / "sft" / "checkpoint-10" / "trainer_state.json"
        while not whole.is_file() and time.monotonic() < deadline:
            assert process.poll() is None, "training ended before it could be killed"
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL and not (out / "receipt.json").exists()
    resumed = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr[-800:]
    metrics = json.loads(resumed.stdout)["metrics"]["sft"]
    assert metrics["resumed_from_step"] >= 10 and metrics["global_step"] == 200


@pytest.mark.parametrize("family", ["chatml", "llama3"])
def test_the_exports_and_the_train_command_feed_trl_for_both_template_families(
    root: Path, tmp_path: Path, acx: Acx, family: str
) -> None:
    """A user's own TRL script on the `messages` and `dpo` exports, and `arcticcodex train`: no column or
    template errors, for a ChatML and a Llama 3 tokenizer."""
    from datasets import load_dataset
    from transformers import AutoTokenizer
    from trl.trainer.dpo_config import DPOConfig
    from trl.trainer.dpo_trainer import DPOTrainer
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    base = make_base(tmp_path / f"{family}-base", family)
    pub = tmp_path / "dataset.pub"
    acx("-w", root, "keys", "export-public", "dataset", "-o", pub)
    for export_format in ("messages", "dpo"):
        target = tmp_path / f"{export_format}.jsonl"
        acx("dataset", "export", tmp_path / "ds", "--format", export_format, "-o", target, "--public-key", pub)
    tokenizer = AutoTokenizer.from_pretrained(base)
    with_assistant_markers(tokenizer, base=family)
    common = {"max_steps": 1, "per_device_train_batch_size": 2, "report_to": [], "use_cpu": True, "bf16": False}
    common |= {"activation_checkpointing": False, "save_strategy": "no", "disable_tqdm": True}
    with _quiet():
        sft_rows = load_dataset("json", data_files=str(tmp_path / "messages.jsonl"), split="train")
        sft = SFTTrainer(
            model=str(base),
            args=SFTConfig(output_dir=str(tmp_path / "sft"), assistant_only_loss=True, max_length=64, **common),
            train_dataset=sft_rows,
            processing_class=tokenizer,
        )
        assert sft.train().training_loss > 0
        dpo_rows = load_dataset("json", data_files=str(tmp_path / "dpo.jsonl"), split="train")
        dpo = DPOTrainer(
            model=str(base),
            args=DPOConfig(output_dir=str(tmp_path / "dpo"), max_length=64, **common),
            train_dataset=dpo_rows,
            processing_class=tokenizer,
        )
        assert dpo.train().training_loss > 0
    args = ("--base", base, "--out", tmp_path / "student", "--method", "sft+dpo", "--max-steps", "1", *FAST)
    trained = train(acx, root, tmp_path / "ds", *args)
    assert trained["metrics"]["chat_template"] == family


def _quiet() -> Any:
    """TRL calls transformers' renamed methods; those notices are not this test's subject."""
    import warnings
    from contextlib import contextmanager

    @contextmanager
    def quiet() -> Iterator[None]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield

    return quiet()
