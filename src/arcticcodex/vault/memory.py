"""Facts, summaries and conversations: the vault's memory, used by the agent, review and distillation.

Every list call filters in SQL (by conversation, source chunk or document, status and time) and
returns immutable records.  ``status`` is how the review queue (a later issue) keeps proposed
memories out of the vault until they are approved: only ``approved`` records are listed unless a
caller asks for another status.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

from ..errors import RecordNotFoundError, UserError
from .entities import Fact, StoredConversation, StoredMessage, Summary, new_id, now
from .loaders import Conversation, Message

STATUSES = ("pending", "approved", "rejected")
ROLES = ("system", "user", "assistant", "tool")


class MemoryMixin:
    """Facts, summaries and conversations over the vault's connection (mixed into ``Vault``)."""

    conn: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:  # provided by Vault
        raise NotImplementedError

    # -- facts ----------------------------------------------------------------------------------

    def add_fact(
        self,
        subject: str,
        predicate: str,
        obj: str,
        *,
        confidence: Decimal | str | float = Decimal(1),
        source_chunk_id: str | None = None,
        conversation_id: str | None = None,
        status: str = "approved",
        metadata: dict[str, Any] | None = None,
    ) -> Fact:
        for name, value in (("subject", subject), ("predicate", predicate), ("object", obj)):
            if not isinstance(value, str) or not value.strip():
                raise UserError(f"a fact needs a non-empty {name}")
        exact = _confidence(confidence)
        _check_status(status)
        fact_id = new_id("fact")
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO facts (id, subject, predicate, object, confidence, source_chunk_id, conversation_id,"
                " status, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    fact_id,
                    subject.strip(),
                    predicate.strip(),
                    obj.strip(),
                    str(exact),
                    source_chunk_id,
                    conversation_id,
                    status,
                    json.dumps(metadata or {}, sort_keys=True),
                    now(),
                ),
            )
        return self.get_fact(fact_id)

    def get_fact(self, fact_id: str) -> Fact:
        row = self.conn.execute("SELECT * FROM facts WHERE id = ?", (fact_id,)).fetchone()
        if row is None:
            raise RecordNotFoundError(f"no fact {fact_id!r}; list them with `arcticcodex vault facts`")
        return Fact.from_row(row)

    def list_facts(
        self,
        *,
        conversation_id: str | None = None,
        source_chunk_id: str | None = None,
        document_id: str | None = None,
        subject: str | None = None,
        status: str | None = "approved",
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
    ) -> list[Fact]:
        where, params = _filters(
            {
                "conversation_id = ?": conversation_id,
                "source_chunk_id = ?": source_chunk_id,
                # chunk ids are "<doc id>:<n>": a range on the prefix, exact and case-sensitive (not LIKE)
                "source_chunk_id >= ? AND source_chunk_id < ?": (f"{document_id}:", f"{document_id};")
                if document_id
                else None,
                "subject = ? COLLATE NOCASE": subject,
                "status = ?": status,
                "created_at >= ?": since,
                "created_at < ?": until,
            }
        )
        rows = self.conn.execute(
            f"SELECT * FROM facts{where} ORDER BY created_at, id{_limit(limit)}",  # noqa: S608 - built from constants
            params,
        ).fetchall()
        return [Fact.from_row(row) for row in rows]

    # -- summaries ------------------------------------------------------------------------------

    def add_summary(
        self,
        text: str,
        *,
        conversation_id: str | None = None,
        document_id: str | None = None,
        status: str = "approved",
        metadata: dict[str, Any] | None = None,
    ) -> Summary:
        if not text.strip():
            raise UserError("a summary needs text")
        _check_status(status)
        summary_id = new_id("sum")
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO summaries (id, text, conversation_id, document_id, status, metadata, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (summary_id, text, conversation_id, document_id, status, json.dumps(metadata or {}), now()),
            )
        row = self.conn.execute("SELECT * FROM summaries WHERE id = ?", (summary_id,)).fetchone()
        return Summary.from_row(row)

    def list_summaries(
        self,
        *,
        conversation_id: str | None = None,
        document_id: str | None = None,
        status: str | None = "approved",
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
    ) -> list[Summary]:
        where, params = _filters(
            {
                "conversation_id = ?": conversation_id,
                "document_id = ?": document_id,
                "status = ?": status,
                "created_at >= ?": since,
                "created_at < ?": until,
            }
        )
        rows = self.conn.execute(
            f"SELECT * FROM summaries{where} ORDER BY created_at, id{_limit(limit)}",  # noqa: S608
            params,
        ).fetchall()
        return [Summary.from_row(row) for row in rows]

    # -- conversations --------------------------------------------------------------------------

    def add_conversation(
        self,
        conversation: Conversation,
        *,
        source: str | None = None,
        document_id: str | None = None,
        conn: sqlite3.Connection | None = None,
    ) -> str:
        """Store a conversation and its messages; inside ``conn``'s transaction when given."""
        conversation_id = new_id("conv")
        stamp = now()

        def write(target: sqlite3.Connection) -> None:
            target.execute(
                "INSERT INTO conversations (id, title, source, document_id, created_at) VALUES (?, ?, ?, ?, ?)",
                (conversation_id, conversation.title, source, document_id, stamp),
            )
            target.executemany(
                "INSERT INTO messages (id, conversation_id, sequence, role, content, citations, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        new_id("msg"),
                        conversation_id,
                        index,
                        m.role,
                        m.content,
                        json.dumps(list(m.citations)),
                        stamp,
                    )
                    for index, m in enumerate(conversation.messages)
                ],
            )

        if conn is not None:
            write(conn)
        else:
            with self.transaction() as own:
                write(own)
        return conversation_id

    def create_conversation(self, title: str, messages: Iterable[tuple[str, str]] = ()) -> str:
        """Start a conversation (the agent's chats), optionally with (role, content) messages."""
        turns = tuple(Message(role=role, content=content) for role, content in messages)
        for turn in turns:
            if turn.role not in ROLES:
                raise UserError(f"message role must be one of {', '.join(ROLES)}, not {turn.role!r}")
        return self.add_conversation(Conversation(title=title, messages=turns))

    def append_message(
        self, conversation_id: str, role: str, content: str, *, citations: Iterable[str] = ()
    ) -> StoredMessage:
        """Add a turn to a conversation (the agent keeps multi-turn chats this way)."""
        if role not in ROLES:
            raise UserError(f"message role must be one of {', '.join(ROLES)}, not {role!r}")
        self.get_conversation(conversation_id)
        message_id = new_id("msg")
        with self.transaction() as conn:
            (next_sequence,) = conn.execute(
                "SELECT coalesce(max(sequence) + 1, 0) FROM messages WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()
            conn.execute(
                "INSERT INTO messages (id, conversation_id, sequence, role, content, citations, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    message_id,
                    conversation_id,
                    next_sequence,
                    role,
                    content,
                    json.dumps(list(citations)),
                    now(),
                ),
            )
        row = self.conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        return StoredMessage.from_row(row)

    def get_conversation(self, conversation_id: str) -> StoredConversation:
        row = self.conn.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if row is None:
            raise RecordNotFoundError(f"no conversation {conversation_id!r}")
        messages = tuple(
            StoredMessage.from_row(message)
            for message in self.conn.execute(
                "SELECT * FROM messages WHERE conversation_id = ? ORDER BY sequence", (conversation_id,)
            )
        )
        return StoredConversation(
            row["id"], row["title"], row["source"], row["document_id"], row["created_at"], messages
        )

    def list_conversations(
        self, *, source: str | None = None, since: str | None = None, until: str | None = None
    ) -> list[StoredConversation]:
        where, params = _filters({"source = ?": source, "created_at >= ?": since, "created_at < ?": until})
        ids = [
            row[0]
            for row in self.conn.execute(
                f"SELECT id FROM conversations{where} ORDER BY created_at, id",  # noqa: S608
                params,
            )
        ]
        return [self.get_conversation(conversation_id) for conversation_id in ids]

    def iter_turns(self, conversation_id: str) -> Iterator[tuple[StoredMessage, StoredMessage]]:
        """Each user message with the assistant answer that follows it (distillation's unit)."""
        messages = self.get_conversation(conversation_id).messages
        for first, second in pairwise(messages):
            if first.role == "user" and second.role == "assistant":
                yield first, second


def _filters(conditions: dict[str, Any]) -> tuple[str, list[Any]]:
    used = [(clause, value) for clause, value in conditions.items() if value is not None]
    if not used:
        return "", []
    params: list[Any] = []
    for _, value in used:
        params.extend(value if isinstance(value, tuple) else (value,))
    return " WHERE " + " AND ".join(clause for clause, _ in used), params


def _limit(limit: int | None) -> str:
    return f" LIMIT {int(limit)}" if limit is not None else ""


def _confidence(value: Decimal | str | float) -> Decimal:
    try:
        exact = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError):
        # from None: the InvalidOperation/TypeError adds nothing the message does not already say
        raise UserError(f"confidence must be a number between 0 and 1, not {value!r}") from None
    if not exact.is_finite() or not Decimal(0) <= exact <= Decimal(1):
        raise UserError(f"confidence must be between 0 and 1, not {value!r}")
    return exact.normalize() if exact != 0 else Decimal(0)


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise UserError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
