"""Frames: ``⧆ header ∷ payload ⧈``, always written in canonical form.

A :class:`Frame` has a header (key → token, keys unique) and a payload (tokens and nested frames).
There is exactly one way to write a frame: header fields sorted by key in code-point order (the
order the format has always used, so ``TYPE`` usually comes last), numbers in canonical form, strings as words
when they can be, no whitespace outside literals.  ``Frame.to_text()`` is therefore also the
canonical form, and the byte string that signatures cover (``to_bytes()``).
"""

from __future__ import annotations

import base64
import functools
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from ..errors import EncodeError
from . import codes
from .blob import utf8_bytes
from .radix import digits_to_int, int_to_digits
from .symbols import FIELD_SEP, FRAME_END, FRAME_START, HEADER_PAYLOAD_SEP, TOKEN_SEP, WORD_MODE
from .tokens import WORD_RE, Blob, Dec, Float, SInt, Text, Token, UInt, to_token

if TYPE_CHECKING:
    from typing import TypeAlias

Item: TypeAlias = Union[Token, "Frame"]


@dataclass(frozen=True, slots=True, eq=True)
class Frame:
    """One ForgeNumerics-S frame.  Plain Python values are converted with :func:`to_token`.

    >>> Frame({"TYPE": "FACT", "CONFIDENCE": Dec("0.95")}, ["SUBJ", "Einstein"]).to_text()
    '⧆≛CONFIDENCE⦙≗⊗⊗⊙◦Φ◽⊗⊙⊗⊗Φ∴≛TYPE⦙≛FACT∷≛SUBJ⦙≛Einstein⧈'
    """

    header: Mapping[str, Token] = field(default_factory=dict)
    payload: tuple[Item, ...] = ()

    def __init__(self, header: Mapping[str, object] | None = None, payload: Iterable[object] = ()) -> None:
        converted: dict[str, Token] = {}
        for key, value in (header or {}).items():
            if not isinstance(key, str) or not WORD_RE.fullmatch(key):
                raise EncodeError(
                    codes.INVALID_ARGUMENT,
                    f"header key {key!r} is not a word",
                    hint="keys are single words without spaces or ForgeNumerics symbols, e.g. SOURCE_ID",
                )
            if isinstance(value, Frame):
                raise EncodeError(
                    codes.INVALID_ARGUMENT,
                    f"header field {key} holds a frame; frames may only stand in the payload",
                )
            converted[key] = to_token(value)
        items = tuple(item if isinstance(item, Frame) else to_token(item) for item in payload)
        object.__setattr__(self, "header", converted)
        object.__setattr__(self, "payload", items)

    @classmethod
    def trusted(cls, header: dict[str, Token], payload: tuple[Item, ...]) -> Frame:
        """Build from already-checked parts (the parser's fast path: keys and tokens are valid)."""
        frame = object.__new__(cls)
        object.__setattr__(frame, "header", header)
        object.__setattr__(frame, "payload", payload)
        return frame

    def __hash__(self) -> int:
        """Frames are immutable and equal exactly when their canonical texts are: hash that."""
        return hash(self.to_text())

    # -- access -------------------------------------------------------------------------------------

    @property
    def type(self) -> str | None:
        """The TYPE header as a string, or None when absent or not text."""
        value = self.header.get("TYPE")
        return value.text if isinstance(value, Text) else None

    def get(self, key: str) -> Token | None:
        return self.header.get(key)

    def frames(self) -> Iterator[Frame]:
        """Nested frames in the payload, in order."""
        return (item for item in self.payload if isinstance(item, Frame))

    # -- text ---------------------------------------------------------------------------------------

    def to_text(self) -> str:
        """The canonical text of this frame (one line, no whitespace outside literals)."""
        header = self.header
        fields = FIELD_SEP.join([f"{WORD_MODE}{key}{TOKEN_SEP}{header[key].to_text()}" for key in sorted(header)])
        items = TOKEN_SEP.join([item.to_text() for item in self.payload])
        return f"{FRAME_START}{fields}{HEADER_PAYLOAD_SEP}{items}{FRAME_END}"

    def to_bytes(self) -> bytes:
        """UTF-8 of :meth:`to_text`: the exact bytes a signature over this frame covers."""
        return self.to_text().encode("utf-8")

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        header = ", ".join(f"{key}={value!r}" for key, value in self.header.items())
        return f"Frame({{{header}}}, payload={len(self.payload)} items)"

    # -- conversion ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        """JSON-ready view: ``{"header": {...}, "payload": [...]}`` with values decoded.

        Integers are numbers, decimals strings, floats numbers (``"nan"``, ``"inf"``, ``"-inf"`` as
        strings), blobs ``{"utf8": text}`` when valid UTF-8 else ``{"base64": ...}``.  Integers of
        more than 4,300 decimal digits are ``{"uint": "digits"}`` / ``{"sint": "-digits"}`` (see
        :func:`token_to_json`).
        """
        return {
            "header": {key: token_to_json(value) for key, value in self.header.items()},
            "payload": [token_to_json(item) for item in self.payload],
        }


def token_to_json(item: Item) -> object:
    """The JSON value of one token or frame (see :meth:`Frame.to_json`)."""
    if isinstance(item, Frame):
        return item.to_json()
    if isinstance(item, Text):
        return item.text
    if isinstance(item, UInt | SInt):
        if not _json_number_fits(item.value):
            return {"uint" if isinstance(item, UInt) else "sint": decimal_text(item.value)}
        return item.value
    if isinstance(item, Dec):
        return str(item)
    if isinstance(item, Float):
        if math.isnan(item.value):
            return "nan"
        if math.isinf(item.value):
            return "inf" if item.value > 0 else "-inf"
        return item.value
    if isinstance(item, Blob):
        try:
            return {"utf8": item.data.decode("utf-8")}
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(item.data).decode("ascii")}
    raise TypeError(f"not a token: {item!r}")  # pragma: no cover - the union is closed


#: Integers with more decimal digits than this are written to JSON as digit strings: CPython's default
#: limit on int↔str conversion, so that every reader's ``json.loads`` can read every number written.
JSON_INT_DIGITS = 4300


def _json_number_fits(value: int) -> bool:
    """True when ``value`` has at most JSON_INT_DIGITS decimal digits (or this interpreter's lower limit)."""
    limit = sys.get_int_max_str_digits()
    digits = JSON_INT_DIGITS if limit == 0 else min(JSON_INT_DIGITS, limit)
    if value.bit_length() <= digits * 3:  # 2**(3d) = 8**d < 10**d
        return True
    return abs(value) < _power_of_ten(digits)


@functools.cache
def _power_of_ten(digits: int) -> int:
    return int(10**digits)


def decimal_text(value: int) -> str:
    """``str(value)`` for integers of any size (``str`` itself refuses more than 4,300 digits)."""
    return ("-" if value < 0 else "") + int_to_digits(abs(value), 10)


def decimal_int(text: str) -> int:
    """``int(text)`` for an optionally signed string of decimal digits of any length up to the codec's cap."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body.isascii() or not body.isdigit():
        raise EncodeError(codes.INVALID_ARGUMENT, f"{_clip(text)} is not an integer (decimal digits, optional sign)")
    if len(body) > _MAX_DECIMAL_INT_CHARS:
        raise EncodeError(
            codes.OUT_OF_RANGE,
            f"an integer of {len(body):,} decimal digits is beyond the codec's cap of about 100,000 digits",
            hint="ForgeNumerics-S numbers are for measurements and counts; store larger data as BLOB-T bytes",
        )
    magnitude = digits_to_int(body, 10)
    return -magnitude if text.startswith("-") else magnitude


_MAX_DECIMAL_INT_CHARS = 100_200  # 3**MAX_INT_DIGITS has 100,196 digits; UInt/SInt check the exact cap


def _clip(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def item_from_json(value: object) -> Item:
    """The inverse of :func:`token_to_json`, with typed objects where JSON alone is ambiguous.

    Plain JSON: a string is text, an integer INT-U3 (≥ 0) or INT-S3, a float FLOAT-T.  Objects pick
    the profile: ``{"text": s}``, ``{"uint": n}`` (with ``"length_prefixed": true`` for INT-U3-L),
    ``{"sint": n}`` (``n`` may also be a string of decimal digits, as :func:`token_to_json` writes
    integers beyond 4,300 digits), ``{"decimal": "0.95"}``, ``{"float": 0.1 | "nan" | "inf" | "-inf"}``,
    ``{"utf8": s}``, ``{"base64": s}``, ``{"hex": s}`` (BLOB-T) and ``{"header": {…}, "payload": […]}``
    for a frame, whose values follow the same rules.
    """
    if isinstance(value, dict):
        keys = set(value)
        if "header" in keys or "payload" in keys:
            extra = keys - {"header", "payload"}
            header, payload = value.get("header", {}), value.get("payload", [])
            if extra or not isinstance(header, dict) or not isinstance(payload, list):
                raise EncodeError(codes.INVALID_ARGUMENT, 'a frame is {"header": {...}, "payload": [...]}')
            return Frame(
                {key: _header_from_json(key, entry) for key, entry in header.items()},
                [item_from_json(entry) for entry in payload],
            )
        kind = next(iter(keys - {"length_prefixed"}), None) if len(keys - {"length_prefixed"}) == 1 else None
        if kind is None or kind not in _TYPED_JSON:
            raise EncodeError(
                codes.INVALID_ARGUMENT,
                f"cannot tell which token {value!r} is",
                hint="use one key of: " + ", ".join(sorted(_TYPED_JSON)) + ", or header/payload for a frame",
            )
        return _TYPED_JSON[kind](value[kind], bool(value.get("length_prefixed", False)))
    if isinstance(value, float):
        return Float(value)
    return to_token(value)


def _header_from_json(key: str, value: object) -> Token:
    item = item_from_json(value)
    if isinstance(item, Frame):
        raise EncodeError(codes.INVALID_ARGUMENT, f"header field {key} holds a frame; frames go in the payload")
    return item


def _json_float(value: object, _: bool) -> Token:
    named = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
    if isinstance(value, str) and value.lower() in named:
        return Float(named[value.lower()])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Float(float(value))
    raise EncodeError(codes.INVALID_ARGUMENT, f"float must be a number, 'nan', 'inf' or '-inf', not {value!r}")


def _json_bytes(decoder: Callable[[str], bytes]) -> Callable[[object, bool], Token]:
    def convert(value: object, _: bool) -> Token:
        if not isinstance(value, str):
            raise EncodeError(codes.INVALID_ARGUMENT, f"BLOB-T content must be a string, not {value!r}")
        try:
            return Blob(decoder(value))
        except ValueError as exc:
            # from None: the ValueError adds nothing the message does not already say
            raise EncodeError(codes.INVALID_ARGUMENT, f"cannot decode BLOB-T content: {exc}") from None

    return convert


def _json_int(make: Callable[[int, bool], Token]) -> Callable[[object, bool], Token]:
    def convert(value: object, length_prefixed: bool) -> Token:
        if isinstance(value, str):
            return make(decimal_int(value), length_prefixed)
        if isinstance(value, bool) or not isinstance(value, int):
            raise EncodeError(codes.INVALID_ARGUMENT, f"expected an integer, not {value!r}")
        return make(value, length_prefixed)

    return convert


def _json_text(value: object, _: bool) -> Token:
    if not isinstance(value, str):
        raise EncodeError(codes.INVALID_ARGUMENT, f"text must be a string, not {value!r}")
    return Text(value)


def _json_decimal(value: object, _: bool) -> Token:
    if isinstance(value, float):
        raise EncodeError(codes.INVALID_ARGUMENT, "write decimals as strings ('0.1'): a JSON float is inexact")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise EncodeError(codes.INVALID_ARGUMENT, f"decimal must be a string such as '0.95', not {value!r}")
    return Dec(value)


_TYPED_JSON: dict[str, Callable[[object, bool], Token]] = {
    "text": _json_text,
    "uint": _json_int(lambda value, prefixed: UInt(value, prefixed)),
    "sint": _json_int(lambda value, _: SInt(value)),
    "decimal": _json_decimal,
    "float": _json_float,
    "utf8": _json_bytes(lambda text: utf8_bytes(text, "the utf8 text")),
    "base64": _json_bytes(lambda text: base64.b64decode(text, validate=True)),
    "hex": _json_bytes(bytes.fromhex),
}
