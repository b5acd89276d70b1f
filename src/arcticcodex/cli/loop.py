"""``arcticcodex loop``: distil with the student as the drafter, train it, measure it, and again."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..distill.defaults import DistillDefaults
from ..distill.settings import RunSettings
from ..distill.tasks import require_sources
from ..errors import RecordNotFoundError
from ..evaluation.chart import LABELS
from ..provenance.keystore import KeyStore
from ..provenance.trust import KeyRing
from ..terminal import escape_controls
from . import CliState, pass_state
from .options import given_on_command_line, option_name
from .train import _lora

if TYPE_CHECKING:
    from ..loop import LoopRecord

# what a resumed loop was started with: only --budget-usd may change
START_OPTIONS = (
    "prompts", "from_vault", "questions_by", "questions_per_chunk", "limit", "base", "iterations", "out", "heldout",
    "validation_fraction", "teacher_names", "threshold", "max_rounds", "concurrency", "key_name", "method", "lora",
    "full", "epochs", "max_steps", "learning_rate", "batch_size", "max_length", "judges", "patience",
    "min_improvement", "first_drafter", "eval_max_tokens", "eval_limit", "allow_untrusted",
)  # fmt: skip
STATUS_EXIT = {"complete": 0, "stopped_early": 0, "stopped": 4, "running": 4, "failed": 1}


@click.group(invoke_without_command=True)
@click.option("--prompts", type=click.Path(dir_okay=False, path_type=Path), help="A JSONL or CSV prompts file.")
@click.option("--from-vault", is_flag=True, help="A curriculum: questions about the vault's chunks.")
@click.option("--questions-by", metavar="TEACHER", help="--from-vault: 'offline' (the default) or a teacher.")
@click.option("--questions-per-chunk", type=click.IntRange(1, 10), help="--from-vault: questions per chunk.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many prompts.")
@click.option("--base", help="The model to start from: a local folder or a Hugging Face id.")
@click.option("--iterations", type=click.IntRange(1, 100), default=3, show_default=True, help="At most this many.")
@click.option("--out", type=click.Path(path_type=Path), help="The loop's folder (new or empty).")
@click.option(
    "--heldout",
    type=click.Path(file_okay=False, path_type=Path),
    help="A signed dataset whose validation split is the held-out set (default: iteration 1's).",
)
@click.option(
    "--validation",
    "validation_fraction",
    type=float,
    default=0.1,
    show_default=True,
    help="Fraction of each iteration's pairs held out (iteration 1's are the loop's held-out questions).",
)
@click.option("--teachers", "teacher_names", metavar="A,B", help="Use only these configured teachers.")
@click.option("--threshold", type=float, help="Accept at this quality (default 0.8).")
@click.option("--max-rounds", type=int, help="Critique/rewrite rounds per prompt (default 3).")
@click.option("--concurrency", type=int, help="Prompts in flight at once (default 8).")
@click.option("--budget-usd", type=click.FloatRange(min=0), help="The most the whole loop may spend on teachers.")
@click.option("--key", "key_name", help="The signing key (default: [distill] key, else [signing] key).")
@click.option(
    "--method",
    type=click.Choice(["auto", "sft", "dpo", "sft+dpo"]),
    default="auto",
    show_default=True,
    help="auto: SFT, then DPO when the teachers improved on some of the student's drafts.",
)
@click.option("--lora", metavar="RANK,ALPHA", help="Train LoRA adapters of this rank and alpha (default 16,32).")
@click.option("--full", is_flag=True, help="Train every weight instead of an adapter.")
@click.option(
    "--epochs",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Passes over each iteration's data.",
)
@click.option("--max-steps", type=click.IntRange(min=1), help="Training steps per iteration (overrides --epochs).")
@click.option("--lr", "learning_rate", type=float, default=2e-4, show_default=True, help="Learning rate.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True, help="Rows per step.")
@click.option("--max-length", type=click.IntRange(min=16), default=1024, show_default=True, help="Tokens per row.")
@click.option("--judge", "judges", metavar="A,B", help="The teachers that judge (default: the critics; else local).")
@click.option("--patience", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Stop after this many iterations in a row that do not raise the best win rate.")  # fmt: skip
@click.option("--min-improvement", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="How much a win rate must rise to count as an improvement.")  # fmt: skip
@click.option("--first-drafter", default="base", show_default=True,
              help="Who drafts iteration 1: 'base' (the base model), 'auto', 'extractive' or a teacher.")  # fmt: skip
@click.option("--eval-max-tokens", type=click.IntRange(min=1), default=256, show_default=True,
              help="Longest answer a student gives to a held-out question.")  # fmt: skip
@click.option("--eval-limit", type=click.IntRange(min=1), help="Only the first N held-out questions.")
@click.option("--allow-untrusted", is_flag=True, help="Use a --heldout dataset whose signer you do not trust.")
@click.option("--resume", "resume_id", metavar="LOOP", help="Go on with a loop ('latest': the last one started).")
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path), help="Also draw the loop to FILE.png.")
@click.option("--json", "as_json", is_flag=True, help="Print the loop's summary as JSON.")
@click.pass_context
def loop(ctx: click.Context, /, **options: Any) -> None:
    """Distil with the student as the drafter, train it on what the teachers made of its drafts, measure it.

    Iteration K serves the student of iteration K-1 (the base model first) to draft every
    question; the teachers critique, verify and rewrite its drafts into a signed dataset (SFT pairs,
    and DPO pairs: its draft rejected, the accepted rewrite chosen); student K is trained from
    student K-1 with a signed receipt, and evaluated on the same held-out questions as every
    student before it (iteration 1's validation split, never distilled again).  The loop stops
    early once the win rate stops improving.  Each step is journaled: kill it at any time and
    `--resume LOOP` goes on from the step it was in.  One --budget-usd covers the whole loop.

    Needs the extras: pip install 'arcticcodex[train,serving]'.

    \b
    Exit status: 0 finished (all iterations, or stopped early because the win rate stopped
    improving); 1 refused or failed; 4 stopped with work left (the budget, a teacher outage):
    resume it.

    \b
    Example:
      arcticcodex loop --prompts prompts.jsonl --base Qwen/Qwen2.5-0.5B-Instruct --iterations 3 --out loops/v1
      arcticcodex loop --from-vault --limit 500 --base ./my-base --out loops/docs --budget-usd 5
      arcticcodex loop --resume latest --budget-usd 10
      arcticcodex loop show latest --chart loop.png
    """
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.find_object(CliState)
    if state is None:  # pragma: no cover - the root command always sets it
        raise click.UsageError("no workspace")
    from ..loop import StudentLoop

    workspace = state.workspace()
    keyring = KeyRing.for_user(KeyStore(workspace.keys_dir))
    with _Observer(disabled=options["as_json"]) as observer:
        loops = StudentLoop(workspace, keyring=keyring, key=options["key_name"], observer=observer)
        if options["resume_id"]:
            loop_id = _resumed(ctx, loops, options)
            budget = options["budget_usd"]
        else:
            loop_id = loops.start(_settings(ctx, workspace, options), options["out"]).id
            budget = None
            if not options["as_json"]:
                click.echo(f"loop {loop_id} → {options['out']}", err=True)
        try:
            record = loops.execute_sync(loop_id, budget_usd=budget)
        except KeyboardInterrupt:
            click.echo(f"\ninterrupted; go on with: arcticcodex loop --resume {loop_id}", err=True)
            # from None: the user pressed Ctrl-C; a traceback would only hide the exit status
            raise SystemExit(130) from None
    _report(record, options["chart"], options["as_json"])
    ctx.exit(STATUS_EXIT.get(record.status, 1))


def _settings(ctx: click.Context, workspace: Any, options: dict[str, Any]) -> Any:
    from ..loop import LoopSettings
    from ..training import TrainSettings

    kind = require_sources(prompts=options["prompts"], from_conversations=False, from_vault=options["from_vault"])
    if options["base"] is None or options["out"] is None:
        raise click.UsageError("give --base MODEL and --out DIR (or --resume LOOP)")
    if options["full"] and options["lora"]:
        raise click.UsageError("give --lora or --full, not both")
    for name in ("questions_by", "questions_per_chunk"):
        if kind != "from_vault" and given_on_command_line(ctx, name):
            raise click.UsageError(f"--{name.replace('_', '-')} shapes a --from-vault curriculum; add --from-vault")
    defaults = DistillDefaults.load(workspace.config)
    key, key_origin = defaults.key(options["key_name"], given_as="--key")
    names = options["teacher_names"]
    run = RunSettings(
        threshold=defaults.pick("threshold", options["threshold"]),
        max_rounds=defaults.pick("max_rounds", options["max_rounds"]),
        concurrency=defaults.pick("concurrency", options["concurrency"]),
        teachers=_names(names) if names is not None else defaults.pick("teachers", None),
        key=key,
        key_origin=key_origin,
        sensitive_data=defaults.pick("sensitive_data", None),
    )
    train = TrainSettings(
        base=options["base"],
        lora=None if options["full"] else _lora(options["lora"]),
        epochs=options["epochs"],
        max_steps=options["max_steps"],
        learning_rate=options["learning_rate"],
        batch_size=options["batch_size"],
        max_length=options["max_length"],
    )
    source = {
        "kind": kind,
        "prompts": str(options["prompts"].resolve()) if options["prompts"] else None,
        "questions_by": defaults.pick("questions_by", options["questions_by"]),
        "questions_per_chunk": defaults.pick("questions_per_chunk", options["questions_per_chunk"]),
        "limit": defaults.pick("limit", options["limit"]),
    }
    return LoopSettings(
        base=options["base"],
        run=run,
        train=train,
        iterations=options["iterations"],
        method=options["method"],
        first_drafter=options["first_drafter"],
        heldout=str(options["heldout"].resolve()) if options["heldout"] else None,
        allow_untrusted=options["allow_untrusted"],
        validation_fraction=options["validation_fraction"],
        budget_usd=options["budget_usd"],
        patience=options["patience"],
        min_improvement=options["min_improvement"],
        judges=_names(options["judges"] or ""),
        eval_max_tokens=options["eval_max_tokens"],
        eval_limit=options["eval_limit"],
        source=source,
    )


def _resumed(ctx: click.Context, loops: Any, options: dict[str, Any]) -> str:
    given = [name for name in START_OPTIONS if given_on_command_line(ctx, name)]
    if given:
        names = ", ".join("--" + option_name(ctx, name) for name in given)
        raise click.UsageError(
            f"--resume goes on with a loop as it was started; only --budget-usd may change (got {names})"
        )
    return _loop_id(loops.journal, options["resume_id"])


def _loop_id(journal: Any, given: str) -> str:
    if given != "latest":
        return given
    newest = journal.newest(limit=1)
    if not newest:
        raise RecordNotFoundError(
            "this workspace has no loops yet; start one with "
            "`arcticcodex loop --prompts prompts.jsonl --base MODEL --out DIR`"
        )
    return str(newest[0].id)


def _names(value: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in value.split(",") if name.strip())


# -- the summary --------------------------------------------------------------------------------


def _interval(shown: dict[str, Any] | None) -> str:
    if not shown or shown.get("mean") is None:
        return "—"
    return f"{shown['mean']:.3f} [{shown['low']:.3f}, {shown['high']:.3f}]"


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _table(summary: dict[str, Any]) -> Table:
    """One column per student (few: a loop has a handful of iterations), one row per figure."""
    rows = summary["iterations"]
    table = Table(title=f"loop {summary['id']}: {summary['status'].replace('_', ' ')}")
    table.add_column("")
    for row in rows:
        best = " ★" if row["iteration"] == summary["best_iteration"] else ""
        table.add_column(f"{row['iteration']}{best}" if row["iteration"] else "0 (base)")

    def count(value: Any) -> str:
        return "—" if value is None else str(value)

    def loss(row: dict[str, Any]) -> str:
        before, after = row.get("heldout_loss_before"), row.get("heldout_loss_after")
        return f"{before:.3f} → {after:.3f}" if before is not None and after is not None else "—"

    figures: list[tuple[str, Any]] = [
        ("drafted by", lambda row: escape_controls(row.get("drafter") or "—")),
        ("accepted pairs", lambda row: count(row.get("accepted"))),
        ("method", lambda row: row.get("method") or "—"),
        ("DPO pairs", lambda row: count(row.get("dpo_pairs"))),
        ("held-out loss", loss),
        *((LABELS[metric], _metric(metric)) for metric in ("win_rate", "token_f1", "grounded_supported")),
        ("teacher $", lambda row: f"{row['teacher_usd']:.4f}"),
        ("$ / accepted pair", lambda row: _number(row.get("usd_per_accepted_pair"))),
    ]
    for name, shown in figures:
        table.add_row(name, *(shown(row) for row in rows))
    return table


def _metric(metric: str) -> Any:
    return lambda row: _interval((row.get("metrics") or {}).get(metric))


def _console() -> Console:
    """Wide when the output is not a terminal (a file, a pipe): a table is not wrapped at 80 columns there."""
    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _report(record: LoopRecord, chart: Path | None, as_json: bool) -> None:
    from ..loop.report import loop_json, write_loop_png

    summary = loop_json(record)
    if chart is not None:
        write_loop_png(record, chart)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    _console().print(_table(summary))
    if record.note:
        click.echo(escape_controls(record.note))
    best = summary["best_iteration"]
    if best is not None:
        model = next(row["model"] for row in summary["iterations"] if row["iteration"] == best)
        click.echo(f"best student: iteration {best}, {escape_controls(str(model))}")
    click.echo(f"spent ${summary['spent_usd']:.4f} on teachers in all")
    if chart is not None:
        click.echo(f"chart: {chart}")
    if record.status in ("stopped", "running"):
        click.echo(f"go on with: arcticcodex loop --resume {record.id}")


# -- progress -----------------------------------------------------------------------------------


class _Observer:
    """The loop's progress on stderr: a line per step, a bar for the step's prompts, steps or questions."""

    def __init__(self, *, disabled: bool) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=disabled,
        )
        self.disabled = disabled
        self.task: TaskID | None = None

    def __enter__(self) -> _Observer:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def stage(self, iteration: int, stage: str, total: int | None) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        label = "base model" if iteration == 0 else f"iteration {iteration}"
        self.task = self.progress.add_task(f"{label}: {stage}", total=total, detail="")

    def advance(self, done: int, total: int, detail: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=done, total=total, detail=detail)

    def finished(self, iteration: int, stage: str, result: dict[str, Any]) -> None:
        if self.disabled:
            return
        label = "base model" if iteration == 0 else f"iteration {iteration}"
        if stage == "distill":
            line = f"{result['accepted']} accepted, {result['written']} written, ${result['spent_usd']:.4f}"
        elif stage == "train":
            line = f"{result['method']} → {result['out']}"
        else:
            line = f"win rate {_interval(result['metrics'].get('win_rate'))} on {result['questions']} questions"
        self.progress.console.print(f"{label} {stage}: {escape_controls(line)}")


@loop.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the loops as JSON.")
@pass_state
def list_(state: CliState, as_json: bool) -> None:
    """List this workspace's loops, newest first: status, iterations done and the best win rate.

    \b
    Example:
      arcticcodex loop list
    """
    from ..loop import LoopJournal
    from ..loop.report import loop_json

    summaries = [loop_json(record) for record in LoopJournal(state.workspace()).newest()]
    if as_json:
        click.echo(json.dumps(summaries, indent=2))
        return
    if not summaries:
        click.echo("no loops yet: run `arcticcodex loop --prompts prompts.jsonl --base MODEL --out DIR`")
        return
    table = Table()
    for column in ("id", "created", "status", "iterations", "best", "win rate", "spent $", "folder"):
        table.add_column(column)
    for summary in summaries:
        rows = summary["iterations"]
        best = summary["best_iteration"]
        shown = next((row for row in rows if row["iteration"] == best), None)
        table.add_row(
            summary["id"],
            summary["created_at"][:19],
            summary["status"].replace("_", " "),
            f"{max((row['iteration'] for row in rows), default=0)} of {summary['settings']['iterations']}",
            str(best) if best is not None else "—",
            _interval((shown or {}).get("metrics", {}).get("win_rate") if shown else None),
            f"{summary['spent_usd']:.4f}",
            escape_controls(summary["out"]),
        )
    _console().print(table)


@loop.command("show")
@click.argument("loop_id", metavar="LOOP")
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path), help="Also draw the loop to FILE.png.")
@click.option("--json", "as_json", is_flag=True, help="Print the loop's summary as JSON.")
@pass_state
def show(state: CliState, loop_id: str, chart: Path | None, as_json: bool) -> None:
    """Show one loop ('latest': the last started): its table per iteration, and a chart with --chart.

    \b
    Example:
      arcticcodex loop show latest
      arcticcodex loop show loop-20261204-101500-a1b2c3 --chart loop.png
    """
    from ..loop import LoopJournal

    journal = LoopJournal(state.workspace())
    _report(journal.get(_loop_id(journal, loop_id)), chart, as_json)
