"""``arcticcodex eval``: a student measured against its teacher on a dataset's held-out questions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..provenance.keystore import KeyStore
from ..provenance.trust import KeyRing
from ..terminal import escape_controls
from . import CliState, pass_state


def _interval(shown: dict[str, Any] | None) -> str:
    if not shown or shown.get("mean") is None:
        return "—"
    return f"{shown['mean']:.3f} [{shown['low']:.3f}, {shown['high']:.3f}] n={shown['n']}"


def _table(report: dict[str, Any]) -> Table:
    from ..evaluation.chart import LABELS

    models = report["models"]
    table = Table(title=f"held-out evaluation {report['id']} ({len(report['questions'])} questions)")
    table.add_column("metric")
    for label in models:
        table.add_column(escape_controls(f"{label}: {models[label]['spec']}"))
    for metric, name in LABELS.items():
        table.add_row(name, *(_interval(model["metrics"].get(metric)) for model in models.values()))
    return table


@click.group(invoke_without_command=True)
@click.option("--student", help="The model to evaluate: a configured teacher's name, or a model folder.")
@click.option("--baseline", help="A model to compare it with (the base model), named the same way.")
@click.option(
    "--heldout",
    type=click.Path(file_okay=False, path_type=Path),
    help="The signed dataset whose validation split holds the questions.",
)
@click.option(
    "--judge",
    "judges",
    metavar="TEACHERS",
    help="Comma-separated teachers that judge (default: the workspace's critics; offline: the local judge).",
)
@click.option("--budget-usd", type=click.FloatRange(min=0), help="Stop once this much has been spent on calls.")
@click.option("--allow-untrusted", is_flag=True, help="Evaluate on a dataset whose signer you do not trust.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N held-out questions.")
@click.option("--concurrency", type=click.IntRange(min=1), default=4, show_default=True, help="Questions at once.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=512, show_default=True, help="Longest answer.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap intervals.")
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path), help="Also draw the comparison to FILE.png.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@click.pass_context
def eval_(
    ctx: click.Context,
    student: str | None,
    baseline: str | None,
    heldout: Path | None,
    judges: str | None,
    budget_usd: float | None,
    allow_untrusted: bool,
    limit: int | None,
    concurrency: int,
    max_tokens: int,
    seed: int,
    chart: Path | None,
    as_json: bool,
) -> None:
    """Measure a student against its teacher on the held-out questions of a signed dataset.

    Each question of the dataset's validation split is asked of --student (and --baseline): a
    configured teacher (an endpoint such as vLLM serving the adapter), or a model folder, which is
    served here with `transformers serve`.  Each answer gets exact match and token F1 against the
    accepted answer, a grounded rate (the verifier's claim check against the pair's evidence: share
    supported, share contradicted) and a win rate against the teacher's answer, judged in both
    orders.  Means come with seeded 95 % bootstrap intervals.  The result is stored in the workspace
    beside the student's receipt: see `arcticcodex eval list`.

    \b
    Example:
      arcticcodex eval --student out/student --baseline base-model/ --heldout out/my-dataset
      arcticcodex eval --student my-vllm --heldout out/my-dataset --judge deepseek --budget-usd 1 --json
      arcticcodex eval --student out/student --heldout out/my-dataset --chart eval.png
    """
    if ctx.invoked_subcommand is not None:
        return
    if student is None or heldout is None:
        raise click.UsageError("give --student MODEL and --heldout DATASET (or a command: list, show)")
    state = ctx.find_object(CliState)
    if state is None:  # pragma: no cover - the root command always sets it
        raise click.UsageError("no workspace")
    from ..evaluation.chart import write_png
    from ..evaluation.session import EvalRequest, run_eval_sync

    workspace = state.workspace()
    request = EvalRequest(
        student=student,
        heldout=heldout,
        baseline=baseline,
        judges=tuple(name.strip() for name in (judges or "").split(",") if name.strip()),
        budget_usd=budget_usd,
        allow_untrusted=allow_untrusted,
        concurrency=concurrency,
        limit=limit,
        max_tokens=max_tokens,
        seed=seed,
    )
    keyring = KeyRing.for_user(KeyStore(workspace.keys_dir))
    with Progress(
        TextColumn("questions"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=as_json, transient=True
    ) as bar:
        task = bar.add_task("eval", total=None)
        report = run_eval_sync(
            workspace,
            request,
            keyring=keyring,
            on_question=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if chart is not None:
        write_png(report, chart)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    Console(soft_wrap=True).print(_table(report))
    click.echo(f"judged by: {', '.join(report['judges'])}; spent ${report['spend']['spent_usd']:.4f}")
    if chart is not None:
        click.echo(f"chart: {chart}")
    click.echo(f"stored as {report['id']} (see it again: arcticcodex eval show {report['id']})")


@eval_.command("list")
@click.option("--receipt", "receipt_sha256", metavar="SHA256", help="Only evaluations of the model with this receipt.")
@click.option("--json", "as_json", is_flag=True, help="Print the evaluations as JSON.")
@pass_state
def list_(state: CliState, receipt_sha256: str | None, as_json: bool) -> None:
    """List the evaluations stored in this workspace, newest first.

    \b
    Example:
      arcticcodex eval list
      arcticcodex eval list --receipt 3f2a… --json
    """
    from ..evaluation.store import Evals

    evals = Evals(state.workspace())
    records = evals.for_receipt(receipt_sha256) if receipt_sha256 else evals.newest()
    if as_json:
        click.echo(json.dumps([record.to_json() for record in records], indent=2))
        return
    if not records:
        click.echo("no evaluations yet: run `arcticcodex eval --student MODEL --heldout DATASET`")
        return
    table = Table()
    for column in ("id", "created", "student", "baseline", "questions", "win rate", "token F1"):
        table.add_column(column)
    for record in records:
        metrics = record.summary.get("student", {})
        table.add_row(
            record.id,
            record.created_at[:19],
            escape_controls(record.student),
            escape_controls(record.baseline or "—"),
            str(record.questions),
            _interval(metrics.get("win_rate")),
            _interval(metrics.get("token_f1")),
        )
    Console(soft_wrap=True).print(table)


@eval_.command("show")
@click.argument("eval_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the whole stored report as JSON.")
@pass_state
def show(state: CliState, eval_id: str, as_json: bool) -> None:
    """Show one stored evaluation: its table, or the whole report with --json.

    \b
    Example:
      arcticcodex eval show eval-0123456789ab
      arcticcodex eval show eval-0123456789ab --json
    """
    from ..evaluation.store import Evals

    record = Evals(state.workspace()).get(eval_id)
    if as_json:
        click.echo(json.dumps(record.to_json(full=True), indent=2))
        return
    Console(soft_wrap=True).print(_table(record.report))
    if record.receipt_sha256:
        click.echo(f"student receipt SHA-256: {record.receipt_sha256}")
