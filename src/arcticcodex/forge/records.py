"""Builders and readers for the frame TYPEs ArcticCodex writes.

Each builder returns a canonical, schema-valid :class:`Frame`; each reader takes a frame, validates
it and returns plain Python values.  No Python ``repr`` ever enters a frame: lists become repeated
payload items or nested frames, numbers become numeric tokens, free text becomes BLOB-T.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from .frame import Frame
from .schemas import validate
from .tokens import Blob, Dec, Text, Token, UInt, to_token


def utc_timestamp(moment: datetime | str) -> str:
    """ISO-8601 UTC text ending in ``Z``; a str is checked and normalised to UTC."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {moment.isoformat()} has no time zone; pass an aware datetime (UTC)")
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def _text_or_blob(text: str) -> Token:
    """Short single-line text as a word/literal, anything else as UTF-8 BLOB-T."""
    if len(text) <= 200 and text.isprintable():
        return Text(text)
    return Blob(text.encode("utf-8"))


def _as_text(token: object) -> str:
    if isinstance(token, Text):
        return token.text
    if isinstance(token, Blob):
        return token.data.decode("utf-8")
    raise TypeError(f"not text: {token!r}")


# --- EVIDENCE ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EvidenceRef:
    """A cited chunk as it is bound into a signed pair."""

    chunk_id: str
    doc_id: str
    sha256: str
    span: tuple[int, int] | None = None
    source: str | None = None


def evidence_frame(ref: EvidenceRef) -> Frame:
    header: dict[str, object] = {
        "TYPE": "EVIDENCE",
        "CHUNK_ID": ref.chunk_id,
        "DOC_ID": ref.doc_id,
        "SHA256": ref.sha256,
    }
    if ref.span is not None:
        header["SPAN_START"], header["SPAN_END"] = UInt(ref.span[0]), UInt(ref.span[1])
    if ref.source:
        header["SOURCE"] = ref.source
    return validate(Frame(header))


def read_evidence(frame: Frame) -> EvidenceRef:
    validate(frame, expected_type="EVIDENCE")
    h = frame.header
    start, end = h.get("SPAN_START"), h.get("SPAN_END")
    span = (start.value, end.value) if isinstance(start, UInt) and isinstance(end, UInt) else None
    source = h.get("SOURCE")
    return EvidenceRef(
        chunk_id=_as_text(h["CHUNK_ID"]),
        doc_id=_as_text(h["DOC_ID"]),
        sha256=_as_text(h["SHA256"]),
        span=span,
        source=_as_text(source) if source is not None else None,
    )


# --- TRAIN_PAIR ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrainPairFrame:
    """The fields a TRAIN_PAIR frame binds (the signing form of a dataset record)."""

    pair_id: str
    index: int
    quality: Decimal
    signer: str
    key_id: str
    created_at: str
    instruction: str
    completion: str
    teachers: tuple[str, ...] = ()
    evidence: tuple[EvidenceRef, ...] = ()

    def to_frame(self) -> Frame:
        payload: list[object] = [
            Blob(self.instruction.encode("utf-8")),
            Blob(self.completion.encode("utf-8")),
        ]
        for teacher in self.teachers:
            payload += [Text("TEACHER"), Text(teacher)]
        payload += [evidence_frame(ref) for ref in self.evidence]
        frame = Frame(
            {
                "TYPE": "TRAIN_PAIR",
                "ID": self.pair_id,
                "INDEX": UInt(self.index),
                "QUALITY": Dec(self.quality),
                "SIGNER": self.signer,
                "KEY_ID": self.key_id,
                "CREATED_AT": utc_timestamp(self.created_at),
            },
            payload,
        )
        return validate(frame)


def train_pair_frame(
    *,
    pair_id: str,
    index: int,
    quality: Decimal | str,
    signer: str,
    key_id: str,
    created_at: datetime | str,
    instruction: str,
    completion: str,
    teachers: Iterable[str] = (),
    evidence: Iterable[EvidenceRef] = (),
) -> Frame:
    """The canonical TRAIN_PAIR frame: what a dataset record's signature covers."""
    return TrainPairFrame(
        pair_id=pair_id,
        index=index,
        quality=Decimal(quality),
        signer=signer,
        key_id=key_id,
        created_at=created_at if isinstance(created_at, str) else utc_timestamp(created_at),
        instruction=instruction,
        completion=completion,
        teachers=tuple(teachers),
        evidence=tuple(evidence),
    ).to_frame()


def read_train_pair(frame: Frame) -> TrainPairFrame:
    validate(frame, expected_type="TRAIN_PAIR")
    h = frame.header
    items = frame.payload
    teachers: list[str] = []
    evidence: list[EvidenceRef] = []
    position = 2
    while position < len(items):
        item = items[position]
        if isinstance(item, Frame):
            evidence.append(read_evidence(item))
            position += 1
        else:
            teachers.append(_as_text(items[position + 1]))
            position += 2
    quality = h["QUALITY"]
    index = h["INDEX"]
    return TrainPairFrame(
        pair_id=_as_text(h["ID"]),
        index=index.value if isinstance(index, UInt) else 0,
        quality=quality.value if isinstance(quality, Dec) else Decimal(0),
        signer=_as_text(h["SIGNER"]),
        key_id=_as_text(h["KEY_ID"]),
        created_at=_as_text(h["CREATED_AT"]),
        instruction=_as_text(items[0]),
        completion=_as_text(items[1]),
        teachers=tuple(teachers),
        evidence=tuple(evidence),
    )


# --- FACT, SUMMARY -------------------------------------------------------------------------------


def fact_frame(
    *,
    fact_id: str,
    subject: str,
    predicate: str,
    obj: str,
    confidence: Decimal | str,
    source_chunk_id: str | None = None,
    created_at: datetime | str | None = None,
) -> Frame:
    header: dict[str, object] = {"TYPE": "FACT", "FACT_ID": fact_id, "CONFIDENCE": Dec(Decimal(confidence))}
    if source_chunk_id:
        header["SOURCE_CHUNK_ID"] = source_chunk_id
    if created_at is not None:
        header["CREATED_AT"] = utc_timestamp(created_at)
    payload = ["SUBJ", _text_or_blob(subject), "PRED", _text_or_blob(predicate), "OBJ", _text_or_blob(obj)]
    return validate(Frame(header, payload))


def summary_frame(
    *, summary_id: str, text: str, created_at: datetime | str, convo_id: str | None = None
) -> Frame:
    header: dict[str, object] = {
        "TYPE": "SUMMARY",
        "SUMMARY_ID": summary_id,
        "CREATED_AT": utc_timestamp(created_at),
    }
    if convo_id:
        header["CONVO_ID"] = convo_id
    return validate(Frame(header, [Blob(text.encode("utf-8"))]))


# --- VECTOR, MATRIX, LOG -------------------------------------------------------------------------


def vector_frame(values: Sequence[object], *, dtype: str | None = None) -> Frame:
    header: dict[str, object] = {"TYPE": "VECTOR", "LEN": UInt(len(values))}
    if dtype:
        header["DTYPE"] = dtype
    return validate(Frame(header, [to_token(value) for value in values]))


def matrix_frame(rows: Sequence[Sequence[object]], *, dtype: str | None = None) -> Frame:
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        raise ValueError(f"matrix rows have different lengths {sorted(widths)}; a MATRIX must be rectangular")
    header: dict[str, object] = {
        "TYPE": "MATRIX",
        "ROWS": UInt(len(rows)),
        "COLS": UInt(widths.pop() if widths else 0),
    }
    if dtype:
        header["DTYPE"] = dtype
    return validate(Frame(header, [to_token(value) for row in rows for value in row]))


def log_frame(
    severity: str, message: str, *, detail: str | None = None, time: int | datetime | None = None
) -> Frame:
    header: dict[str, object] = {"TYPE": "LOG", "SEVERITY": severity.upper()}
    if isinstance(time, datetime):
        header["TIME"] = utc_timestamp(time)
    elif time is not None:
        header["TIME"] = to_token(time)
    payload: list[object] = ["MSG", _text_or_blob(message)]
    if detail is not None:
        payload += ["DETAIL", _text_or_blob(detail)]
    return validate(Frame(header, payload))
