"""``arcticcodex review``: decide on the facts and summaries the agent proposed, and on reviewed runs' pairs.

Items are named by id (``fact-…``, ``sum-…``, ``pair:RUN:POSITION``), or, to approve or reject many
at once, chosen by a filter: ``--run RUN``, ``--min-quality``/``--max-quality`` (pairs), ``--all``
(everything pending).  The pairs a filter chooses are decided in one transaction.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from typing import Any

import click

from ..human_review import Decision, HumanReview, PairFilter, Reviewable, Selection
from . import CliState, pass_state
from .display import json_text, shown


def _who() -> str:
    """Who decides: the user's login name, recorded with every decision and edit."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "user"


def _echo_rows(rows: list[dict[str, Any]], as_json: bool, empty: str) -> None:
    if as_json:
        click.echo(json_text(json.loads(json.dumps(rows, default=str))))
        return
    if not rows:
        click.echo(empty)
    for row in rows:
        quality = f"  q={row['quality']}" if row.get("kind") == "pair" else ""
        click.echo(f"{row['id']}  {row['kind']!s:<7}{quality}  {shown(str(row['text']))}")


def _echo(item: Reviewable, as_json: bool, verb: str) -> None:
    if as_json:
        click.echo(json_text(json.loads(json.dumps(item.to_json(), default=str))))
    else:
        click.echo(f"{verb} {item.to_json()['kind']} {item.id}: {shown(item.text)}")


def filter_options(command: Callable[..., None]) -> Callable[..., None]:
    """--run, --min-quality, --max-quality, --all, --kind: choose the items of a bulk decision."""
    options = [
        click.option("--run", "run_id", metavar="RUN", help="The pending pairs of this run."),
        click.option("--min-quality", type=click.FloatRange(0, 1), help="Only pairs of at least this quality."),
        click.option("--max-quality", type=click.FloatRange(0, 1), help="Only pairs of at most this quality."),
        click.option("--all", "everything", is_flag=True, help="Everything pending (with --kind, of that kind)."),
        click.option("--kind", type=click.Choice(["fact", "summary", "pair"]), help="With --all: only this kind."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group()
def review() -> None:
    """Approve, edit or reject what waits for a person: facts and summaries the agent proposed for memory
    (nothing enters it unapproved), and the accepted pairs of runs made with `distill --review`."""


@review.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "approved", "rejected"]),
    default="pending",
    show_default=True,
    help="Which decisions to list.",
)
@click.option(
    "--kind", type=click.Choice(["fact", "summary", "pair"]), help="Only facts, summaries, or training pairs."
)
@click.option("--run", "run_id", metavar="RUN", help="Only the pairs of this run.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def list_(state: CliState, status: str, kind: str | None, run_id: str | None, as_json: bool) -> None:
    """List proposals and pairs (pending ones by default; --status approved or rejected for decisions made).

    \b
    Example:
      arcticcodex review list --kind fact --json
      arcticcodex review list --status rejected --kind pair
    """
    with HumanReview(state.workspace(), by=_who()) as review:
        rows = [item.to_json() for item in review.items(status, kind=kind, run_id=run_id)]  # type: ignore[arg-type]
    _echo_rows(rows, as_json, f"no {status} proposals")


def _decide(
    state: CliState,
    decision: Decision,
    item_ids: tuple[str, ...],
    where: PairFilter,
    everything: bool,
    kind: str | None,
    reason: str,
    as_json: bool,
) -> None:
    """Approve or reject the items named, or those the filter chooses (see the module docstring)."""
    chosen_by_filter = everything or where != PairFilter()
    verb = "approve" if decision == "approved" else "reject"
    if item_ids and chosen_by_filter:
        raise click.UsageError("name items by id or choose them with --run/--min-quality/--max-quality/--all, not both")
    if not item_ids and not chosen_by_filter:
        raise click.UsageError(
            f"name the items to {verb} (ids from `arcticcodex review list`), or choose them with --run, "
            "--min-quality, --max-quality or --all"
        )
    if kind and not everything:
        raise click.UsageError("--kind chooses with --all; --run and the quality bounds choose pairs")
    with HumanReview(state.workspace(), by=_who()) as review:
        if chosen_by_filter:
            selection = Selection(where, everything, kind)  # type: ignore[arg-type]
            decided = review.decide_selected(selection, decision, reason=reason)
            if not decided:
                click.echo(f"nothing to {verb}: nothing pending {selection.describe()}", err=True)
                return
        else:
            decided = review.decide(item_ids, decision, reason=reason)
    if as_json:
        click.echo(json_text(json.loads(json.dumps([item.to_json() for item in decided], default=str))))
        return
    for item in decided:
        _echo(item, False, decision)
    if chosen_by_filter:
        click.echo(f"{decision} {len(decided)} item{'s' if len(decided) != 1 else ''}", err=True)


@review.command("approve")
@click.argument("item_ids", nargs=-1)
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def approve(
    state: CliState,
    item_ids: tuple[str, ...],
    run_id: str | None,
    min_quality: float | None,
    max_quality: float | None,
    everything: bool,
    kind: str | None,
    as_json: bool,
) -> None:
    """Approve proposals (they enter the vault's memory) and pairs (they are published).

    \b
    Example:
      arcticcodex review approve fact-3f2a9c1d
      arcticcodex review approve --run run-20260101-120000-abc123 --min-quality 0.9
      arcticcodex review approve --all --kind fact
    """
    where = PairFilter(run_id, min_quality, max_quality)
    _decide(state, "approved", item_ids, where, everything, kind, "", as_json)


@review.command("reject")
@click.argument("item_ids", nargs=-1)
@click.option("--reason", required=True, help="Why (kept with the proposal, or in rejected.jsonl for a pair).")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def reject(
    state: CliState,
    item_ids: tuple[str, ...],
    reason: str,
    run_id: str | None,
    min_quality: float | None,
    max_quality: float | None,
    everything: bool,
    kind: str | None,
    as_json: bool,
) -> None:
    """Reject proposals (they never enter memory) and pairs (they go to rejected.jsonl); the reason is kept.

    \b
    Example:
      arcticcodex review reject fact-3f2a9c1d --reason "the source says the opposite"
      arcticcodex review reject --run run-20260101-120000-abc123 --max-quality 0.85 --reason "too vague"
    """
    where = PairFilter(run_id, min_quality, max_quality)
    _decide(state, "rejected", item_ids, where, everything, kind, reason, as_json)


@review.command("edit")
@click.argument("item_id")
@click.option("--subject", help="A fact's new subject.")
@click.option("--predicate", help="A fact's new predicate.")
@click.option("--object", "obj", help="A fact's new object.")
@click.option("--text", help="A summary's new text.")
@click.option("--instruction", help="A pair's new instruction (question).")
@click.option("--completion", help="A pair's new completion (answer).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def edit(
    state: CliState,
    item_id: str,
    subject: str | None,
    predicate: str | None,
    obj: str | None,
    text: str | None,
    instruction: str | None,
    completion: str | None,
    as_json: bool,
) -> None:
    """Change a pending proposal or pair before deciding on it.

    A pair's edit is recorded (who, when, the text before and after); once approved, the pair is
    published with your text, under a new content id and signature.

    \b
    Example:
      arcticcodex review edit fact-3f2a9c1d --object "fish and crabs"
      arcticcodex review edit pair:run-20260101-120000-abc123:4 --completion "Otters eat fish [1]."
    """
    with HumanReview(state.workspace(), by=_who()) as review:
        edited = review.edit(
            item_id,
            subject=subject,
            predicate=predicate,
            object=obj,
            text=text,
            instruction=instruction,
            completion=completion,
        )
    _echo(edited, as_json, "edited")


@review.command("agreement")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def agreement(state: CliState, as_json: bool) -> None:
    """How far each teacher's verdicts agree with the decisions people made on pairs (Cohen's κ, with n).

    A teacher's verdict on a pair is "accept" when the pair's final revision reached its run's threshold
    and the verifier found every claim supported.  κ is 1 for perfect agreement, 0 for chance, below 0
    for worse; it is not defined when both accepted (or both rejected) every pair.

    \b
    Example:
      arcticcodex review agreement
      arcticcodex review agreement --json
    """
    with HumanReview(state.workspace(), by=_who()) as review:
        rows = review.agreement()
    found = [
        {
            "teacher": row.teacher,
            "n": row.n,
            "kappa": row.kappa.value,
            "observed": row.kappa.observed,
            "expected": row.kappa.expected,
            "undefined_reason": row.kappa.undefined_reason or None,
            "teacher_accepted": row.teacher_accepted,
            "person_approved": row.person_approved,
        }
        for row in rows
    ]
    if as_json:
        click.echo(json_text(found))
        return
    if not found:
        click.echo("no pair of a reviewed run has been decided yet")
    for row in found:
        kappa = f"κ={row['kappa']:.2f}" if row["kappa"] is not None else f"κ not defined: {row['undefined_reason']}"
        click.echo(
            f"{row['teacher']}  n={row['n']}  {kappa}  agreed {row['observed']:.0%}  "
            f"(teacher accepted {row['teacher_accepted']}, people approved {row['person_approved']})"
        )
