"""A dataset record (TrainingPair): its JSONL form, its signing form, and reading it back strictly.

One line of ``train.jsonl`` is one record: the training columns a trainer reads (``messages``, and
the flat ``instruction``/``completion`` of Alpaca-style trainers), then the provenance an auditor reads
(quality, critique, revisions, evidence, source, teachers, signer, time), then ``integrity``.  A pair taken
from a conversation keeps the turns before it: ``messages`` holds them, then the instruction and
the completion (a multi-turn example); the TRAIN_PAIR frame carries only the last two, so the
earlier turns are bound by the body digest the signature also covers.  The signature
covers the canonical TRAIN_PAIR frame (id, index, quality, signer, key id, time, teachers, evidence
hashes and both texts) and the SHA-256 of the record's canonical JSON without ``integrity``, so a
changed byte in any field, bound by the frame or not, breaks it (see
:mod:`arcticcodex.provenance.record_signing`).

Quality is an exact decimal with at most four places, so its JSON number reads back to the same
decimal and the frame rebuilt from a line is the frame that was signed.

A revision may carry fields later versions added (each critic's own score, the verifier's name);
they are written only when they hold something, so a record without them keeps the bytes it was
signed with, and like every field outside the frame they are bound by the body digest.

Over 400 lines: writing a record and reading it back strictly are kept in one module so
the two can never disagree about a field.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import orjson

from ..errors import DatasetError, ValidationError
from ..forge.record_frames import EvidenceRef, TrainPairFrame, utc_timestamp
from ..provenance.record_signing import RecordSignature, sign_record
from ..provenance.signing import Signer

__all__ = [
    "PairSource",
    "Revision",
    "TrainingPair",
    "Turn",
    "canonical_json",
    "json_line",
    "pair_id_for",
    "sign_body",
]

SourceKind = Literal["prompts", "conversation", "curriculum"]
SOURCE_KINDS: tuple[str, ...] = ("prompts", "conversation", "curriculum")
QUALITY_PLACES = Decimal("0.0001")
TURN_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier message of the conversation a pair was taken from."""

    role: str
    content: str

    def __post_init__(self) -> None:
        if self.role not in TURN_ROLES:
            raise ValueError(f"a turn's role must be one of {', '.join(TURN_ROLES)}, not {self.role!r}")

    def to_json(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class PairSource:
    """Where the prompt came from: a prompts file line, a conversation turn, or a vault chunk."""

    kind: SourceKind
    ref: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "ref": self.ref}


@dataclass(frozen=True, slots=True)
class Revision:
    """One round of the teacher loop: the text judged, its score and what the round cost.

    ``score`` is the critics' combined score; ``critic_scores`` keeps each critic's own (teacher →
    score) and ``verifier`` the teacher that checked the claims, so a person's decisions can be compared
    with each judge separately (:mod:`arcticcodex.distill.review_agreement`).  Both are left out of the
    JSON when empty, so a record written before they existed keeps its exact bytes and signature.
    """

    round: int
    text: str
    score: float
    criteria: Mapping[str, float] = field(default_factory=dict)
    claims: tuple[str, ...] = ()
    teachers: tuple[str, ...] = ()
    tokens: int = 0
    cost_usd: float = 0.0
    critic_scores: Mapping[str, float] = field(default_factory=dict)
    verifier: str = ""

    def __post_init__(self) -> None:
        numbers = [self.score, self.cost_usd, *self.criteria.values(), *self.critic_scores.values()]
        if not all(isinstance(n, int | float) and not isinstance(n, bool) and math.isfinite(n) for n in numbers):
            raise ValueError(f"revision {self.round}: score, cost, criteria and critic scores must be finite numbers")
        if not all(isinstance(name, str) and name for name in self.critic_scores):
            raise ValueError(f"revision {self.round}: each critic score must be under its teacher's name")

    def to_json(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "round": self.round,
            "text": self.text,
            "score": self.score,
            "criteria": dict(self.criteria),
            "claims": list(self.claims),
            "teachers": list(self.teachers),
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
        }
        if self.critic_scores:  # absent, not empty, in records written before per-critic scores were kept
            fields["critic_scores"] = dict(self.critic_scores)
        if self.verifier:
            fields["verifier"] = self.verifier
        return fields


@dataclass(frozen=True, slots=True)
class TrainingPair:
    """An instruction, its verified completion, and everything needed to trust and audit it."""

    id: str
    index: int
    instruction: str
    completion: str
    quality: Decimal
    signer_id: str
    created_at: str
    source: PairSource
    accepted: bool = True
    feedback: str = ""
    revisions: tuple[Revision, ...] = ()
    evidence: tuple[EvidenceRef, ...] = ()
    teachers: tuple[str, ...] = ()
    context: tuple[Turn, ...] = ()
    """The conversation's turns before ``instruction`` (empty for a single-turn pair)."""

    def __post_init__(self) -> None:
        given: object = self.quality  # callers may pass str or float despite the annotation
        if isinstance(given, float):
            raise ValueError("quality must be exact: pass Decimal('0.92') or '0.92', not a float")
        quality = Decimal(self.quality)
        if not quality.is_finite() or not Decimal(0) <= quality <= Decimal(1):
            raise ValueError(f"quality must be in [0, 1], not {quality}")
        object.__setattr__(self, "quality", quality.quantize(QUALITY_PLACES).normalize())
        object.__setattr__(self, "created_at", utc_timestamp(self.created_at))

    @property
    def content_id(self) -> str:
        """The id this pair must have: :func:`pair_id_for` of its instruction, completion, evidence and context."""
        return pair_id_for(self.instruction, self.completion, self.evidence, self.context)

    @property
    def messages(self) -> list[dict[str, str]]:
        """The conversational form TRL, Axolotl and OpenAI fine-tuning read: earlier turns, question, answer."""
        return [
            *(turn.to_json() for turn in self.context),
            {"role": "user", "content": self.instruction},
            {"role": "assistant", "content": self.completion},
        ]

    def frame(self, key_id: str) -> TrainPairFrame:
        """The signing form: the TRAIN_PAIR frame for this pair under the key ``key_id``."""
        return TrainPairFrame(
            pair_id=self.id,
            index=self.index,
            quality=self.quality,
            signer=self.signer_id,
            key_id=key_id,
            created_at=self.created_at,
            instruction=self.instruction,
            completion=self.completion,
            teachers=self.teachers,
            evidence=self.evidence,
        )

    def body(self) -> dict[str, Any]:
        """The record's JSON fields without ``integrity``, in the order they are written."""
        return {
            "id": self.id,
            "index": self.index,
            "messages": self.messages,
            "instruction": self.instruction,
            "completion": self.completion,
            "quality": float(self.quality),
            "accepted": self.accepted,
            "feedback": self.feedback,
            "revisions": [revision.to_json() for revision in self.revisions],
            "evidence": [_evidence_json(ref) for ref in self.evidence],
            "source": self.source.to_json(),
            "teachers": list(self.teachers),
            "signer_id": self.signer_id,
            "created_at": self.created_at,
        }

    def signed(self, signer: Signer) -> tuple[dict[str, Any], RecordSignature]:
        """The full JSON record with its ``integrity`` block, and the signature itself."""
        return sign_body(self.body(), signer)

    @classmethod
    def from_json(cls, record: Mapping[str, Any], *, where: str = "") -> TrainingPair:
        """Read a record back, strictly: a missing field or a wrong type is a :class:`DatasetError`."""
        reader = _FieldReader(record, where)
        try:
            return cls(
                id=reader.text("id"),
                index=reader.integer("index"),
                instruction=reader.text("instruction", allow_empty=True),
                completion=reader.text("completion", allow_empty=True),
                quality=reader.decimal("quality"),
                signer_id=reader.text("signer_id"),
                created_at=reader.text("created_at"),
                source=reader.source(),
                accepted=reader.boolean("accepted"),
                feedback=reader.text("feedback", allow_empty=True),
                revisions=reader.revisions(),
                evidence=reader.evidence(),
                teachers=tuple(reader.texts("teachers")),
                context=reader.context(),
            )
        except (ValueError, ValidationError) as exc:
            raise DatasetError(f"{where}: {exc}" if where else str(exc)) from exc


def sign_body(body: dict[str, Any], signer: Signer) -> tuple[dict[str, Any], RecordSignature]:
    """Sign a record body as :meth:`TrainingPair.body` makes it: the record with ``integrity``, and the signature.

    The frame is built from the body's own fields — the quality read back from its JSON number, as a
    verifier reads it — so signer and verifier derive the signed bytes the same way.  Worker
    processes sign bodies sent to them as JSON without rebuilding (and re-checking) the pair.
    """
    span = [item.get("span") for item in body["evidence"]]
    frame = TrainPairFrame(
        pair_id=body["id"],
        index=body["index"],
        quality=Decimal(repr(body["quality"])),
        signer=body["signer_id"],
        key_id=signer.key_id,
        created_at=body["created_at"],
        instruction=body["instruction"],
        completion=body["completion"],
        teachers=tuple(body["teachers"]),
        evidence=tuple(
            EvidenceRef(
                chunk_id=item["chunk_id"],
                doc_id=item["doc_id"],
                sha256=item["sha256"],
                span=(where[0], where[1]) if where is not None else None,
                source=item["source"],
            )
            for item, where in zip(body["evidence"], span, strict=True)
        ),
    )
    signature = sign_record(signer, frame.to_bytes(), canonical_json(body))
    return {**body, "integrity": signature.to_json()}, signature


def iter_records(path: Path) -> Iterator[tuple[str, TrainingPair, dict[str, Any]]]:
    """Each record of a dataset JSONL file as (``file:line``, pair, parsed JSON), read strictly, streamed.

    For statistics and exports, which describe the file as it is; ``dataset verify`` reads the raw
    lines itself because it must also account for bytes that are not records.
    """
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{line_number}"
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise DatasetError(f"{where}: not valid JSON ({exc.msg}); run `arcticcodex dataset verify`") from exc
            yield where, TrainingPair.from_json(record, where=where), record


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value that is hashed: sorted keys, no spaces, UTF-8 (not escaped).

    Numbers are written as orjson writes them: integers plainly, floats in their shortest form that
    reads back to the same double (``0.9``, ``0.00007``, ``1e-7``).  Non-finite floats have no JSON
    form; records refuse them when they are made (orjson would write them as null).
    """
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def json_line(value: dict[str, Any], *, indent: bool = False) -> bytes:
    """A record as one JSONL line (fields in their written order), or the manifest, pretty-printed."""
    return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE | (orjson.OPT_INDENT_2 if indent else 0))


def content_digest(parts: Iterable[str]) -> str:
    """SHA-256 (hex) of texts, each length-prefixed so that moving text between parts changes it."""
    digest = hashlib.sha256()
    for part in parts:
        encoded = part.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


def pair_id_for(
    instruction: str, completion: str, evidence: Iterable[EvidenceRef] = (), context: Iterable[Turn] = ()
) -> str:
    """A content id: the same question, answer, evidence and earlier turns give the same id (so exact
    duplicates collide).  A single-turn pair's id is what it always was; earlier turns follow a
    separator no evidence hash can equal."""
    turns = [part for turn in context for part in (turn.role, turn.content)]
    parts = (instruction, completion, *(ref.sha256 for ref in evidence), *(("\x1dcontext", *turns) if turns else ()))
    return "tp-" + content_digest(parts)[:32]


def _evidence_json(ref: EvidenceRef) -> dict[str, Any]:
    return {
        "chunk_id": ref.chunk_id,
        "doc_id": ref.doc_id,
        "source": ref.source,
        "span": list(ref.span) if ref.span is not None else None,
        "sha256": ref.sha256,
    }


class _FieldReader:
    """Typed access to a parsed record's fields, with errors that name the field."""

    def __init__(self, record: Mapping[str, Any], where: str) -> None:
        if not isinstance(record, Mapping):
            raise DatasetError(f"{where or 'the record'}: a record must be a JSON object, not {type(record).__name__}")
        self.record = record
        self.where = where
        self.at = f"{where}: " if where else ""  # the place, as a message prefix

    def _get(
        self, name: str, kinds: type | tuple[type, ...], what: str, record: Mapping[str, Any] | None = None
    ) -> Any:
        source = self.record if record is None else record
        if name not in source:
            raise DatasetError(f"{self.at}the record has no {name!r} field")
        value = source[name]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
            raise DatasetError(f"{self.at}field {name!r} must be {what}, not {json.dumps(value)[:60]}")
        return value

    def text(self, name: str, *, allow_empty: bool = False) -> str:
        value: str = self._get(name, str, "a string")
        if not value and not allow_empty:
            raise DatasetError(f"{self.at}field {name!r} is empty")
        return value

    def texts(self, name: str) -> list[str]:
        values: list[Any] = self._get(name, list, "a list of strings")
        if not all(isinstance(value, str) for value in values):
            raise DatasetError(f"{self.at}field {name!r} must be a list of strings")
        return values

    def integer(self, name: str) -> int:
        value: int = self._get(name, int, "an integer")
        return value

    def boolean(self, name: str) -> bool:
        value: bool = self._get(name, bool, "true or false")
        return value

    def decimal(self, name: str) -> Decimal:
        value = self._get(name, (int, float), "a number")
        try:
            return Decimal(repr(value))
        except InvalidOperation as exc:  # pragma: no cover - json numbers always parse
            raise DatasetError(f"{self.at}field {name!r} is not a number") from exc

    def source(self) -> PairSource:
        value: Mapping[str, Any] = self._get("source", dict, "an object {kind, ref}")
        kind = self._get("kind", str, "a string", value)
        if kind not in SOURCE_KINDS:
            raise DatasetError(f"{self.at}source kind {kind!r} is not one of {', '.join(SOURCE_KINDS)}")
        return PairSource(kind=kind, ref=self._get("ref", str, "a string", value))

    def revisions(self) -> tuple[Revision, ...]:
        items: list[Any] = self._get("revisions", list, "a list")
        revisions = []
        for item in items:
            if not isinstance(item, dict):
                raise DatasetError(f"{self.at}each revision must be an object")
            revisions.append(
                Revision(
                    round=self._get("round", int, "an integer", item),
                    text=self._get("text", str, "a string", item),
                    score=float(self._get("score", (int, float), "a number", item)),
                    criteria=dict(self._get("criteria", dict, "an object", item)),
                    claims=tuple(self._get("claims", list, "a list", item)),
                    teachers=tuple(self._get("teachers", list, "a list", item)),
                    tokens=self._get("tokens", int, "an integer", item),
                    cost_usd=float(self._get("cost_usd", (int, float), "a number", item)),
                    critic_scores=self._critic_scores(item),
                    verifier=self._get("verifier", str, "a string", item) if "verifier" in item else "",
                )
            )
        return tuple(revisions)

    def _critic_scores(self, revision: Mapping[str, Any]) -> dict[str, float]:
        """A revision's ``critic_scores`` (teacher → number), or none for a record written before they were kept."""
        if "critic_scores" not in revision:
            return {}
        scores: Mapping[str, Any] = self._get("critic_scores", dict, "an object of teacher → score", revision)
        if not all(type(score) in (int, float) for score in scores.values()):
            raise DatasetError(f"{self.at}field 'critic_scores' must map each teacher to a number")
        return {name: float(score) for name, score in scores.items()}

    def context(self) -> tuple[Turn, ...]:
        """The turns before the instruction: ``messages`` less its last two (the pair itself)."""
        if "messages" not in self.record:
            return ()
        items: list[Any] = self._get("messages", list, "a list of {role, content} messages")
        turns = []
        for item in items:
            if not isinstance(item, dict):
                raise DatasetError(f"{self.at}each message must be an object {{role, content}}")
            role = self._get("role", str, "a string", item)
            if role not in TURN_ROLES:
                raise DatasetError(f"{self.at}message role {role!r} is not one of {', '.join(TURN_ROLES)}")
            turns.append(Turn(role, self._get("content", str, "a string", item)))
        # the last two are the instruction and the completion; their text is not compared here, as a
        # changed byte in either is the signature's to report ("edited after signing")
        if [turn.role for turn in turns[-2:]] != ["user", "assistant"]:
            raise DatasetError(f"{self.at}'messages' must end with the user's instruction and the assistant's answer")
        return tuple(turns[:-2])

    def evidence(self) -> tuple[EvidenceRef, ...]:
        items: list[Any] = self._get("evidence", list, "a list")
        refs = []
        for item in items:
            if not isinstance(item, dict):
                raise DatasetError(f"{self.at}each evidence item must be an object")
            span = item.get("span")
            if span is not None and not (
                isinstance(span, list) and len(span) == 2 and all(type(n) is int for n in span)
            ):
                raise DatasetError(f"{self.at}evidence span must be [start, end] or null")
            source = item.get("source")
            if source is not None and not isinstance(source, str):
                raise DatasetError(f"{self.at}evidence source must be a string or null")
            refs.append(
                EvidenceRef(
                    chunk_id=self._get("chunk_id", str, "a string", item),
                    doc_id=self._get("doc_id", str, "a string", item),
                    sha256=self._get("sha256", str, "a string", item),
                    span=(span[0], span[1]) if span is not None else None,
                    source=source,
                )
            )
        return tuple(refs)


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)
