"""The review queue: facts and summaries an agent proposes wait here until a person decides.

Nothing a model proposes is a fact until a person says so: a proposal is stored with status
``pending`` — invisible to every default listing and search of facts — and enters the vault only when
approved; a rejection keeps it (status ``rejected``, with the
reason) so the same proposal can be recognised, and an edit changes a pending proposal in place.
Every decision records who made it and when, in the item's metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ..errors import RecordNotFoundError, UserError
from .entities import Fact, Summary
from .store import Vault

Kind = Literal["fact", "summary"]
_TABLES: dict[str, Kind] = {"fact": "fact", "sum": "summary"}


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One proposal: a fact or a summary, with what it says and where it came from."""

    id: str
    kind: Kind
    status: str
    text: str  # the fact as "subject — predicate — object", or the summary
    record: Fact | Summary

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "status": self.status, "text": self.text, **self.record.to_json()}


def _item(record: Fact | Summary) -> ReviewItem:
    if isinstance(record, Fact):
        return ReviewItem(
            record.id, "fact", record.status, f"{record.subject} — {record.predicate} — {record.object}", record
        )
    return ReviewItem(record.id, "summary", record.status, record.text, record)


class ReviewQueue:
    """Proposals of one vault, and the decisions on them."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def propose_fact(
        self,
        subject: str,
        predicate: str,
        obj: str,
        *,
        source_chunk_id: str | None = None,
        proposed_by: str = "agent",
        conversation_id: str | None = None,
    ) -> ReviewItem:
        if source_chunk_id is not None:
            self.vault.get_chunk(source_chunk_id)  # a proposal cites evidence that exists
        fact = self.vault.add_fact(
            subject,
            predicate,
            obj,
            source_chunk_id=source_chunk_id,
            conversation_id=conversation_id,
            status="pending",
            metadata={"proposed_by": proposed_by},
        )
        return _item(fact)

    def propose_summary(
        self, text: str, *, conversation_id: str | None = None, proposed_by: str = "agent"
    ) -> ReviewItem:
        summary = self.vault.add_summary(
            text, conversation_id=conversation_id, status="pending", metadata={"proposed_by": proposed_by}
        )
        return _item(summary)

    def list(self, *, status: str = "pending", kind: Kind | None = None) -> list[ReviewItem]:
        items: list[ReviewItem] = []
        if kind in (None, "fact"):
            items += [_item(f) for f in self.vault.list_facts(status=status)]
        if kind in (None, "summary"):
            items += [_item(s) for s in self.vault.list_summaries(status=status)]
        return sorted(items, key=lambda item: (item.record.created_at, item.id))

    def pending_count(self) -> int:
        """How many facts and summaries wait for a decision (counted, not read)."""
        (facts,) = self.vault.conn.execute("SELECT count(*) FROM facts WHERE status = 'pending'").fetchone()
        (summaries,) = self.vault.conn.execute("SELECT count(*) FROM summaries WHERE status = 'pending'").fetchone()
        return int(facts) + int(summaries)

    def get(self, item_id: str) -> ReviewItem:
        kind = _kind(item_id)
        row = self.vault.conn.execute(f"SELECT id FROM {_table(kind)} WHERE id = ?", (item_id,)).fetchone()  # noqa: S608
        if row is None:
            raise RecordNotFoundError(f"no {kind} {item_id!r} in the review queue; `arcticcodex review list` shows it")
        return _item(self.vault.get_fact(item_id) if kind == "fact" else self._summary(item_id))

    def approve(self, item_id: str, *, by: str = "user") -> ReviewItem:
        return self._decide(item_id, "approved", by=by)

    def reject(self, item_id: str, *, reason: str, by: str = "user") -> ReviewItem:
        if not reason.strip():
            raise UserError(
                "a rejection needs a reason, saying why the proposal is rejected, so the same one is recognised later",
                parameters=["reason"],
            )
        return self._decide(item_id, "rejected", by=by, reason=reason.strip())

    def edit(self, item_id: str, **changes: str) -> ReviewItem:
        """Change a pending proposal before deciding on it (fact: subject/predicate/object; summary: text)."""
        item = self._pending(item_id)
        allowed = {"subject", "predicate", "object"} if item.kind == "fact" else {"text"}
        unknown = set(changes) - allowed
        if unknown or not changes:
            raise UserError(
                f"a {item.kind} has {', '.join(sorted(allowed))} to edit, "
                f"not {', '.join(sorted(unknown)) or 'nothing'}",
                parameters=[*sorted(allowed), *sorted(unknown)],
            )
        for name, value in changes.items():
            if not isinstance(value, str) or not value.strip():
                raise UserError(f"{name} cannot be empty", parameters=[name])
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self.vault.transaction() as conn:
            conn.execute(
                f"UPDATE {_table(item.kind)} SET {assignments} WHERE id = ?",  # noqa: S608 - names checked above
                [*(v.strip() for v in changes.values()), item_id],
            )
        return self.get(item_id)

    def _decide(self, item_id: str, status: str, *, by: str, reason: str | None = None) -> ReviewItem:
        item = self._pending(item_id)
        metadata = {**item.record.metadata, "decided_by": by, "decided_at": datetime.now(UTC).isoformat()}
        if reason:
            metadata["reason"] = reason
        with self.vault.transaction() as conn:
            conn.execute(
                f"UPDATE {_table(item.kind)} SET status = ?, metadata = ? WHERE id = ?",  # noqa: S608
                (status, json.dumps(metadata, sort_keys=True), item_id),
            )
        return self.get(item_id)

    def _pending(self, item_id: str) -> ReviewItem:
        item = self.get(item_id)
        if item.status != "pending":
            raise UserError(f"{item.kind} {item_id} was already {item.status}; only pending proposals can change")
        return item

    def _summary(self, summary_id: str) -> Summary:
        row = self.vault.conn.execute("SELECT * FROM summaries WHERE id = ?", (summary_id,)).fetchone()
        if row is None:
            raise RecordNotFoundError(f"no summary {summary_id!r}")
        return Summary.from_row(row)


def _kind(item_id: str) -> Kind:
    kind = _TABLES.get(item_id.split("-", 1)[0])
    if kind is None:
        raise UserError(f"{item_id!r} is not a fact (fact-…) or summary (sum-…) id")
    return kind


def _table(kind: Kind) -> str:
    return "facts" if kind == "fact" else "summaries"
