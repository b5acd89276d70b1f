"""``arcticcodex review``: decide on the facts and summaries the agent proposed."""

from __future__ import annotations

import json

import click

from ..distill.journal import RunJournal
from ..errors import UserError
from ..vault import Vault
from ..vault.review import ReviewItem, ReviewQueue
from ..workspace import Workspace
from . import CliState, pass_state
from .display import json_text, shown

PAIR_PREFIX = "pair:"  # pair:<run id>:<task position> — an accepted training pair of a run made with --review


def _pair_id(item_id: str) -> tuple[str, int] | None:
    if not item_id.startswith(PAIR_PREFIX):
        return None
    run_id, _, position = item_id.removeprefix(PAIR_PREFIX).rpartition(":")
    if not run_id or not position.isdigit():
        raise UserError(f"{item_id!r} is not a pair id; pair ids look like pair:RUN:POSITION")
    return run_id, int(position)


def _decide_pair(workspace: Workspace, run_id: str, position: int, status: str, reason: str = "") -> None:
    journal = RunJournal(workspace)
    try:
        journal.decide_pair(run_id, position, status, reason=reason)
    finally:
        journal.close()


def _pairs(workspace: Workspace) -> list[dict[str, object]]:
    journal = RunJournal(workspace)
    try:
        waiting = journal.awaiting_review()
    finally:
        journal.close()
    return [
        {
            "id": f"{PAIR_PREFIX}{run_id}:{position}",
            "kind": "pair",
            "status": "pending",
            "text": f"Q: {pair['instruction']}  A: {pair['completion']}",
            "quality": pair.get("quality"),
        }
        for run_id, position, pair in waiting
    ]


def _echo(item: ReviewItem, as_json: bool, verb: str) -> None:
    if as_json:
        click.echo(json_text(json.loads(json.dumps(item.to_json(), default=str))))
    else:
        click.echo(f"{verb} {item.kind} {item.id}: {shown(item.text)}")


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
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def list_(state: CliState, status: str, kind: str | None, as_json: bool) -> None:
    """List proposals (pending ones by default).

    \b
    Example:
      arcticcodex review list --kind fact --json
    """
    workspace = state.workspace()
    rows: list[dict[str, object]] = []
    if kind != "pair":
        with Vault(workspace) as vault:
            rows += [item.to_json() for item in ReviewQueue(vault).list(status=status, kind=kind)]  # type: ignore[arg-type]
    if kind in (None, "pair") and status == "pending":
        rows += _pairs(workspace)
    if as_json:
        click.echo(json_text(json.loads(json.dumps(rows, default=str))))
        return
    if not rows:
        click.echo(f"no {status} proposals")
    for row in rows:
        click.echo(f"{row['id']}  {row['kind']!s:<7}  {shown(str(row['text']))}")


@review.command("approve")
@click.argument("item_ids", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def approve(state: CliState, item_ids: tuple[str, ...], as_json: bool) -> None:
    """Approve proposals: they enter the vault's memory.

    \b
    Example:
      arcticcodex review approve fact-3f2a9c1d
    """
    workspace = state.workspace()
    with Vault(workspace) as vault:
        queue = ReviewQueue(vault)
        for item_id in item_ids:
            pair = _pair_id(item_id)
            if pair is None:
                _echo(queue.approve(item_id), as_json, "approved")
            else:
                _decide_pair(workspace, *pair, "approved")
                click.echo(json.dumps({"id": item_id, "status": "approved"}) if as_json else f"approved {item_id}")


@review.command("reject")
@click.argument("item_ids", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why (kept with the proposal).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def reject(state: CliState, item_ids: tuple[str, ...], reason: str, as_json: bool) -> None:
    """Reject proposals: they never enter memory, and the reason is kept.

    \b
    Example:
      arcticcodex review reject fact-3f2a9c1d --reason "the source says the opposite"
    """
    workspace = state.workspace()
    with Vault(workspace) as vault:
        queue = ReviewQueue(vault)
        for item_id in item_ids:
            pair = _pair_id(item_id)
            if pair is None:
                _echo(queue.reject(item_id, reason=reason), as_json, "rejected")
            else:
                _decide_pair(workspace, *pair, "rejected", reason)
                click.echo(json.dumps({"id": item_id, "status": "rejected"}) if as_json else f"rejected {item_id}")


@review.command("edit")
@click.argument("item_id")
@click.option("--subject", help="A fact's new subject.")
@click.option("--predicate", help="A fact's new predicate.")
@click.option("--object", "obj", help="A fact's new object.")
@click.option("--text", help="A summary's new text.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def edit(
    state: CliState,
    item_id: str,
    subject: str | None,
    predicate: str | None,
    obj: str | None,
    text: str | None,
    as_json: bool,
) -> None:
    """Change a pending proposal before approving it.

    \b
    Example:
      arcticcodex review edit fact-3f2a9c1d --object "fish and crabs"
    """
    if _pair_id(item_id) is not None:
        raise UserError("a training pair is approved or rejected as the teachers left it; it is not edited")
    changes = {"subject": subject, "predicate": predicate, "object": obj, "text": text}
    with Vault(state.workspace()) as vault:
        item = ReviewQueue(vault).edit(item_id, **{k: v for k, v in changes.items() if v is not None})
    _echo(item, as_json, "edited")
