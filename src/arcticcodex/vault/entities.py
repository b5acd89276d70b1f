"""The vault's records, as immutable values (rows are converted here, never passed around raw)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def now() -> str:
    """The current time as UTC ISO-8601 with a ``Z``: the vault's one timestamp format."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    """A random record id such as ``doc-3f9a…`` (never derived from content or time)."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    title: str
    source: str
    media_type: str
    source_sha256: str
    text_sha256: str
    size_bytes: int
    source_modified_at: str | None
    created_at: str
    updated_at: str
    chunk_count: int = 0

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Document:
        return cls(
            id=row["id"],
            title=row["title"],
            source=row["source"],
            media_type=row["media_type"],
            source_sha256=row["source_sha256"],
            text_sha256=row["text_sha256"],
            size_bytes=row["size_bytes"],
            source_modified_at=row["source_modified_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            chunk_count=row["chunk_count"] if "chunk_count" in row.keys() else 0,  # noqa: SIM118
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str
    document_id: str
    sequence: int
    start_byte: int
    end_byte: int
    heading: str | None
    text: str
    sha256: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Chunk:
        return cls(
            id=row["id"],
            document_id=row["document_id"],
            sequence=row["sequence"],
            start_byte=row["start_byte"],
            end_byte=row["end_byte"],
            heading=row["heading"],
            text=row["text"],
            sha256=row["sha256"],
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Fact:
    id: str
    subject: str
    predicate: str
    object: str
    confidence: Decimal
    source_chunk_id: str | None
    conversation_id: str | None
    status: str
    created_at: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Fact:
        return cls(
            id=row["id"],
            subject=row["subject"],
            predicate=row["predicate"],
            object=row["object"],
            confidence=Decimal(row["confidence"]),
            source_chunk_id=row["source_chunk_id"],
            conversation_id=row["conversation_id"],
            status=row["status"],
            created_at=row["created_at"],
            metadata=json.loads(row["metadata"]),
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["confidence"] = str(self.confidence)
        return data


@dataclass(frozen=True, slots=True)
class Summary:
    id: str
    text: str
    conversation_id: str | None
    document_id: str | None
    status: str
    created_at: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Summary:
        return cls(
            id=row["id"],
            text=row["text"],
            conversation_id=row["conversation_id"],
            document_id=row["document_id"],
            status=row["status"],
            created_at=row["created_at"],
            metadata=json.loads(row["metadata"]),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: str
    conversation_id: str
    sequence: int
    role: str
    content: str
    citations: tuple[str, ...]
    created_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> StoredMessage:
        return cls(
            id=row["id"],
            conversation_id=row["conversation_id"],
            sequence=row["sequence"],
            role=row["role"],
            content=row["content"],
            citations=tuple(json.loads(row["citations"])),
            created_at=row["created_at"],
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StoredConversation:
    id: str
    title: str
    source: str | None
    document_id: str | None
    created_at: str
    messages: tuple[StoredMessage, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Tombstone:
    record_id: str
    kind: str
    reason: str
    forgotten_at: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class IntegrityProblem:
    """One thing the integrity check found wrong: the record, what is wrong, and how bad it is."""

    record_id: str
    kind: str  # document | chunk | embedding | fact | database
    problem: str
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        return f"{self.severity}: {self.kind} {self.record_id}: {self.problem}"


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    checked: dict[str, int]
    problems: tuple[IntegrityProblem, ...]

    @property
    def ok(self) -> bool:
        return not any(problem.severity == "error" for problem in self.problems)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "problems": [asdict(problem) for problem in self.problems],
        }
