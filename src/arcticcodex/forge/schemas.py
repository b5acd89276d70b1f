"""Schemas per frame TYPE, and validation against them.

A schema names the header keys a TYPE allows, which token kinds each may hold, which are required,
range checks on their values, and the layout of the payload.  Validation reports every problem as a
:class:`~arcticcodex.errors.ValidationError` with a ``VALIDATE_…`` code and the offending field;
:func:`validate` raises the first, :func:`problems` lists them all.  Nested frames (EVIDENCE inside
TRAIN_PAIR, the signed frame inside SIGNED) are validated too.

Every schema allows an optional ``DICT`` header (frames of the format's first version carry one).  Unknown keys
are errors: a frame is a signing form, and a field nobody checks is a field nobody notices changing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ..errors import ValidationError
from . import codes
from .frame import Frame, Item
from .tokens import Blob, Dec, Float, SInt, Text, Token, UInt

NUMERIC = (UInt, SInt, Dec, Float)
_HEX64 = re.compile("[0-9a-f]{64}")
_SEVERITIES = frozenset({"DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "CRITICAL"})

Check = Callable[[Token], str | None]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One header key: the token kinds it may hold, whether it must be present, a value check."""

    kinds: tuple[type, ...]
    required: bool = True
    check: Check | None = None
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Schema:
    type: str
    fields: Mapping[str, FieldSpec]
    payload: Callable[[Frame], Iterator[str]]
    payload_doc: str
    doc: str = ""
    extra: Mapping[str, FieldSpec] = field(default_factory=dict)


# --- value checks --------------------------------------------------------------------------------


def _unit_interval(token: Token) -> str | None:
    if isinstance(token, Dec) and not (Decimal(0) <= token.value <= Decimal(1)):
        return f"must be between 0 and 1, not {token}"
    return None


def _sha256_hex(token: Token) -> str | None:
    if isinstance(token, Text) and not _HEX64.fullmatch(token.text):
        return "must be 64 lowercase hex digits (a SHA-256)"
    return None


def _timestamp(token: Token) -> str | None:
    if not isinstance(token, Text):
        return None
    try:
        moment = datetime.fromisoformat(token.text)
    except ValueError:
        return f"must be an ISO-8601 timestamp, not {token.text!r}"
    if moment.tzinfo is None:
        return f"{token.text!r} has no time zone; write UTC with a Z, e.g. 2026-01-31T12:00:00Z"
    return None


def _utc_timestamp(token: Token) -> str | None:
    problem = _timestamp(token)
    if problem is None and isinstance(token, Text) and not token.text.endswith("Z"):
        return f"{token.text!r} must be UTC written with a Z (the signing form has one spelling per moment)"
    return problem


def _one_of(allowed: frozenset[str]) -> Check:
    def check(token: Token) -> str | None:
        if isinstance(token, Text) and token.text not in allowed:
            return f"must be one of {', '.join(sorted(allowed))}, not {token.text!r}"
        return None

    return check


def _non_empty(token: Token) -> str | None:
    if isinstance(token, Text) and not token.text:
        return "must not be empty"
    return None


TEXT = FieldSpec((Text,), check=_non_empty)
OPTIONAL_TEXT = FieldSpec((Text,), required=False, check=_non_empty)
COUNT = FieldSpec((UInt,))
TIMESTAMP = FieldSpec((Text,), check=_timestamp, doc="ISO-8601 with a time zone (UTC: …Z)")
SHA256 = FieldSpec((Text,), check=_sha256_hex)
UNIT_DECIMAL = FieldSpec((Dec,), check=_unit_interval, doc="DECIMAL-T in [0, 1]")


# --- payload layouts -----------------------------------------------------------------------------


def _kind(item: Item) -> str:
    return "frame" if isinstance(item, Frame) else type(item).__name__


def _marker(item: Item, name: str) -> bool:
    return isinstance(item, Text) and item.text == name


def _train_pair_payload(frame: Frame) -> Iterator[str]:
    items = frame.payload
    if len(items) < 2 or not isinstance(items[0], Blob) or not isinstance(items[1], Blob):
        yield "payload must start with two BLOB-T tokens: instruction, completion (UTF-8)"
        return
    for index, blob in ((0, items[0]), (1, items[1])):
        try:
            blob.data.decode("utf-8")
        except UnicodeDecodeError:
            yield f"payload item {index} is not valid UTF-8 text"
    rest = list(items[2:])
    position = 2
    while rest and not isinstance(rest[0], Frame):
        if len(rest) < 2 or not _marker(rest[0], "TEACHER") or not isinstance(rest[1], Text):
            yield f"payload item {position}: expected ≛TEACHER⦙<teacher id> or an EVIDENCE frame"
            return
        rest, position = rest[2:], position + 2
    for item in rest:
        if not isinstance(item, Frame) or item.type != "EVIDENCE":
            yield f"payload item {position}: expected an EVIDENCE frame, found {_kind(item)}"
            return
        position += 1


def _evidence_payload(frame: Frame) -> Iterator[str]:
    if frame.payload and (len(frame.payload) != 1 or not isinstance(frame.payload[0], Blob)):
        yield "payload must be empty or one BLOB-T (the evidence text)"
    start, end = frame.header.get("SPAN_START"), frame.header.get("SPAN_END")
    if isinstance(start, UInt) and isinstance(end, UInt) and start.value > end.value:
        yield f"SPAN_START {start.value} is after SPAN_END {end.value}"
    if (start is None) != (end is None):
        yield "SPAN_START and SPAN_END go together"


def _fact_payload(frame: Frame) -> Iterator[str]:
    items = frame.payload
    names = ("SUBJ", "PRED", "OBJ")
    if len(items) != 6 or any(not _marker(items[2 * i], name) for i, name in enumerate(names)):
        yield "payload must be ≛SUBJ⦙subject⦙≛PRED⦙predicate⦙≛OBJ⦙object"
        return
    for i, name in enumerate(names):
        if not isinstance(items[2 * i + 1], Text | Blob):
            yield f"{name} must be text (word, literal or BLOB-T), not {_kind(items[2 * i + 1])}"


def _summary_payload(frame: Frame) -> Iterator[str]:
    if len(frame.payload) != 1 or not isinstance(frame.payload[0], Blob):
        yield "payload must be one BLOB-T holding the UTF-8 summary text"


def _numbers(frame: Frame, expected: int | None, what: str) -> Iterator[str]:
    for position, item in enumerate(frame.payload):
        if not isinstance(item, NUMERIC):
            yield f"payload item {position} must be a number, not {_kind(item)}"
            return
    if expected is not None and len(frame.payload) != expected:
        yield f"{what} says {expected} values but the payload holds {len(frame.payload)}"


def _vector_payload(frame: Frame) -> Iterator[str]:
    length = frame.header.get("LEN")
    yield from _numbers(frame, length.value if isinstance(length, UInt) else None, "LEN")


def _matrix_payload(frame: Frame) -> Iterator[str]:
    rows, cols = frame.header.get("ROWS"), frame.header.get("COLS")
    expected = rows.value * cols.value if isinstance(rows, UInt) and isinstance(cols, UInt) else None
    yield from _numbers(frame, expected, "ROWS × COLS")


def _log_payload(frame: Frame) -> Iterator[str]:
    items = frame.payload
    ok = len(items) in (2, 4) and _marker(items[0], "MSG") and isinstance(items[1], Text | Blob)
    if ok and len(items) == 4:
        ok = _marker(items[2], "DETAIL") and isinstance(items[3], Text | Blob)
    if not ok:
        yield "payload must be ≛MSG⦙message, optionally followed by ≛DETAIL⦙detail"


def _signed_payload(frame: Frame) -> Iterator[str]:
    if len(frame.payload) != 1 or not isinstance(frame.payload[0], Frame):
        yield "payload must be exactly one frame (the signed one)"
    sig, alg = frame.header.get("SIG"), frame.header.get("ALG")
    sizes = {"ed25519": 64, "hmac-sha256": 32}
    if isinstance(sig, Blob) and isinstance(alg, Text) and alg.text in sizes and len(sig.data) != sizes[alg.text]:
        yield f"SIG holds {len(sig.data)} bytes; an {alg.text} signature has {sizes[alg.text]}"


SCHEMAS: dict[str, Schema] = {
    schema.type: schema
    for schema in (
        Schema(
            "TRAIN_PAIR",
            {
                "ID": TEXT,
                "INDEX": COUNT,
                "QUALITY": UNIT_DECIMAL,
                "SIGNER": TEXT,
                "KEY_ID": SHA256,
                "CREATED_AT": FieldSpec((Text,), check=_utc_timestamp, doc="ISO-8601 UTC ending in Z"),
            },
            _train_pair_payload,
            "BLOB-T instruction ⦙ BLOB-T completion ⦙ (≛TEACHER⦙id)* ⦙ EVIDENCE frame*",
            "A training pair in its signing form (DATASET.md).",
        ),
        Schema(
            "EVIDENCE",
            {
                "CHUNK_ID": TEXT,
                "DOC_ID": TEXT,
                "SHA256": SHA256,
                "SPAN_START": FieldSpec((UInt,), required=False),
                "SPAN_END": FieldSpec((UInt,), required=False),
                "SOURCE": OPTIONAL_TEXT,
            },
            _evidence_payload,
            "empty, or BLOB-T evidence text",
            "One cited chunk: where it came from and the hash of its text.",
        ),
        Schema(
            "FACT",
            {
                "FACT_ID": TEXT,
                "CONFIDENCE": UNIT_DECIMAL,
                "SOURCE_CHUNK_ID": OPTIONAL_TEXT,
                "CREATED_AT": FieldSpec((Text,), required=False, check=_timestamp),
            },
            _fact_payload,
            "≛SUBJ⦙subject⦙≛PRED⦙predicate⦙≛OBJ⦙object",
            "A subject–predicate–object fact with its confidence.",
        ),
        Schema(
            "SUMMARY",
            {"SUMMARY_ID": TEXT, "CONVO_ID": OPTIONAL_TEXT, "CREATED_AT": TIMESTAMP},
            _summary_payload,
            "BLOB-T summary text",
            "A conversation or document summary.",
        ),
        Schema(
            "VECTOR",
            {"LEN": COUNT, "DTYPE": OPTIONAL_TEXT},
            _vector_payload,
            "LEN numeric tokens",
            "A vector of numbers.",
        ),
        Schema(
            "MATRIX",
            {"ROWS": COUNT, "COLS": COUNT, "DTYPE": OPTIONAL_TEXT},
            _matrix_payload,
            "ROWS × COLS numeric tokens, row-major",
            "A matrix of numbers.",
        ),
        Schema(
            "LOG",
            {
                "SEVERITY": FieldSpec((Text,), check=_one_of(_SEVERITIES)),
                "TIME": FieldSpec((UInt, SInt, Text), required=False),
            },
            _log_payload,
            "≛MSG⦙message [⦙≛DETAIL⦙detail]",
            "A log line.",
        ),
        Schema(
            "SIGNED",
            {
                "ALG": FieldSpec((Text,), check=_one_of(frozenset({"ed25519", "hmac-sha256"}))),
                "KEY_ID": SHA256,
                "SIGNED_AT": TIMESTAMP,
                "SIGNER": TEXT,
                "SIG": FieldSpec((Blob,)),
            },
            _signed_payload,
            "exactly one frame: the signed one",
            "A signature envelope (see arcticcodex.provenance).",
        ),
    )
}


def problems(frame: Frame, *, expected_type: str | None = None) -> list[ValidationError]:
    """Every schema violation of ``frame`` (and of frames nested in it), in reading order."""
    return list(_problems(frame, expected_type, path=""))


def validate(frame: Frame, *, expected_type: str | None = None) -> Frame:
    """Return ``frame`` if it satisfies its schema, else raise the first :class:`ValidationError`."""
    for problem in _problems(frame, expected_type, path=""):
        raise problem
    return frame


def _problems(frame: Frame, expected_type: str | None, path: str) -> Iterator[ValidationError]:
    def error(code: str, message: str, hint: str = "", field_name: str | None = None) -> ValidationError:
        return ValidationError(code, f"{path}{message}", hint=hint, field=field_name)

    frame_type = frame.type
    if frame_type is None:
        yield error(codes.REQUIRED_FIELD_MISSING, "frame has no TYPE header", "add ≛TYPE⦙≛<NAME>", "TYPE")
        return
    if expected_type is not None and frame_type != expected_type:
        yield error(codes.TYPE_MISMATCH, f"expected a {expected_type} frame, found {frame_type}", field_name="TYPE")
        return
    schema = SCHEMAS.get(frame_type)
    if schema is None:
        known = ", ".join(sorted(SCHEMAS))
        yield error(codes.UNKNOWN_TYPE, f"no schema for TYPE {frame_type}", f"known types: {known}", "TYPE")
        return
    where = f"{frame_type} "
    for key, spec in schema.fields.items():
        value = frame.header.get(key)
        if value is None:
            if spec.required:
                yield error(codes.REQUIRED_FIELD_MISSING, f"{where}frame lacks the {key} header", spec.doc, key)
            continue
        if not isinstance(value, spec.kinds):
            allowed = " or ".join(kind.__name__ for kind in spec.kinds)
            yield error(
                codes.UNSUPPORTED_PROFILE,
                f"{where}header {key} holds a {type(value).__name__}; it must be {allowed}",
                spec.doc,
                key,
            )
            continue
        message = spec.check(value) if spec.check else None
        if message:
            yield error(codes.VALUE_OUT_OF_RANGE, f"{where}header {key} {message}", spec.doc, key)
    for key in frame.header:
        if key == "DICT" and not isinstance(frame.header[key], Text):
            yield error(codes.UNSUPPORTED_PROFILE, f"{where}header DICT must be a word or literal", field_name=key)
        if key not in schema.fields and key not in ("TYPE", "DICT"):
            allowed = ", ".join(sorted(schema.fields))
            yield error(
                codes.UNEXPECTED_FIELD,
                f"{where}frame has an unknown header {key}",
                f"allowed: {allowed}",
                key,
            )
    for message in schema.payload(frame):
        yield error(codes.SCHEMA_MISMATCH, f"{where}{message}", f"layout: {schema.payload_doc}")
    for position, nested in enumerate(frame.payload):
        if isinstance(nested, Frame):
            yield from _problems(nested, None, path=f"{path}{frame_type} payload item {position}: ")
