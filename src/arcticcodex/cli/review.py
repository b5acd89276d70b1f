"""``arcticcodex review``: decide on the facts and summaries the agent proposed."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.markup import escape

from ..vault import Vault
from ..vault.review import ReviewItem, ReviewQueue
from . import CliState, pass_state


def _echo(item: ReviewItem, as_json: bool, verb: str) -> None:
    if as_json:
        click.echo(json.dumps(item.to_json(), indent=2, ensure_ascii=False, default=str))
    else:
        Console().print(f"{verb} {item.kind} {item.id}: {escape(item.text)}", highlight=False)


@click.group()
def review() -> None:
    """Approve, edit or reject what the agent proposed for memory (nothing enters it unapproved)."""


@review.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "approved", "rejected"]),
    default="pending",
    show_default=True,
    help="Which decisions to list.",
)
@click.option("--kind", type=click.Choice(["fact", "summary"]), help="Only facts, or only summaries.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def list_(state: CliState, status: str, kind: str | None, as_json: bool) -> None:
    """List proposals (pending ones by default).

    \b
    Example:
      arcticcodex review list --kind fact --json
    """
    with Vault(state.workspace()) as vault:
        items = ReviewQueue(vault).list(status=status, kind=kind)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps([item.to_json() for item in items], indent=2, ensure_ascii=False, default=str))
        return
    if not items:
        click.echo(f"no {status} proposals")
    for item in items:
        Console().print(f"{item.id}  {item.kind:<7}  {escape(item.text)}", highlight=False)


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
    with Vault(state.workspace()) as vault:
        queue = ReviewQueue(vault)
        for item_id in item_ids:
            _echo(queue.approve(item_id), as_json, "approved")


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
    with Vault(state.workspace()) as vault:
        queue = ReviewQueue(vault)
        for item_id in item_ids:
            _echo(queue.reject(item_id, reason=reason), as_json, "rejected")


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
    changes = {"subject": subject, "predicate": predicate, "object": obj, "text": text}
    with Vault(state.workspace()) as vault:
        item = ReviewQueue(vault).edit(item_id, **{k: v for k, v in changes.items() if v is not None})
    _echo(item, as_json, "edited")
