"""``arcticcodex train``: a signed dataset in, a trained student and its signed receipt out.

The run, in order, each step before anything costly: the dataset is verified (an altered one is never
trained on; an untrusted one only with ``allow_untrusted``), the signing key is loaded (a missing key
must not be found after an hour of training), the settings are recorded in ``run.json`` (a resumed
run must train with the same ones), the rows are streamed to ``data/``, and the stages run — SFT,
DPO, or SFT then DPO — on TRL, with a LoRA adapter (PEFT) or every weight.  Checkpoints go to
``checkpoints/STAGE``; a run killed at any point resumes from the last one.  The result is
``model/`` (the adapter, or the full model when every weight was trained or both stages ran), with
the tokenizer and its assistant-marking chat template, and ``receipt.json`` (see :mod:`.receipt`).

torch, transformers, TRL and PEFT are the optional extra ``arcticcodex[train]``; they are imported
when a run starts, never by ``import arcticcodex``.
"""

from __future__ import annotations

import json
import platform
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__
from ..dataset.verify import require_verified
from ..errors import UserError
from ..fileio import write_atomically
from ..provenance.keystore import KeyStore
from ..provenance.trust import KeyRing
from ..workspace import Workspace
from .chat_templates import with_assistant_markers
from .examples import TrainingFiles, write_training_files
from .receipt import RECEIPT_FILE, dataset_identity, file_digests, sign_receipt
from .runs import TrainingRuns
from .settings import TrainSettings

__all__ = ["Progress", "TrainingResult", "libraries_quiet", "resolve_base", "train_model"]

Progress = Callable[[str, int, int], None]
"""Called as training advances: (stage, step done, steps in the stage)."""

RUN_FILE = "run.json"
LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets")


@dataclass(frozen=True, slots=True)
class TrainingResult:
    out: Path
    model: Path
    receipt: dict[str, Any]
    metrics: dict[str, Any]


def train_model(
    workspace: Workspace,
    dataset: str | Path,
    out: str | Path,
    settings: TrainSettings,
    *,
    keyring: KeyRing,
    key: str | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> TrainingResult:
    """Train ``settings.base`` on ``dataset`` into ``out``; see the module docstring for the steps.

    Once the run has claimed ``out`` it is recorded in the workspace (:mod:`.runs`): running, then
    complete with its metrics and receipt digest, or failed with the error; a resumed run updates its row.
    """
    runs = TrainingRuns(workspace)
    run_ids: list[str] = []

    def claimed(folder: Path, identity: dict[str, Any]) -> None:
        run_ids.append(runs.started(folder, identity, settings, resume=resume))

    try:
        result = _train(
            workspace,
            dataset,
            out,
            settings,
            keyring=keyring,
            key=key,
            resume=resume,
            progress=progress,
            claimed=claimed,
        )
    except BaseException as exc:
        if run_ids:
            runs.failed(run_ids[0], exc)
        raise
    runs.completed(run_ids[0], result.metrics, result.out / RECEIPT_FILE)
    return result


def _train(
    workspace: Workspace,
    dataset: str | Path,
    out: str | Path,
    settings: TrainSettings,
    *,
    keyring: KeyRing,
    key: str | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    claimed: Callable[[Path, dict[str, Any]], None],
) -> TrainingResult:
    dataset, out = Path(dataset).resolve(), Path(out).resolve()
    report = require_verified(dataset, keyring=keyring, allow_untrusted=settings.allow_untrusted)
    key_name = key or workspace.config.signing_key or "dataset"
    signer = KeyStore(workspace.keys_dir).signer(key_name)
    identity = dataset_identity(dataset)
    _claim(out, settings, identity, resume)
    claimed(out, identity)
    files = write_training_files(dataset, out / "data", dpo_margin=settings.dpo_margin)
    _check_rows(settings, files, dataset)
    base = resolve_base(settings.base)
    with libraries_quiet():
        tokenizer = _tokenizer(base, settings.base)
        template = with_assistant_markers(tokenizer, base=settings.base)
        metrics: dict[str, Any] = {"rows": files.counts, "chat_template": template}
        start = base
        stages = settings.method.split("+")
        for stage in stages:
            stage_metrics, start = _stage(
                stage,
                start,
                tokenizer,
                files,
                settings,
                out,
                resume=resume,
                progress=progress,
                last=stage == stages[-1],
            )
            metrics[stage] = stage_metrics
    model_dir = out / "model"
    body = {
        "kind": "arcticcodex.training-receipt",
        "version": 1,
        "created_at": datetime.now(UTC).isoformat(),
        "dataset": {**identity, "trusted_as": report.trusted_as, "algorithm": report.algorithm},
        "base_model": {"name": settings.base, "files": file_digests(base)},
        "config": settings.to_json(),
        "libraries": {"arcticcodex": __version__, "python": platform.python_version(), **_versions()},
        "metrics": metrics,
        "artifacts": {f"model/{name}": digest for name, digest in file_digests(model_dir).items()},
    }
    receipt = sign_receipt(out, body, signer)
    return TrainingResult(out, model_dir, receipt, metrics)


def resolve_base(base: str) -> Path:
    """A local folder as it is; else a Hugging Face id, fetched to the local cache (on the user's machine)."""
    folder = Path(base).expanduser()
    if folder.is_dir():
        return folder.resolve()
    if folder.exists() or base.startswith((".", "/", "~")):
        raise UserError(
            f"base {base} is not a folder holding a model; give the model's folder or a Hugging Face id",
            parameters=["base"],
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(base))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise UserError(
            f"base {base!r} is neither a local folder nor a model the Hugging Face Hub gave ({exc}); "
            "check the id, or download it and give its folder",
            parameters=["base"],
        ) from exc


def _claim(out: Path, settings: TrainSettings, identity: dict[str, Any], resume: bool) -> None:
    """Make ``out`` this run's (new or empty), or, to resume, check it was started with these settings."""
    recorded = out / RUN_FILE
    started = {"settings": settings.to_json(), "dataset": identity}
    if resume:
        if not recorded.is_file():
            raise UserError(f"{out} holds no started training run to resume; leave out resume", parameters=["resume"])
        before = json.loads(recorded.read_text(encoding="utf-8"))
        changed = sorted(
            name
            for name in set(before["settings"]) | set(started["settings"])
            if before["settings"].get(name) != started["settings"].get(name)
        )
        if changed or before["dataset"] != identity:
            what = ", ".join(changed) if changed else "the dataset"
            raise UserError(
                f"out {out} was started with other settings ({what}); a resumed run trains with the same ones",
                parameters=["out"],
            )
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(
            f"out {out} is not empty; choose a new folder, or resume the run there", parameters=["out", "resume"]
        )
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(recorded, json.dumps(started, indent=2).encode("utf-8"))


def _check_rows(settings: TrainSettings, files: TrainingFiles, dataset: Path) -> None:
    if files.counts.get("sft_train", 0) == 0:
        raise UserError(f"the dataset in {dataset} has no training pairs")
    if "dpo" in settings.method and files.counts.get("dpo_train", 0) == 0:
        raise UserError(
            f"the dataset in {dataset} has no preference pairs (no first draft improved on by {settings.dpo_margin}); "
            "train with method sft, or lower dpo_margin",
            parameters=["method", "dpo_margin"],
        )


def _tokenizer(base: Path, name: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.pad_token is None:
        raise UserError(f"the tokenizer of {name} has neither a padding nor an end-of-sequence token")
    return tokenizer


@contextmanager
def libraries_quiet() -> Iterator[None]:
    """Quiet the training libraries while a run shows its own progress: their deprecation notices about
    each other's APIs (TRL calling transformers' renamed methods), their info logs and ``datasets``'
    per-step bars — the user can act on none of it, and a run prints it by the dozen.  Warnings and
    errors still come through."""
    import datasets
    import transformers

    verbosity = transformers.logging.get_verbosity()
    bars = datasets.is_progress_bar_enabled()
    their_bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # "Loading weights" bars
    datasets.disable_progress_bars()
    try:
        with warnings.catch_warnings():
            for module in ("transformers", "trl", "peft", "accelerate", "datasets", "torch"):
                warnings.filterwarnings("ignore", category=FutureWarning, module=module)
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
            yield
    finally:
        transformers.logging.set_verbosity(verbosity)
        if their_bars:
            transformers.utils.logging.enable_progress_bar()  # type: ignore[no-untyped-call]
        if bars:
            datasets.enable_progress_bars()


def _versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


# -- the stages -------------------------------------------------------------------------------------


def _stage(
    stage: str,
    start: Path,
    tokenizer: Any,
    files: TrainingFiles,
    settings: TrainSettings,
    out: Path,
    *,
    resume: bool,
    progress: Progress | None,
    last: bool,
) -> tuple[dict[str, Any], Path]:
    """One stage from ``start``: SFT on the ``messages`` rows, or DPO on the preference rows."""
    trainer: Any
    if stage == "sft":
        from trl.trainer.sft_config import SFTConfig
        from trl.trainer.sft_trainer import SFTTrainer

        train, evaluation = _load(files.sft_train, files.sft_eval)
        sft_args = SFTConfig(
            **_common(settings, out / "checkpoints" / "sft", evaluation is not None),
            assistant_only_loss=True,
            max_length=settings.max_length,
            packing=False,
        )
        trainer = SFTTrainer(
            model=str(start),
            args=sft_args,
            train_dataset=train,
            eval_dataset=evaluation,
            processing_class=tokenizer,
            peft_config=_lora(settings),
        )
    else:
        from transformers import AutoModelForCausalLM
        from trl.trainer.dpo_config import DPOConfig
        from trl.trainer.dpo_trainer import DPOTrainer

        train, evaluation = _load(files.dpo_train, files.dpo_eval)
        evaluation = evaluation if evaluation is not None and len(evaluation) else None
        dpo_args = DPOConfig(
            **_common(settings, out / "checkpoints" / "dpo", evaluation is not None),
            beta=settings.dpo_beta,
            max_length=settings.max_length,
        )
        trainer = DPOTrainer(
            model=str(start),
            ref_model=AutoModelForCausalLM.from_pretrained(start),  # explicit: what the policy is pulled towards
            args=dpo_args,
            train_dataset=train,
            eval_dataset=evaluation,
            processing_class=tokenizer,
            peft_config=_lora(settings),
        )
    return _run(trainer, stage, tokenizer, settings, out, resume=resume, progress=progress, last=last)


def _common(settings: TrainSettings, output_dir: Path, evaluate: bool) -> dict[str, Any]:
    import torch

    on_gpu = torch.cuda.is_available()
    return {
        "use_cpu": not on_gpu,
        "bf16": on_gpu and torch.cuda.is_bf16_supported(),
        "output_dir": str(output_dir),
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps or -1,
        "learning_rate": settings.learning_rate,
        "per_device_train_batch_size": settings.batch_size,
        "per_device_eval_batch_size": settings.batch_size,
        "eval_strategy": "steps" if evaluate else "no",
        "eval_steps": settings.eval_steps,
        "save_strategy": "steps",
        "save_steps": settings.save_steps,
        "save_total_limit": 2,
        "logging_steps": max(1, min(settings.eval_steps, 10)),
        "report_to": [] if settings.report_to == "none" else [settings.report_to],
        "seed": settings.seed,
        "disable_tqdm": True,
        # TRL's default (memory for activations traded for compute), under the name transformers keeps
        "activation_checkpointing": True,
    }


def _lora(settings: TrainSettings) -> Any:
    if settings.lora is None:
        return None
    from peft import LoraConfig

    rank, alpha = settings.lora
    return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")


def _last_whole_checkpoint(checkpoints: Path) -> Path | None:
    """The newest checkpoint that was written to the end, after setting aside any a kill cut short.

    The trainer writes a checkpoint's files one by one and ``trainer_state.json`` last, so a folder
    without it was being written when the process died; it is moved to ``incomplete-checkpoint-N`` (kept
    for a look, never resumed from, and out of the way of the trainer's own rotation of old checkpoints).
    """
    whole = None
    for folder in sorted(checkpoints.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1])):
        if (folder / "trainer_state.json").is_file():
            whole = folder
        else:
            folder.rename(folder.with_name(f"incomplete-{folder.name}"))
    return whole


def _final_eval_loss(trainer: Any) -> float:
    """The held-out loss of the trained model: the evaluation at the last step when there was one, else a new one."""
    state = trainer.state
    for entry in reversed(state.log_history):
        if "eval_loss" in entry and entry.get("step") == state.global_step:
            return float(entry["eval_loss"])
    return float(trainer.evaluate()["eval_loss"])


def _load(train_path: Path, eval_path: Path | None) -> tuple[Any, Any]:
    from datasets import load_dataset

    train = load_dataset("json", data_files=str(train_path), split="train")
    evaluation = load_dataset("json", data_files=str(eval_path), split="train") if eval_path else None
    return train, evaluation


def _run(
    trainer: Any,
    stage: str,
    tokenizer: Any,
    settings: TrainSettings,
    out: Path,
    *,
    resume: bool,
    progress: Progress | None,
    last: bool,
) -> tuple[dict[str, Any], Path]:
    """Train one stage (from its last checkpoint when resuming); save its model; return metrics and where it is."""
    from .progress import ProgressCallback

    checkpoints = Path(trainer.args.output_dir)
    done = checkpoints / "done.json"
    saved = out / "model" if last else checkpoints / "model"
    if resume and done.is_file():
        return json.loads(done.read_text(encoding="utf-8")), saved
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # it prints every log dict; the caller draws its own progress
    if progress is not None:
        trainer.add_callback(ProgressCallback(stage, progress))
    metrics: dict[str, Any] = {}
    resume_from = _last_whole_checkpoint(checkpoints) if resume else None
    has_checkpoint = resume_from is not None
    if resume_from is not None:
        metrics["resumed_from_step"] = int(resume_from.name.split("-")[1])
    if trainer.eval_dataset is not None and not has_checkpoint:
        metrics["eval_loss_before"] = trainer.evaluate()["eval_loss"]
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
    metrics.update({name: value for name, value in result.metrics.items() if isinstance(value, int | float)})
    metrics["global_step"] = trainer.state.global_step
    if trainer.eval_dataset is not None:
        metrics["eval_loss"] = _final_eval_loss(trainer)
    model = trainer.model
    if not last or "+" in settings.method:
        model = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    model.save_pretrained(saved)
    tokenizer.save_pretrained(saved)
    write_atomically(done, json.dumps(metrics).encode("utf-8"))
    return metrics, saved
