"""Token values and their canonical text.

A token is one of:

* :class:`Text`   a string, written as a word ``≛hello`` when it can be one, else as a literal
                  ``≛⟦two words⟧`` (a ``⟧`` inside is doubled).  One string, one canonical text.
* :class:`UInt`   INT-U3 (``length_prefixed=True`` for INT-U3-L)
* :class:`SInt`   INT-S3
* :class:`Dec`    DECIMAL-T, an exact decimal kept as (negative, scale, magnitude) in lowest terms
* :class:`Float`  FLOAT-T, an IEEE-754 double compared bit for bit (so −0.0 ≠ 0.0, NaN == same NaN)
* :class:`Blob`   BLOB-T bytes

Values are immutable and normalised on construction, so ``parse(serialize(x)) == x`` holds and equal
values always serialise to the same text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ..errors import EncodeError
from . import codes
from .blob import encode_blob_token
from .numbers import (
    MAX_INT_DIGITS,
    decimal_parts,
    encode_decimal,
    encode_float,
    encode_sint,
    encode_uint,
    float_bits,
    int_too_long,
)
from .radix import int_to_digits
from .symbols import (
    LITERAL_CLOSE,
    LITERAL_OPEN,
    NUMBER_MODE,
    PROFILE_DECIMAL_T,
    PROFILE_FLOAT_T,
    PROFILE_INT_S3,
    PROFILE_INT_U3,
    WORD_MODE,
)

_RESERVED_CLASS = "⊙⊗Φ⊛≛≗⧆⧈∷∴⦙⟦⟧◦◽"
_CONTROL_CLASS = "\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"  # and lone surrogates: not encodable as UTF-8
#: A word: at least one character, none of them whitespace, control or reserved.
WORD_RE = re.compile(f"[^\\s{_CONTROL_CLASS}{_RESERVED_CLASS}]+")
#: Characters a literal may not hold: line breaks and other control characters.
LITERAL_FORBIDDEN_RE = re.compile(f"[{_CONTROL_CLASS}]")


def forbidden_character(character: str) -> str:
    """Name a character words and literals may not hold (a control character, a lone surrogate)."""
    code_point = ord(character)
    what = "a lone surrogate" if 0xD800 <= code_point <= 0xDFFF else "the control character"
    return f"{what} U+{code_point:04X}"


@dataclass(frozen=True, slots=True)
class Text:
    """A string token: a word when possible, otherwise a literal."""

    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise EncodeError(codes.INVALID_ARGUMENT, f"Text needs a str, not {type(self.text).__name__}")
        bad = LITERAL_FORBIDDEN_RE.search(self.text)
        if bad:
            raise EncodeError(
                codes.INVALID_ARGUMENT,
                f"text {_preview(self.text)} holds {forbidden_character(bad.group())} at "
                f"index {bad.start()}; words and literals are single-line UTF-8 text",
                hint="store multi-line or binary text as BLOB-T (bytes); replace a lone surrogate with U+FFFD",
            )

    @property
    def is_word(self) -> bool:
        return WORD_RE.fullmatch(self.text) is not None

    def to_text(self) -> str:
        return text_token(self.text)


def text_token(text: str) -> str:
    """The canonical token for an already-checked string: a word when possible, otherwise a literal."""
    if WORD_RE.fullmatch(text):
        return WORD_MODE + text
    return WORD_MODE + LITERAL_OPEN + text.replace(LITERAL_CLOSE, LITERAL_CLOSE * 2) + LITERAL_CLOSE


@dataclass(frozen=True, slots=True)
class UInt:
    """INT-U3: a non-negative integer of any size (INT-U3-L when ``length_prefixed``)."""

    value: int
    length_prefixed: bool = False

    def __post_init__(self) -> None:
        _check_int(self.value, "INT-U3")
        if self.value < 0:
            raise EncodeError(
                codes.OUT_OF_RANGE,
                f"INT-U3 holds non-negative integers, not {self.value}",
                hint="use INT-S3 (SInt) for signed integers",
            )

    def __repr__(self) -> str:  # not the dataclass's: repr(int) refuses more than 4,300 digits
        prefixed = ", length_prefixed=True" if self.length_prefixed else ""
        return f"UInt({int_to_digits(self.value, 10)}{prefixed})"

    def to_text(self) -> str:
        return NUMBER_MODE + PROFILE_INT_U3 + encode_uint(self.value, length_prefixed=self.length_prefixed)


@dataclass(frozen=True, slots=True)
class SInt:
    """INT-S3: a signed integer of any size, sign-magnitude."""

    value: int

    def __post_init__(self) -> None:
        _check_int(self.value, "INT-S3")

    def __repr__(self) -> str:  # not the dataclass's: repr(int) refuses more than 4,300 digits
        return f"SInt({'-' if self.value < 0 else ''}{int_to_digits(abs(self.value), 10)})"

    def to_text(self) -> str:
        return NUMBER_MODE + PROFILE_INT_S3 + encode_sint(self.value)


@dataclass(frozen=True, slots=True, init=False)
class Dec:
    """DECIMAL-T: an exact decimal.  ``Dec("0.10") == Dec("0.1")``; −0 is 0."""

    negative: bool
    scale: int
    magnitude: int

    def __init__(self, value: Decimal | str | int) -> None:
        if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
            raise EncodeError(
                codes.INVALID_ARGUMENT,
                f"DECIMAL-T needs a Decimal, str or int, not {type(value).__name__}",
                hint="floats are inexact: pass Decimal(str(x)) or use FLOAT-T (Float)",
            )
        try:
            decimal = value if isinstance(value, Decimal) else Decimal(value)
            negative, scale, magnitude = decimal_parts(decimal)
        except InvalidOperation:
            # from None: the InvalidOperation adds nothing the message does not already say
            raise EncodeError(
                codes.INVALID_ARGUMENT,
                f"{value!r} is not a decimal number",
                hint="write it like 12.5, -0.001 or 1e-3",
            ) from None
        except ValueError as exc:
            # from None: the ValueError adds nothing the message does not already say
            raise EncodeError(codes.OUT_OF_RANGE, f"{value!r} cannot be a DECIMAL-T: {exc}") from None
        object.__setattr__(self, "negative", negative)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "magnitude", magnitude)

    @classmethod
    def from_parts(cls, negative: bool, scale: int, magnitude: int) -> Dec:
        """Build from a canonical (negative, scale, magnitude) triple without going through Decimal."""
        instance = object.__new__(cls)
        object.__setattr__(instance, "negative", negative and magnitude != 0)
        object.__setattr__(instance, "scale", scale if magnitude else 0)
        object.__setattr__(instance, "magnitude", magnitude)
        return instance

    @property
    def value(self) -> Decimal:
        digits = int_to_digits(self.magnitude, 10)  # not str(int): capped at 4300 digits, and quadratic
        return Decimal(f"{'-' if self.negative else ''}{digits}E-{self.scale}")

    def __str__(self) -> str:
        """Plain positional notation with the minimal number of decimals: ``-12.34``, ``7``, ``0.001``."""
        digits = int_to_digits(self.magnitude, 10)
        if self.scale:
            digits = digits.rjust(self.scale + 1, "0")
            digits = digits[: -self.scale] + "." + digits[-self.scale :]
        return ("-" if self.negative else "") + digits

    def __repr__(self) -> str:
        return f"Dec({str(self)!r})"

    def to_text(self) -> str:
        return NUMBER_MODE + PROFILE_DECIMAL_T + encode_decimal(self.negative, self.scale, self.magnitude)


@dataclass(frozen=True, slots=True, eq=False)
class Float:
    """FLOAT-T: a double, equal to another Float only when their bits are equal."""

    value: float

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, float | int):
            raise EncodeError(codes.INVALID_ARGUMENT, f"FLOAT-T needs a float, not {type(self.value).__name__}")
        if isinstance(self.value, int):
            try:
                object.__setattr__(self, "value", float(self.value))
            except OverflowError:
                # from None: the OverflowError adds nothing the message does not already say
                raise EncodeError(codes.OUT_OF_RANGE, "integer too large for a double") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Float) and float_bits(self.value) == float_bits(other.value)

    def __hash__(self) -> int:
        return hash(("Float", float_bits(self.value)))

    def to_text(self) -> str:
        return NUMBER_MODE + PROFILE_FLOAT_T + encode_float(self.value)


@dataclass(frozen=True, slots=True)
class Blob:
    """BLOB-T: arbitrary bytes."""

    data: bytes

    def __post_init__(self) -> None:
        data: object = self.data  # callers may pass bytearray or memoryview too
        if not isinstance(data, bytes | bytearray | memoryview):
            raise EncodeError(codes.INVALID_ARGUMENT, f"BLOB-T needs bytes, not {type(data).__name__}")
        if not isinstance(data, bytes):
            object.__setattr__(self, "data", bytes(data))

    def __repr__(self) -> str:
        return f"Blob({self.data[:32]!r}{'…' if len(self.data) > 32 else ''}, {len(self.data)} bytes)"

    def to_text(self) -> str:
        return encode_blob_token(self.data)


Token = Text | UInt | SInt | Dec | Float | Blob
TOKEN_TYPES = (Text, UInt, SInt, Dec, Float, Blob)


def to_token(value: object) -> Token:
    """The token for a plain Python value.

    str → Text, int ≥ 0 → INT-U3, int < 0 → INT-S3, Decimal → DECIMAL-T, float → FLOAT-T,
    bytes → BLOB-T.  Tokens pass through unchanged.  ``bool`` and ``None`` are refused: their meaning
    as numbers would be a guess.
    """
    if isinstance(value, TOKEN_TYPES):
        return value
    if isinstance(value, bool) or value is None:
        raise EncodeError(
            codes.INVALID_ARGUMENT,
            f"{value!r} has no ForgeNumerics-S encoding",
            hint="write booleans as words (Text('TRUE')) or integers (UInt(1)); omit absent fields",
        )
    if isinstance(value, str):
        return Text(value)
    if isinstance(value, int):
        return UInt(value) if value >= 0 else SInt(value)
    if isinstance(value, Decimal):
        return Dec(value)
    if isinstance(value, float):
        return Float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return Blob(bytes(value))
    raise EncodeError(
        codes.INVALID_ARGUMENT,
        f"values of type {type(value).__name__} have no ForgeNumerics-S encoding",
        hint="use str, int, Decimal, float or bytes",
    )


def _check_int(value: object, profile: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(
            codes.INVALID_ARGUMENT,
            f"{profile} needs an int, not {type(value).__name__} ({value!r})",
            hint="convert explicitly; a float such as 2.5 belongs in FLOAT-T or DECIMAL-T",
        )
    if int_too_long(value):
        raise EncodeError(
            codes.OUT_OF_RANGE,
            f"{profile} holds at most {MAX_INT_DIGITS:,} base-3 digits (about 100,000 decimal digits); "
            f"this value has {value.bit_length():,} bits",
            hint="ForgeNumerics-S numbers are for measurements and counts; store larger data as BLOB-T bytes",
        )


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
