"""``arcticcodex runs``: the distillation runs of this workspace — what each did, cost and left to do."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..distill.journal import RunRecord
from ..distill.run import Distiller
from ..distill.summary import RunSummary
from ..errors import RecordNotFoundError
from . import CliState, pass_state
from .display import shown

PIPED_WIDTH = 240  # a table read by a script or a pager is not cut to 80 columns
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@click.group()
def runs() -> None:
    """List and inspect distillation runs: status, counts, spend, output and failures.

    `arcticcodex distill` starts runs; `arcticcodex distill --resume RUN` (or `--resume latest`) finishes one.
    """


@runs.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="The most recent N runs.")
@JSON_OPTION
@pass_state
def list_(state: CliState, limit: int, as_json: bool) -> None:
    """The most recent runs, newest first: status, source, counts, spend and output folder.

    \b
    Example:
      arcticcodex runs list
      arcticcodex runs list --json | jq '.[] | select(.status != "complete") | .run_id'
    """
    with Distiller(state.workspace()) as distiller:
        rows = [(record, distiller.summary(record.id)) for record in distiller.journal.runs(limit=limit)]
    if as_json:
        click.echo(json.dumps([_row(record, summary) for record, summary in rows], indent=2))
        return
    if not rows:
        click.echo("no runs yet; start one with `arcticcodex distill --prompts FILE --out DIR`")
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("run", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("acc/rej/fail/pend", justify="right", no_wrap=True)
    table.add_column("spent", justify="right", no_wrap=True)
    table.add_column("source", overflow="fold")
    table.add_column("out", overflow="fold")
    for record, summary in rows:
        table.add_row(
            record.id,
            record.created_at[:16].replace("T", " "),
            summary.status,
            f"{summary.accepted}/{summary.rejected}/{summary.failed}/{summary.pending}",
            f"${summary.cost_usd:.4f}",
            shown(str(record.settings.get("source", ""))),
            shown(record.out),
        )
    Console(width=None if sys.stdout.isatty() else PIPED_WIDTH).print(table)


@runs.command()
@click.argument("run_id", metavar="RUN")
@JSON_OPTION
@pass_state
def show(state: CliState, run_id: str, as_json: bool) -> None:
    """One run: status, settings, counts, spend, the dataset it wrote, and its failures (RUN may be 'latest').

    \b
    Example:
      arcticcodex runs show latest
      arcticcodex runs show run-20261125-101500-3fa2c1 --json
    """
    with Distiller(state.workspace()) as distiller:
        if run_id == "latest":
            latest = distiller.journal.runs(limit=1)
            if not latest:
                raise RecordNotFoundError("runs show latest: this workspace has no runs yet")
            run_id = latest[0].id
        record = distiller.journal.run(run_id)
        summary = distiller.summary(run_id)
    row = _row(record, summary)
    if as_json:
        click.echo(json.dumps(row, indent=2))
        return
    settings = record.settings
    lines = [
        f"run       {record.id} ({summary.status}), created {record.created_at[:19].replace('T', ' ')}",
        f"source    {shown(str(settings.get('source', '')))}",
        f"out       {shown(record.out)}",
        f"tasks     {record.task_count}: {summary.accepted} accepted, {summary.rejected} rejected, "
        f"{summary.failed} failed, {summary.pending} pending"
        + (f", {summary.awaiting_review} awaiting review" if summary.awaiting_review else ""),
        f"spent     ${summary.cost_usd:.4f}" + _budget(settings),
        f"written   {summary.written} pairs ({summary.validation} for validation), {summary.duplicates_removed} "
        f"exact and {summary.near_duplicates_removed} near duplicates removed",
        f"settings  drafter {settings.get('drafter')}"
        + (f" (then {settings['fallback_drafter']})" if settings.get("fallback_drafter") else "")
        + f", teachers {', '.join(settings.get('teachers') or []) or 'all configured'}, threshold "
        f"{settings.get('threshold')}, max rounds {settings.get('max_rounds')}, key {settings.get('key')}",
    ]
    if summary.note:
        lines.append(f"note      {shown(summary.note)}")
    if summary.hint:
        lines.append(f"empty     {shown(summary.hint)}")
    click.echo("\n".join(lines))
    for position, reason in summary.failures:
        click.echo(f"  task {position} failed: {shown(reason)}")
    if summary.failed > len(summary.failures):
        click.echo(f"  … {summary.failed - len(summary.failures)} more failures (--json lists the first ones too)")
    if summary.status != "complete":
        click.echo(f"finish with: arcticcodex distill --resume {record.id}")


def _budget(settings: dict[str, Any]) -> str:
    budget = settings.get("budget_usd")
    return f" of a ${budget:.2f} budget" if isinstance(budget, int | float) else ""


def _row(record: RunRecord, summary: RunSummary) -> dict[str, Any]:
    return {
        **summary.to_json(),
        "created_at": record.created_at,
        "tasks": record.task_count,
        "duplicate_prompts": record.duplicate_prompts,
        "source": record.settings.get("source"),
        "settings": record.settings,
    }
