"""Reading what the original ArcticCodex wrote, as it meant it.

The original serialised frames its own parser could not always read back.  This reader accepts its
quirks so that its TRAIN_PAIR, FACT and SUMMARY frames decode to the values it meant, and the result
can be re-written canonically (``forge canonicalize --legacy``):

* header values written ``≛≗…`` are numbers; ``≛≛X`` is ``X``; a header word may hold spaces and
  punctuation (``≛ok, fine``, ``≛['c1', 'c2']``), surrounding whitespace is not part of it;
* FLOAT-T in the original layout ``≗⊗⊙S◦<width>◽<esign><exp> ∷ <mantissa>`` (with the spaced ``∷``,
  which is part of the token, not the header/payload separator) means (1.m)₃ × 3^e;
* payload items may be bare words, empty items (``⦙⦙``) are skipped, whitespace is trimmed;
* literals were never escaped: a literal ends at the ``⟧`` that is followed by a separator or the end;
* a header field without ``⦙`` carried no value and is dropped (as the original did);
* when a key repeats (the writer's two CREATED_AT headers), the last one wins: it is the pair's own;
* a ``[SIG|hex|signer|time]`` trailer line added by the original FrameVerifier is not frame content.

What stays an error even here: a missing ⧆/⧈/∷, a field with more than one ``⦙``, an unknown numeric
profile, bad digits, and a Φ sign (the original never wrote one).  :func:`legacy_record` turns a
legacy TRAIN_PAIR, FACT or SUMMARY frame into the plain values it carried.
"""

from __future__ import annotations

import ast
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from ..errors import ParseError
from . import codes
from .frame import Frame, Item
from .numbers import BodyError, ternary_to_float
from .scanner import decode_profile
from .symbols import (
    CONTROL_END,
    CONTROL_START,
    FIELD_SEP,
    FRAME_END,
    FRAME_START,
    HEADER_PAYLOAD_SEP,
    LITERAL_CLOSE,
    LITERAL_OPEN,
    NUMBER_MODE,
    PROFILE_FLOAT_T,
    TOKEN_SEP,
    TRIT_0,
    TRIT_1,
    WORD_MODE,
    is_trits,
    trits_to_int,
)
from .tokens import LITERAL_FORBIDDEN_RE, WORD_RE, Blob, Dec, Float, Text, Token, UInt, forbidden_character

_SIG_TRAILER = re.compile(r"\n\[SIG\|[0-9a-f]*\|[^|\n]*\|[^|\n\]]*\]\s*$")
_SEPARATORS = FIELD_SEP + TOKEN_SEP + HEADER_PAYLOAD_SEP
_LEGACY_FLOAT_SEP = " " + HEADER_PAYLOAD_SEP + " "


def read_legacy(text: str) -> Frame:
    """Read one frame as the original ArcticCodex wrote it (see the module docstring)."""
    stripped = text.strip()
    lead = len(text) - len(text.lstrip())

    def fail(code: str, message: str, offset: int, hint: str = "") -> ParseError:
        return ParseError(code, message, hint=hint, text=text, offset=lead + offset)

    if not stripped.startswith(FRAME_START):
        raise fail(codes.INVALID_FRAME_START, "expected ⧆ (frame start)", 0)
    if not stripped.endswith(FRAME_END) or len(stripped) < 2:
        raise fail(codes.INVALID_FRAME_END, "the frame is not closed by ⧈", len(stripped) - 1)
    inner = _SIG_TRAILER.sub("", stripped[1:-1])
    pieces = _split(inner)
    try:
        split_at = next(i for i, (sep, _, _) in enumerate(pieces) if sep == HEADER_PAYLOAD_SEP)
    except StopIteration:
        # from None: the StopIteration adds nothing the message does not already say
        raise fail(codes.MISSING_HEADER_PAYLOAD_SEP, "the frame has no ∷ between header and payload", 1) from None
    header: dict[str, Token] = {}
    fields: list[list[tuple[str, int]]] = [[]]
    for sep, piece, offset in pieces[:split_at]:
        if sep == FIELD_SEP:
            fields.append([])
        fields[-1].append((piece, offset))
    for parts in fields:
        if len(parts) == 1 and not parts[0][0].strip():
            continue  # empty header
        if len(parts) == 1:
            continue  # a field without ⦙: the original dropped it, and it carried no value
        if len(parts) > 2:
            raise fail(codes.MALFORMED_HEADER_FIELD, "header field has more than one ⦙", 1 + parts[0][1])
        key = parts[0][0].strip().lstrip(WORD_MODE).strip()
        if not WORD_RE.fullmatch(key):
            raise fail(codes.MALFORMED_HEADER_FIELD, f"header key {key!r} is not a word", 1 + parts[0][1])
        value_text, value_offset = parts[1]
        header[key] = _header_value(value_text, text, lead + 1 + value_offset)
    payload: list[Item] = []
    for _, piece, offset in pieces[split_at:]:
        if piece.strip():
            payload.append(_payload_item(piece, text, lead + 1 + offset))
    return Frame(header, payload)


def _split(inner: str) -> list[tuple[str, str, int]]:
    """Split at top-level separators: [(separator before the piece, piece, offset of piece)]."""
    pieces: list[tuple[str, str, int]] = []
    start, position, before = 0, 0, ""
    while position < len(inner):
        ch = inner[position]
        if ch == LITERAL_OPEN:
            position = _literal_end(inner, position)
            continue
        if ch in _SEPARATORS:
            current = inner[start:position].strip()
            if ch == HEADER_PAYLOAD_SEP and _is_legacy_float_gap(inner, position, current):
                position += 2
                continue
            pieces.append((before, inner[start:position], start))
            before, start = ch, position + 1
        position += 1
    pieces.append((before, inner[start:], start))
    return pieces


def _literal_end(inner: str, open_at: int) -> int:
    """Index just past the unescaped literal opened at ``open_at``."""
    search = open_at + 1
    while True:
        close = inner.find(LITERAL_CLOSE, search)
        if close < 0:
            return len(inner)
        rest = inner[close + 1 :].lstrip()
        if not rest or rest[0] in _SEPARATORS:
            return close + 1
        search = close + 1


def _is_legacy_float_gap(inner: str, position: int, current: str) -> bool:
    return (
        current.lstrip(WORD_MODE).startswith(NUMBER_MODE + PROFILE_FLOAT_T)
        and inner[position - 1 : position + 2] == _LEGACY_FLOAT_SEP
        and HEADER_PAYLOAD_SEP not in current
    )


def _header_value(raw: str, text: str, offset: int) -> Token:
    value = raw.strip().lstrip(WORD_MODE)
    if value.startswith(NUMBER_MODE):
        return _number(value, text, offset + raw.index(NUMBER_MODE))
    return _text(value.strip(), text, offset)


def _payload_item(raw: str, text: str, offset: int) -> Item:
    value = raw.strip()
    if value.startswith(NUMBER_MODE):
        return _number(value, text, offset + raw.index(NUMBER_MODE))
    return _text(value.lstrip(WORD_MODE), text, offset)


def _text(value: str, text: str, offset: int) -> Text:
    if value.startswith(LITERAL_OPEN) and value.endswith(LITERAL_CLOSE):
        value = value[1:-1]
    bad = LITERAL_FORBIDDEN_RE.search(value)
    if bad:
        raise ParseError(
            codes.INVALID_LITERAL,
            f"text holds {forbidden_character(bad.group())}",
            hint="the original wrote raw text here; re-export it as BLOB-T",
            text=text,
            offset=offset,
        )
    return Text(value)


def _number(token: str, text: str, offset: int) -> Token:
    body = token[1:]
    profile = body[:2]
    try:
        if profile == PROFILE_FLOAT_T and _LEGACY_FLOAT_SEP in body:
            return Float(_legacy_float(body[2:]))
        if profile == TRIT_0 + TRIT_0 and body[2:] == "":
            return UInt(0)  # the original read an empty INT-U3 body as 0…
        if profile == TRIT_0 + TRIT_1 and body.endswith(CONTROL_END):
            body += TRIT_0  # …and an empty INT-S3 magnitude as 0
        result = decode_profile(profile, body[2:])
    except BodyError as error:
        # from None: the BodyError adds nothing the message does not already say
        raise ParseError(
            error.code, error.message, hint=error.hint, text=text, offset=offset + 3 + error.offset
        ) from None
    if result is None:
        raise ParseError(
            codes.UNKNOWN_NUMERIC_PROFILE,
            f"unknown numeric profile {profile!r}",
            text=text,
            offset=offset + 1,
        )
    return result


def _legacy_float(body: str) -> float:
    """Value of the original's FLOAT-T body ``S◦<width>◽<esign><exp> ∷ <mantissa>``: ±(1.m)₃ × 3^e."""
    head, mantissa = body.split(_LEGACY_FLOAT_SEP, 1)
    if len(head) < 4 or head[1] != CONTROL_START or CONTROL_END not in head:
        raise BodyError(codes.MALFORMED_NUMBER, "legacy FLOAT-T lacks its S◦width◽ structure", 0)
    if head[0] not in (TRIT_0, TRIT_1):
        raise BodyError(codes.RESERVED_SIGN, f"legacy FLOAT-T sign {head[0]!r} is not ⊙ or ⊗", 0)
    exponent_part = head[head.index(CONTROL_END) + 1 :]
    if len(exponent_part) < 2 or exponent_part[0] not in (TRIT_0, TRIT_1) or not is_trits(exponent_part[1:]):
        raise BodyError(codes.MALFORMED_NUMBER, "legacy FLOAT-T exponent is malformed", head.index(CONTROL_END) + 1)
    exponent = trits_to_int(exponent_part[1:]) * (-1 if exponent_part[0] == TRIT_1 else 1)
    if mantissa and not is_trits(mantissa):
        raise BodyError(codes.INVALID_TRIT_SEQUENCE, "legacy FLOAT-T mantissa holds a non-digit", len(head) + 3)
    fraction = trits_to_int(mantissa) if mantissa else 0
    # (1 + fraction/3^n) · 3^e  =  (3^n + fraction) · 3^(e − n)
    value = ternary_to_float(3 ** len(mantissa) + fraction, exponent - len(mantissa))
    return -value if head[0] == TRIT_1 else value


def legacy_float_value(sign_positive: bool, exponent: int, mantissa_trits: str) -> float:
    """The value the original's ``float_t_value`` meant, computed exactly and rounded once."""
    digits = trits_to_int(mantissa_trits) if mantissa_trits else 0
    exact = (1 + Fraction(digits, 3 ** len(mantissa_trits))) * Fraction(3) ** exponent
    return float(exact if sign_positive else -exact)


# --- what the frames meant -----------------------------------------------------------------------


def legacy_record(frame: Frame) -> dict[str, object]:
    """Plain values of a legacy TRAIN_PAIR, FACT or SUMMARY frame (as read by :func:`read_legacy`)."""
    kind = frame.type
    header = {key: _plain(value) for key, value in frame.header.items() if key != "TYPE"}
    if kind == "TRAIN_PAIR":
        blobs = [item for item in frame.payload if isinstance(item, Blob)]
        if len(blobs) < 2:
            raise ValueError("legacy TRAIN_PAIR has no instruction/completion BLOB-T pair")
        record: dict[str, object] = {
            "instruction": blobs[0].data.decode("utf-8"),
            "completion": blobs[1].data.decode("utf-8"),
        }
        for key, value in header.items():
            record[key.lower()] = _meaning(key, value)
        return record
    if kind == "FACT":
        items = [_plain(item) for item in frame.payload if not isinstance(item, Frame)]
        pairs = dict(zip(items[0::2], items[1::2], strict=False))
        record = {key.lower(): _meaning(key, value) for key, value in header.items()}
        record.update(subject=pairs.get("SUBJ"), predicate=pairs.get("PRED"), object=pairs.get("OBJ"))
        return record
    if kind == "SUMMARY":
        blob = next((item for item in frame.payload if isinstance(item, Blob)), None)
        record = {key.lower(): value for key, value in header.items()}
        record["summary_text"] = blob.data.decode("utf-8") if blob else ""
        return record
    raise ValueError(f"legacy_record reads TRAIN_PAIR, FACT and SUMMARY frames, not {kind}")


def _plain(item: Item) -> object:
    if isinstance(item, Text):
        return item.text
    if isinstance(item, Dec):
        return item.value
    if isinstance(item, Blob):
        return item.data
    if isinstance(item, Frame):
        return item
    return item.value


def _meaning(key: str, value: object) -> object:
    """Undo the original's ``str(v)`` of metadata: numbers and lists it wrote as text."""
    if not isinstance(value, str):
        return value
    if key in ("CONFIDENCE", "QUALITY_SCORE", "QUALITY"):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    if value.startswith("[") and value.endswith("]"):
        try:
            parsed = ast.literal_eval(value)  # only literals: never evaluates code
        except (ValueError, SyntaxError):
            return value
        if isinstance(parsed, list) and all(isinstance(entry, str) for entry in parsed):
            return parsed
    return value
