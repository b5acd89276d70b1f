"""``arcticcodex train`` and ``arcticcodex receipt``: a student trained on a signed dataset, and its receipt."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..errors import UserError, WorkspaceNotFoundError
from ..provenance.keystore import KeyStore
from ..provenance.trust import KeyRing
from ..terminal import escape_controls
from ..workspace import Workspace
from . import CliState, pass_state

if TYPE_CHECKING:
    from ..training import TrainingResult, TrainSettings


def _lora(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return (16, 32)
    try:
        rank, alpha = (int(part) for part in value.split(","))
    except ValueError:
        # from None: the ValueError of int() adds nothing the message does not already say
        raise click.BadParameter(f"{value!r} is not RANK,ALPHA such as 16,32", param_hint="--lora") from None
    return rank, alpha


@click.command()
@click.argument("dataset", type=click.Path(file_okay=False, path_type=Path))
@click.option("--base", required=True, help="The model to start from: a local folder or a Hugging Face id.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The folder for the model and receipt.")
@click.option(
    "--method",
    type=click.Choice(["sft", "dpo", "sft+dpo"]),
    default="sft",
    show_default=True,
    help="Supervised fine-tuning, preference tuning on the revisions, or one then the other.",
)
@click.option("--lora", metavar="RANK,ALPHA", help="Train a LoRA adapter of this rank and alpha (default 16,32).")
@click.option("--full", is_flag=True, help="Train every weight instead of an adapter.")
@click.option(
    "--epochs",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Passes over the data.",
)
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many steps (overrides --epochs).")
@click.option("--lr", "learning_rate", type=float, default=2e-4, show_default=True, help="Learning rate.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True, help="Rows per step.")
@click.option("--max-length", type=click.IntRange(min=16), default=1024, show_default=True, help="Tokens per row.")
@click.option("--save-steps", type=click.IntRange(min=1), default=50, show_default=True, help="Checkpoint interval.")
@click.option(
    "--report-to",
    type=click.Choice(["none", "wandb", "mlflow", "tensorboard"]),
    default="none",
    show_default=True,
    help="Where the trainer logs its metrics as well.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initialisation and data order.")
@click.option("--key", "key_name", help="The workspace key that signs the receipt (default: [signing] key).")
@click.option("--allow-untrusted", is_flag=True, help="Train on a dataset whose signer you do not trust.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option(
    "--on",
    "where",
    type=click.Choice(["local", "gpu"]),
    default="local",
    show_default=True,
    help="Train on this machine, or on a GPU rented on Vast.ai (destroyed when the run ends).",
)
@click.option(
    "--image",
    metavar="IMAGE",
    help="With --on gpu: the instance's image (default: pytorch/pytorch:2.5.1-cuda12.4-cudnn9-devel).",
)
@click.option("--budget-usd", type=click.FloatRange(min=0), help="With --on gpu: the most this rental may cost.")
@click.option(
    "--hours",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    show_default=True,
    help="With --on gpu: how long the rental may last (its budget and TTL).",
)
@click.option("--gpu", "gpus", multiple=True, help='With --on gpu: GPU model, e.g. "RTX 4090" (repeatable).')
@click.option("--max-price", type=click.FloatRange(min=0.001), help="With --on gpu: most dollars per hour.")
@click.option("--progress-lines", is_flag=True, hidden=True, help="Print progress as plain lines (for --on gpu).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def train(
    state: CliState,
    dataset: Path,
    base: str,
    out: Path,
    method: str,
    lora: str | None,
    full: bool,
    epochs: float,
    max_steps: int | None,
    learning_rate: float,
    batch_size: int,
    max_length: int,
    save_steps: int,
    report_to: str,
    seed: int,
    key_name: str | None,
    allow_untrusted: bool,
    resume: bool,
    where: str,
    image: str | None,
    budget_usd: float | None,
    hours: float,
    gpus: tuple[str, ...],
    max_price: float | None,
    progress_lines: bool,
    as_json: bool,
) -> None:
    """Train a student on the signed dataset in DATASET (SFT, DPO or both; LoRA or every weight).

    The dataset is verified first (an altered one is refused; an untrusted one needs
    --allow-untrusted).  SFT learns from the `messages` of each pair with the loss on the assistant's
    turns only; DPO from the pairs' revisions (first draft rejected, accepted text chosen) against an
    explicit reference model; the validation split is the eval set.  --out gets `model/` and a
    `receipt.json` signed with a workspace key that names the dataset, the base model, the settings
    and the metrics (`arcticcodex receipt verify`).  Kill it at any time: --resume continues.

    Needs the extra: pip install 'arcticcodex[train]'.

    --on gpu rents a GPU (within --budget-usd and [gpu] budgets, for at most --hours), runs this
    same command there on a copy of the dataset, streams its log, brings model/ and the receipt
    back, checks them against the dataset and these settings, signs the receipt here (the key never
    leaves this machine) and destroys the instance, whatever happens.

    \b
    Example:
      arcticcodex train datasets/v1 --base Qwen/Qwen2.5-0.5B-Instruct --out models/v1
      arcticcodex train datasets/v1 --base Qwen/Qwen2.5-0.5B-Instruct --out models/v1 --on gpu --budget-usd 3
      arcticcodex train datasets/v1 --base ./my-base --out models/v1-dpo --method sft+dpo --full --max-steps 200
      arcticcodex train datasets/v1 --base ./my-base --out models/v1 --resume
    """
    try:
        from ..training import TrainSettings, train_model
    except ImportError as exc:  # the [train] extra is missing
        raise UserError(f"training needs the extra: pip install 'arcticcodex[train]' ({exc})") from exc
    settings = TrainSettings(
        base=base,
        method=method,  # type: ignore[arg-type]
        lora=None if full else _lora(lora),
        epochs=epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        batch_size=batch_size,
        max_length=max_length,
        save_steps=save_steps,
        eval_steps=save_steps,
        report_to=report_to,
        seed=seed,
        allow_untrusted=allow_untrusted,
    )
    if full and lora:
        raise click.UsageError("give --lora or --full, not both")
    workspace = state.workspace()
    keyring = KeyRing.for_user(KeyStore(workspace.keys_dir))
    if where == "local" and (image or budget_usd is not None or gpus or max_price is not None):
        raise click.UsageError("--image, --budget-usd, --gpu and --max-price go with --on gpu")
    with _Bar(disabled=as_json or progress_lines) as report:
        if where == "gpu":
            result = _train_on_gpu(
                workspace, dataset, out, settings, keyring, key_name, resume, report, image, budget_usd, hours, gpus,
                max_price,
            )  # fmt: skip
        else:
            result = train_model(
                workspace, dataset, out, settings, keyring=keyring, key=key_name, resume=resume,
                progress=_progress_line if progress_lines else report,
            )  # fmt: skip
    if as_json:
        click.echo(
            json.dumps({"out": str(result.out), "model": str(result.model), "metrics": result.metrics}, indent=2)
        )
        return
    for stage in settings.method.split("+"):
        numbers = result.metrics.get(stage, {})
        before, after = numbers.get("eval_loss_before"), numbers.get("eval_loss")
        held_out = f"; held-out loss {before:.4f} → {after:.4f}" if before is not None and after is not None else ""
        click.echo(f"{stage}: train loss {numbers.get('train_loss', float('nan')):.4f}{held_out}")
    click.echo(f"model: {result.model}")
    click.echo(f"receipt: {result.out / 'receipt.json'} (check it: arcticcodex receipt verify {result.out})")


def _progress_line(stage: str, step: int, total: int) -> None:
    """Progress as a plain line, which a run on a GPU streams back to drive the bar there (training.remote)."""
    from ..training.remote import PROGRESS_MARK

    click.echo(f"{PROGRESS_MARK} {stage} {step} {total}", err=True)


def _train_on_gpu(
    workspace: Workspace,
    dataset: Path,
    out: Path,
    settings: TrainSettings,
    keyring: KeyRing,
    key_name: str | None,
    resume: bool,
    report: Callable[[str, int, int], None],
    image: str | None,
    budget_usd: float | None,
    hours: float,
    gpus: tuple[str, ...],
    max_price: float | None,
) -> TrainingResult:
    """The run on a rented GPU (arcticcodex.training.remote), its log on stderr as it comes."""
    from ..gpu import GpuBudget, OfferQuery, VastInstanceManager
    from ..training.remote import DEFAULT_TRAIN_IMAGE, GpuTraining, train_on_gpu

    if resume:
        raise click.UsageError("--resume continues a run on this machine; a run with --on gpu starts afresh")
    gpu_settings = workspace.config.gpu
    budget = GpuBudget(gpu_settings.budget_usd, budget_usd if budget_usd is not None else gpu_settings.run_budget_usd)
    plan = GpuTraining(
        query=OfferQuery(min_vram_gb=24, gpu_names=gpus, max_price=max_price),
        image=image or DEFAULT_TRAIN_IMAGE,
        hours=hours,
        python=gpu_settings.train_python,
        pip_args=gpu_settings.train_pip_args,
    )
    with VastInstanceManager(workspace, budget=budget) as manager:
        return train_on_gpu(
            workspace, dataset, out, settings, keyring=keyring, manager=manager, plan=plan, key=key_name,
            log=lambda line: click.echo(escape_controls(line), err=True), progress=report,
        )  # fmt: skip


class _Bar:
    """A rich progress bar with a task per stage, and the function that advances it."""

    def __init__(self, *, disabled: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=disabled,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Callable[[str, int, int], None]:
        self.progress.__enter__()
        return self.report

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def report(self, stage: str, step: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total or None)
        self.progress.update(self.tasks[stage], completed=step, total=total or None)


@click.group()
def receipt() -> None:
    """Check the signed receipts `arcticcodex train` writes beside every model."""


@receipt.command("verify")
@click.argument("model_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--dataset", type=click.Path(file_okay=False, path_type=Path), help="Also check it is this dataset.")
@click.option("--base", type=click.Path(file_okay=False, path_type=Path), help="Also check it is this base model.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_state
def verify(state: CliState, model_dir: Path, dataset: Path | None, base: Path | None, as_json: bool) -> None:
    """Check the receipt in MODEL_DIR: its signature, every file it names, and who signed it.

    Two verdicts, as for datasets.  Integrity: the receipt is unaltered, every model file has the
    digest it names and no weight file is unaccounted for (and, when given, --dataset and --base
    are the ones it was trained from).  Trust: the signer is a key you trust.

    \b
    Exit status: 0 intact and trusted, 1 NOT intact, 2 intact but the signer is not trusted.

    \b
    Example:
      arcticcodex receipt verify models/v1
      arcticcodex receipt verify models/v1 --dataset datasets/v1 --json
    """
    from ..training.receipt import ReceiptReport

    try:
        keystore: KeyStore | None = KeyStore(state.workspace().keys_dir)
    except WorkspaceNotFoundError:
        keystore = None
    report = ReceiptReport.check(model_dir, keyring=KeyRing.for_user(keystore), dataset=dataset, base=base)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for problem in report.problems:
            click.echo(escape_controls(problem))
        trained_on = report.receipt.get("dataset", {}).get("path", "?")
        if not report.ok:
            click.echo(f"FAILED: NOT intact, {len(report.problems)} problem(s)", err=True)
        elif report.trusted:
            click.echo(f"OK: intact, signer trusted ({report.trusted_as}) — trained on {escape_controls(trained_on)}")
        else:
            click.echo(f"intact, signer NOT trusted — {report.trust_note}", err=True)
    if not report.ok:
        raise SystemExit(1)
    if not report.trusted:
        raise SystemExit(2)
