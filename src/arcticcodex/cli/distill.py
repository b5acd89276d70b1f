"""``arcticcodex distill``: turn prompts, conversations or the vault into a signed dataset."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .._sync import run_sync
from ..distill.defaults import DistillDefaults
from ..distill.run import Distiller
from ..distill.settings import RunSettings
from ..distill.sourcing import Source
from ..distill.summary import RunSummary
from ..distill.tasks import require_sources
from ..errors import RecordNotFoundError
from . import CliState, default_workers, pass_state
from .display import shown
from .options import given_on_command_line, option_name

# options that shape a run: fixed when it starts, so a resumed run refuses them (only --budget-usd may change)
RUN_OPTIONS = (
    "threshold",
    "max_rounds",
    "concurrency",
    "teacher_names",
    "drafter",
    "key_name",
    "signer_id",
    "near_duplicate_threshold",
    "keep_near_duplicates",
    "near_duplicate_mode",
    "validation_fraction",
    "append",
    "human_review",
    "sensitive_data",
    "limit",
    "questions_by",
    "questions_per_chunk",
    "conversation_ids",
    "batch",
    "batch_poll_seconds",
    "engine",
    "shards",
)


@click.command()
@click.option("--prompts", type=click.Path(dir_okay=False, path_type=Path), help="A JSONL or CSV prompts file.")
@click.option("--from-conversations", is_flag=True, help="Every user turn of the vault's conversations.")
@click.option("--conversation", "conversation_ids", multiple=True, metavar="ID", help="Only these conversations.")
@click.option("--from-vault", is_flag=True, help="A curriculum: questions about the vault's chunks.")
@click.option(
    "--questions-by",
    metavar="TEACHER",
    help="Who writes --from-vault questions: 'offline' (headings and key sentences; the default) or a teacher.",
)
@click.option(
    "--questions-per-chunk", type=click.IntRange(1, 10), help="--from-vault: questions per chunk (default 2)."
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many prompts.")
@click.option("--out", type=click.Path(path_type=Path), help="The dataset folder to write (new or empty).")
@click.option("--resume", "resume_id", metavar="RUN", help="Finish an interrupted or stopped run ('latest': the last).")
@click.option("--threshold", type=float, help="Accept at this quality (default 0.8).")
@click.option("--max-rounds", type=int, help="Critique/rewrite rounds per prompt (default 3).")
@click.option("--concurrency", type=int, help="Prompts in flight at once (default 8).")
@click.option("--budget-usd", type=float, help="Stop when the teachers have cost this much (resumable).")
@click.option("--teachers", "teacher_names", metavar="A,B", help="Use only these configured teachers.")
@click.option(
    "--drafter", metavar="NAME", help="Who writes first answers: 'auto' (default), 'extractive' or a teacher."
)
@click.option("--key", "key_name", help="The signing key's name (default: [signing] key, else 'dataset').")
@click.option("--signer-id", default="arcticcodex", show_default=True, help="Who signs, as written in each record.")
@click.option(
    "--near-duplicates",
    "near_duplicate_threshold",
    type=float,
    default=0.95,
    show_default=True,
    help="Drop pairs this similar.",
)
@click.option(
    "--keep-near-duplicates/--drop-near-duplicates", default=None, help="Keep (or remove) near-duplicate pairs."
)
@click.option(
    "--near-duplicate-mode",
    type=click.Choice(["auto", "exact", "approximate"]),
    help="Screen near duplicates exactly, through an index, or 'auto' (exact below 10,000 kept; the default).",
)
@click.option("--validation", "validation_fraction", type=float, help="Fraction held out for validation (default 0).")
@click.option("--append", is_flag=True, help="Add to the dataset already in --out (it is verified first).")
@click.option(
    "--review/--no-review",
    "human_review",
    default=None,
    help="Accepted pairs wait for `arcticcodex review` before publishing.",
)
@click.option(
    "--sensitive-data",
    "sensitive_data",
    type=click.Choice(["block", "redact", "allow"]),
    help="A pair holding a secret or personal data: 'block' it to rejected.jsonl (default), 'redact' it, "
    "or 'allow' it (counted).",
)
@click.option(
    "--batch",
    is_flag=True,
    help="Send the teachers' calls through their Batch API, a round at a time: cheaper (the preset's "
    "batch_discount), slower; resumable.",
)
@click.option(
    "--batch-poll",
    "batch_poll_seconds",
    type=float,
    default=30.0,
    show_default=True,
    help="--batch: seconds between checks of a batch's status.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    help="Where the tasks run: this process (default) or shards on Ray (pip install 'arcticcodex[ray]').",
)
@click.option("--shards", type=click.IntRange(1, 100_000), help="--engine ray: split the tasks into N shards (8).")
@click.option("--ray-address", metavar="ADDR", help="--engine ray: join this Ray cluster (default: a local one).")
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as one JSON object.")
@pass_state
@click.pass_context
def distill(ctx: click.Context, state: CliState, /, **options: Any) -> None:
    """Draft, critique, verify and rewrite answers, and write the accepted ones as a signed dataset.

    Every step is journaled in the workspace: if the run is killed, `--resume RUN` (or `--resume
    latest`) finishes it with no pair lost or repeated, and teacher calls already made are answered
    from the cache.  With no teacher configured the offline local judge decides (no key, no network).
    Everything a run needs (teachers, drafter, signing key, --out) is checked before it is created.

    \b
    First answers (--drafter):
      auto        the offline extractive drafter answers from the evidence passages that best
                  match the prompt; when none matches, the run's rewriter (an API teacher, if one
                  is configured) writes the first answer from the evidence, else the drafter offers
                  the evidence's leading passages for the teachers to judge
      extractive  the offline drafter only (never a paid call for drafting)
      TEACHER     that configured model drafts every answer

    \b
    Secrets and personal data (--sensitive-data): before signing, every pair's texts and
    evidence are scanned for API keys, tokens, private keys, passwords in URLs, e-mail
    addresses, phone numbers, IBANs and card numbers (checksums checked):
      block   the pair goes to rejected.jsonl, saying what was found where (the default)
      redact  each finding becomes [REDACTED:kind] (a finding in the evidence still blocks)
      allow   signed as it is
    Whatever the policy, the counts per kind are in the signed manifest and the card.

    \b
    Defaults come from a [distill] table in arcticcodex.toml (the command line overrides it):
      [distill]
      teachers = ["deepseek"]
      budget_usd = 2.0
      threshold = 0.85
      review = true
    and also drafter, max_rounds, concurrency, validation, key, questions_by,
    questions_per_chunk, limit, keep_near_duplicates and sensitive_data.  The signing key is --key, else
    [distill] key, else [signing] key, else "dataset".

    \b
    Exit status:
      0  complete: every prompt was judged and the dataset holds pairs
      1  nothing ran: an option, the configuration, a key or the source was refused
      2  a command-line usage error, or a teacher entry you have not trusted yet
      3  some tasks failed (listed; --resume retries those a teacher outage failed)
      4  stopped with work left: the budget ran out, or pairs await `arcticcodex review`
      5  the run wrote an empty dataset (the message says why)

    \b
    Example:
      arcticcodex distill --prompts prompts.jsonl --out datasets/v1
      arcticcodex distill --from-vault --limit 50 --out datasets/docs --teachers deepseek --budget-usd 2
      arcticcodex distill --prompts prompts.jsonl --out datasets/v2 --teachers openai --batch
      arcticcodex distill --resume latest --budget-usd 5
    """
    workspace = state.workspace()
    with Distiller(workspace, workers=default_workers(), ray_address=options["ray_address"]) as distiller:
        if options["resume_id"]:
            run_id = _resumed(ctx, distiller, options)
        else:
            run_id = _started(ctx, distiller, DistillDefaults.load(workspace.config), options)
        # Ray's driver prints its cluster's notices (a worker died and was replaced …) to stdout: they go to
        # stderr with the progress, so stdout holds the summary alone (a script parses --json)
        with contextlib.redirect_stdout(sys.stderr):
            summary = _execute(distiller, run_id, options["budget_usd"] if options["resume_id"] else None, options)
    _report(summary, options["as_json"])
    if summary.exit_status:
        ctx.exit(summary.exit_status)


def _resumed(ctx: click.Context, distiller: Distiller, options: dict[str, Any]) -> str:
    if options["prompts"] or options["from_conversations"] or options["from_vault"] or options["out"]:
        raise click.UsageError("--resume continues a run as it was started: give no source and no --out")
    given = [name for name in RUN_OPTIONS if given_on_command_line(ctx, name)]
    if given:
        names = ", ".join("--" + option_name(ctx, name) for name in given)
        raise click.UsageError(
            f"--resume continues a run with the settings it was started with; only --budget-usd may change "
            f"(got {names})"
        )
    if options["resume_id"] != "latest":
        return str(options["resume_id"])
    latest = distiller.journal.runs(limit=1)
    if not latest:
        raise RecordNotFoundError("--resume latest: this workspace has no runs yet; start one with --out DIR")
    return latest[0].id


def _started(ctx: click.Context, distiller: Distiller, defaults: DistillDefaults, options: dict[str, Any]) -> str:
    kind = require_sources(
        prompts=options["prompts"], from_conversations=options["from_conversations"], from_vault=options["from_vault"]
    )
    if options["conversation_ids"] and kind != "from_conversations":
        raise click.UsageError("--conversation ID picks conversations for --from-conversations; add that option")
    for name in ("questions_by", "questions_per_chunk"):
        if kind != "from_vault" and given_on_command_line(ctx, name):
            raise click.UsageError(f"--{option_name(ctx, name)} shapes a --from-vault curriculum; add --from-vault")
    if options["out"] is None:
        raise click.UsageError("give --out DIR, the folder to write the dataset into")
    if (options["shards"] or options["ray_address"]) and defaults.pick("engine", options["engine"]) != "ray":
        raise click.UsageError("--shards and --ray-address shape a run on Ray; add --engine ray")
    if given_on_command_line(ctx, "batch_poll_seconds") and not options["batch"]:
        raise click.UsageError("--batch-poll sets how often --batch checks its batches; add --batch")
    key, key_origin = defaults.key(options["key_name"], given_as="--key")
    names = options["teacher_names"]
    teachers = (
        tuple(name.strip() for name in names.split(",") if name.strip())
        if names is not None
        else defaults.pick("teachers", None)
    )
    keep = defaults.pick("keep_near_duplicates", options["keep_near_duplicates"])
    source = Source(
        kind=kind,
        prompts=options["prompts"],
        conversation_ids=options["conversation_ids"],
        questions_by=defaults.pick("questions_by", options["questions_by"]),
        questions_per_chunk=defaults.pick("questions_per_chunk", options["questions_per_chunk"]),
        limit=defaults.pick("limit", options["limit"]),
    )
    settings = RunSettings(
        threshold=defaults.pick("threshold", options["threshold"]),
        max_rounds=defaults.pick("max_rounds", options["max_rounds"]),
        concurrency=defaults.pick("concurrency", options["concurrency"]),
        budget_usd=defaults.pick("budget_usd", options["budget_usd"]),
        teachers=teachers,
        drafter=defaults.pick("drafter", options["drafter"]),
        key=key,
        key_origin=key_origin,
        signer_id=options["signer_id"],
        near_duplicate_threshold=None if keep else options["near_duplicate_threshold"],
        near_duplicate_mode=defaults.pick("near_duplicate_mode", options["near_duplicate_mode"]),
        validation_fraction=defaults.pick("validation", options["validation_fraction"]),
        append=options["append"],
        source=source.label,
        batch=options["batch"],
        batch_poll_seconds=options["batch_poll_seconds"],
        engine=defaults.pick("engine", options["engine"]),
        shards=defaults.pick("shards", options["shards"]),
        human_review=defaults.pick("review", options["human_review"]),
        sensitive_data=defaults.pick("sensitive_data", options["sensitive_data"]),
    )
    origin = "teachers" if names is not None else f"[distill] teachers in {defaults.where}"
    started = run_sync(distiller.start(source, settings, options["out"], teachers_origin=origin))
    record = started.record
    if not options["as_json"]:
        if started.report:
            click.echo(shown(started.report), err=True)
        click.echo(f"run {record.id}: {record.task_count} prompts → {record.out}", err=True)
    return record.id


def _execute(distiller: Distiller, run_id: str, budget_usd: float | None, options: dict[str, Any]) -> RunSummary:
    run = distiller.journal.run(run_id)
    counts = distiller.journal.counts(run_id)
    with _progress(options["as_json"]) as progress:
        bar = progress.add_task(
            "distilling",
            total=run.task_count,
            completed=run.task_count - counts["pending"],
            accepted=counts["accepted"],
            rejected=counts["rejected"],
            failed=counts["failed"],
            cost=run.spent_usd,
        )

        shard_bars: list[Any] = []

        def on_shards(shards: list[dict[str, int]]) -> None:
            """Ray: a bar per shard, and the total."""
            for index, shard in enumerate(shards[len(shard_bars) :], start=len(shard_bars)):
                shard_bars.append(progress.add_task(f"  shard {index}", total=sum(shard.values()), **_zero()))
            for bar_id, shard in zip(shard_bars, shards, strict=True):
                progress.update(bar_id, completed=sum(shard.values()) - shard["pending"], **_fields(shard))
            total = {name: sum(shard[name] for shard in shards) for name in ("pending", *_OUTCOMES)}
            progress.update(bar, completed=run.task_count - total["pending"], **_fields(total))

        distiller.on_shards = on_shards

        def on_task(counts: dict[str, int], spent: float) -> None:
            progress.update(
                bar,
                completed=run.task_count - counts["pending"],
                accepted=counts["accepted"],
                rejected=counts["rejected"],
                failed=counts["failed"],
                cost=spent,
            )

        try:
            return distiller.execute_sync(run_id, progress=on_task, budget_usd=budget_usd)
        except KeyboardInterrupt:
            click.echo(f"\ninterrupted; finish with: arcticcodex distill --resume {run_id}", err=True)
            # from None: the user pressed Ctrl-C; a traceback would only hide the exit status
            raise SystemExit(130) from None


_OUTCOMES = ("accepted", "rejected", "failed")


def _fields(counts: dict[str, int]) -> dict[str, Any]:
    return {name: counts.get(name, 0) for name in _OUTCOMES}


def _zero() -> dict[str, Any]:
    return {"accepted": 0, "rejected": 0, "failed": 0, "cost": 0.0}


def _progress(disabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "[green]{task.fields[accepted]} accepted[/] [yellow]{task.fields[rejected]} rejected[/] "
            "[red]{task.fields[failed]} failed[/] ${task.fields[cost]:.4f}"
        ),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=disabled,
    )


def _report(summary: RunSummary, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2))
        return
    click.echo(
        f"run {summary.run_id} {summary.status}: {summary.accepted} accepted, {summary.rejected} rejected, "
        + (f"{summary.rejected_in_review} rejected in review, " if summary.rejected_in_review else "")
        + f"{summary.failed} failed, {summary.pending} pending; "
        + f"${summary.cost_usd:.4f} spent in {summary.seconds:.1f} s"
    )
    click.echo(
        f"dataset {summary.out}: {summary.written} pairs written ({summary.validation} for validation), "
        f"{summary.duplicates_removed} exact and {summary.near_duplicates_removed} near duplicates removed"
    )
    if (sensitive := summary.sensitive_data_line()) is not None:
        click.echo(sensitive)
    for position, reason in summary.failures[:10]:
        click.echo(f"  task {position} failed: {shown(reason)}")
    if summary.failed > 10:
        click.echo(f"  … {summary.failed - 10} more failures (arcticcodex runs show {summary.run_id} lists them)")
    if summary.hint:
        click.echo(f"the dataset is empty: {summary.hint}")
    if summary.status != "complete":
        click.echo(
            f"{shown(summary.note or 'not finished')}\nfinish with: arcticcodex distill --resume {summary.run_id}"
        )
