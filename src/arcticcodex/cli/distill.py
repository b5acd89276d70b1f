"""``arcticcodex distill``: turn prompts, conversations or the vault into a signed dataset."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..distill.run import Distiller, RunSummary
from ..distill.settings import RunSettings
from ..distill.tasks import (
    Task,
    conversation_tasks,
    curriculum_tasks,
    prompt_tasks,
    require_sources,
    teacher_curriculum_tasks,
)
from ..errors import UserError
from ..teachers import runtime
from . import CliState, default_workers, pass_state


@click.command()
@click.option("--prompts", type=click.Path(dir_okay=False, path_type=Path), help="A JSONL or CSV prompts file.")
@click.option("--from-conversations", is_flag=True, help="Every user turn of the vault's conversations.")
@click.option("--conversation", "conversation_ids", multiple=True, metavar="ID", help="Only these conversations.")
@click.option("--from-vault", is_flag=True, help="A curriculum: questions about the vault's chunks.")
@click.option(
    "--questions-by",
    default="offline",
    show_default=True,
    metavar="TEACHER",
    help="Who writes --from-vault questions: 'offline' (headings and key sentences) or a configured teacher.",
)
@click.option(
    "--questions-per-chunk", type=click.IntRange(1, 10), default=2, show_default=True, help="--from-vault questions."
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many prompts.")
@click.option("--out", type=click.Path(path_type=Path), help="The dataset folder to write (new or empty).")
@click.option("--resume", "resume_id", metavar="RUN", help="Finish an interrupted or stopped run.")
@click.option("--threshold", type=float, default=0.8, show_default=True, help="Accept at this quality.")
@click.option("--max-rounds", type=int, default=3, show_default=True, help="Critique/rewrite rounds per prompt.")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Prompts in flight at once.")
@click.option("--budget-usd", type=float, help="Stop when the teachers have cost this much (resumable).")
@click.option("--teachers", "teacher_names", metavar="A,B", help="Use only these configured teachers.")
@click.option(
    "--drafter",
    default="extractive",
    show_default=True,
    metavar="NAME",
    help="'extractive' (offline, evidence sentences only) or a configured teacher as the student model.",
)
@click.option("--key", "key_name", default="dataset", show_default=True, help="The signing key's name.")
@click.option("--signer-id", default="arcticcodex", show_default=True, help="Who signs, as written in each record.")
@click.option("--near-duplicates", type=float, default=0.95, show_default=True, help="Drop pairs this similar.")
@click.option("--keep-near-duplicates", is_flag=True, help="Do not remove near-duplicates.")
@click.option("--validation", type=float, default=0.0, show_default=True, help="Fraction held out for validation.")
@click.option("--append", is_flag=True, help="Add to the dataset already in --out (it is verified first).")
@click.option(
    "--review", "human_review", is_flag=True, help="Accepted pairs wait for `arcticcodex review` before publishing."
)
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as one JSON object.")
@pass_state
def distill(
    state: CliState,
    prompts: Path | None,
    from_conversations: bool,
    conversation_ids: tuple[str, ...],
    from_vault: bool,
    questions_by: str,
    questions_per_chunk: int,
    limit: int | None,
    out: Path | None,
    resume_id: str | None,
    threshold: float,
    max_rounds: int,
    concurrency: int,
    budget_usd: float | None,
    teacher_names: str | None,
    drafter: str,
    key_name: str,
    signer_id: str,
    near_duplicates: float,
    keep_near_duplicates: bool,
    validation: float,
    append: bool,
    human_review: bool,
    as_json: bool,
) -> None:
    """Draft, critique, verify and rewrite answers, and write the accepted ones as a signed dataset.

    Every step is journaled in the workspace: if the run is killed, `--resume RUN` finishes it with
    no pair lost or repeated, and teacher calls already made are answered from the cache.  With no
    teacher configured the offline local judge decides (no key, no network).

    \b
    Example:
      arcticcodex distill --prompts prompts.jsonl --out datasets/v1
      arcticcodex distill --from-vault --limit 50 --out datasets/docs --teachers deepseek --budget-usd 2
      arcticcodex distill --resume run-20261125-101500-3fa2c1 --budget-usd 5
    """
    workspace = state.workspace()
    with Distiller(workspace, workers=default_workers()) as distiller:
        if resume_id:
            if prompts or from_conversations or from_vault or out:
                raise click.UsageError("--resume continues a run as it was started: give no source and no --out")
            run_id = resume_id
        else:
            source = require_sources(prompts=prompts, from_conversations=from_conversations, from_vault=from_vault)
            if out is None:
                raise click.UsageError("give --out DIR, the folder to write the dataset into")
            settings = RunSettings(
                threshold=threshold,
                max_rounds=max_rounds,
                concurrency=concurrency,
                budget_usd=budget_usd,
                teachers=tuple(name.strip() for name in (teacher_names or "").split(",") if name.strip()),
                drafter=drafter,
                key=key_name,
                signer_id=signer_id,
                near_duplicate_threshold=None if keep_near_duplicates else near_duplicates,
                validation_fraction=validation,
                append=append,
                source=f"{source}: {prompts}" if prompts else source,
                human_review=human_review,
            )
            tasks = _tasks(distiller, source, prompts, conversation_ids, questions_by, questions_per_chunk, limit)
            record = distiller.create(tasks, settings, out)
            run_id = record.id
            if not as_json:
                click.echo(f"run {run_id}: {record.task_count} prompts → {record.out}", err=True)
        run = distiller.journal.run(run_id)
        counts = distiller.journal.counts(run_id)
        with _progress(as_json) as progress:
            bar = progress.add_task(
                "distilling",
                total=run.task_count,
                completed=run.task_count - counts["pending"],
                accepted=counts["accepted"],
                rejected=counts["rejected"],
                failed=counts["failed"],
                cost=run.spent_usd,
            )

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
                summary = distiller.execute(run_id, progress=on_task, budget_usd=budget_usd if resume_id else None)
            except KeyboardInterrupt:
                click.echo(f"\ninterrupted; finish with: arcticcodex distill --resume {run_id}", err=True)
                raise SystemExit(130) from None
    _report(summary, as_json)


def _tasks(
    distiller: Distiller,
    source: str,
    prompts: Path | None,
    conversation_ids: tuple[str, ...],
    questions_by: str,
    per_chunk: int,
    limit: int | None,
) -> list[Task] | itertools.islice[Task]:
    if source == "prompts" and prompts is not None:
        return itertools.islice(prompt_tasks(prompts), limit)
    if source == "from_conversations":
        return itertools.islice(conversation_tasks(distiller.vault, conversation_ids), limit)
    if questions_by == "offline":
        return itertools.islice(curriculum_tasks(distiller.vault, limit=limit, per_chunk=per_chunk), limit)
    teacher = distiller.configured_teacher(questions_by, option="--questions-by")

    async def write_questions() -> list[Task]:
        try:
            return await teacher_curriculum_tasks(distiller.vault, teacher, limit=limit, per_chunk=per_chunk)
        finally:
            await teacher.aclose()

    found = runtime.run(write_questions())
    if not found:
        raise UserError("the vault has no chunks to write questions about; import documents first")
    return found


def _progress(disabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]distilling"),
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
        f"{summary.failed} failed, {summary.pending} pending; ${summary.cost_usd:.4f} spent in {summary.seconds:.1f} s"
    )
    click.echo(
        f"dataset {summary.out}: {summary.written} pairs written ({summary.validation} for validation), "
        f"{summary.duplicates_removed} exact and {summary.near_duplicates_removed} near duplicates removed"
    )
    for position, reason in summary.failures[:10]:
        click.echo(f"  task {position} failed: {reason}")
    if summary.failed > 10:
        click.echo(f"  … {summary.failed - 10} more failures (arcticcodex distill --resume retries teacher outages)")
    if summary.status != "complete":
        click.echo(f"{summary.note or 'not finished'}\nfinish with: arcticcodex distill --resume {summary.run_id}")
