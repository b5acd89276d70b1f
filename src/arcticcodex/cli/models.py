"""``arcticcodex models``: the students this workspace trained — each run, and its receipt's verdicts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..layout import MANIFEST_FILE
from ..provenance.keystore import KeyStore
from ..provenance.trust import KeyRing
from ..training.receipt import RECEIPT_FILE, ReceiptReport
from ..training.runs import TrainingRun, TrainingRuns
from . import CliState, pass_state
from .display import shown

PIPED_WIDTH = 240  # a table read by a script or a pager is not cut to 80 columns


@click.group()
def models() -> None:
    """List the models this workspace trained: each run's status, data, method and receipt verdicts."""


@models.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="The most recent N runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def list_(state: CliState, limit: int, as_json: bool) -> None:
    """The training runs, newest first: status, dataset, base, method, held-out loss and the receipt's verdicts.

    A receipt is checked as `arcticcodex receipt verify` checks it (every model file hashed; with the
    dataset it names, when that is still where it was): integrity, then who signed it.  A run killed
    before it finished stays "running" until `arcticcodex train DATASET --base MODEL --out DIR --resume`.

    \b
    Example:
      arcticcodex models list
      arcticcodex models list --json | jq '.[] | select(.receipt.ok | not) | .out'
    """
    workspace = state.workspace()
    keyring = KeyRing.for_user(KeyStore(workspace.keys_dir))
    rows = [(run, _check(run, keyring)) for run in TrainingRuns(workspace).list(limit=limit)]
    if as_json:
        click.echo(json.dumps([_row(run, report) for run, report in rows], indent=2))
        return
    if not rows:
        click.echo("no training runs yet; start one with `arcticcodex train DATASET --base MODEL --out DIR`")
        return
    table = Table(box=None, pad_edge=False)
    for name in ("run", "started", "status", "receipt", "method", "held-out loss", "dataset", "base", "out"):
        table.add_column(name, overflow="fold", no_wrap=name in ("run", "started", "status"))
    for run, report in rows:
        losses = ", ".join(
            f"{stage} {_loss(before)} → {_loss(after)}" for stage, before, after in run.held_out_losses()
        )
        table.add_row(
            run.id,
            run.started_at[:16].replace("T", " "),
            run.status,
            _verdict(report),
            run.method,
            losses or "—",
            shown(Path(run.dataset_path).name),
            shown(run.base_model),
            shown(run.out),
        )
    Console(width=None if sys.stdout.isatty() else PIPED_WIDTH).print(table)
    for run, report in rows:
        for problem in report.problems if report is not None else []:
            click.echo(f"{run.id}: {shown(problem)}")


def _check(run: TrainingRun, keyring: KeyRing) -> ReceiptReport | None:
    """The receipt's verdicts (None while the run has written none)."""
    folder = Path(run.out)
    if not (folder / RECEIPT_FILE).is_file():
        return None
    dataset = Path(run.dataset_path)
    named = dataset if (dataset / MANIFEST_FILE).is_file() else None
    return ReceiptReport.check(folder, keyring=keyring, dataset=named)


def _row(run: TrainingRun, report: ReceiptReport | None) -> dict[str, Any]:
    return run.to_json() | {"receipt": report.to_json() if report is not None else None}


def _verdict(report: ReceiptReport | None) -> str:
    if report is None:
        return "no receipt yet"
    return report.verdict


def _loss(value: float | None) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "—"
