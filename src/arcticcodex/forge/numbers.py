"""Numeric profiles: INT-U3, INT-U3-L, INT-S3, DECIMAL-T and FLOAT-T bodies.

A numeric token is ``≗`` + two profile trits + a body.  This module turns values into canonical
bodies and bodies back into values.  Decoders are strict and report problems as :class:`BodyError`
with an offset relative to the body, which the scanner turns into a located ``ParseError``.

Layouts (``S`` is a sign trit: ⊙ plus, ⊗ minus; Φ is reserved there and rejected):

* INT-U3     ``≗⊙⊙ D``                 D = base-3 digits, ``⊙`` for zero
* INT-U3-L   ``≗⊙⊙ ◦ L ◽ D``           L = number of digits in D, itself in base 3
* INT-S3     ``≗⊙⊗ ◦ S ◽ D``           sign-magnitude; −0 is written +0
* DECIMAL-T  ``≗⊗⊗ S ◦ C ◽ D``         value = ±D·10^−C, C minimal (``0.10`` is ``0.1``), −0 is +0
* FLOAT-T    ``≗⊗⊙ S ◦ X ◽ M``         see below

FLOAT-T, as ArcticCodex defines it (the leading digit is written out, so 0, 0.1, 2.0 and −2.5 have a
form, and no ``∷`` appears inside the token, where a parser would take it for the end of a header):

* finite values: ``X`` = exponent sign trit (⊙ for ≥ 0, ⊗ for < 0) + base-3 magnitude of E;
  ``M`` = mantissa digits m₀m₁…mₙ₋₁ with the leading digit written out.  Value =
  ±(m₀.m₁…mₙ₋₁)₃ × 3^E, i.e. ±int(M)·3^(E−n+1), rounded to the nearest double (ties to even).
  The encoder writes the *shortest* M whose value rounds back to the same double, so m₀ ∈ {⊗, Φ} and
  M has no trailing ⊙.  Zero is ``X = ⊙⊙``, ``M = ⊙``; the sign trit tells +0 from −0.
* special values: ``X = Φ`` (the reserved trit marks "exponent all ones" as in IEEE 754) and ``M`` =
  the 52-bit fraction field: 0 is infinity, anything else is a NaN with that payload.  So every
  double, NaN payloads included, round-trips bit for bit.

Examples: 1.0 → ``≗⊗⊙⊙◦⊙⊙◽⊗``, 2.0 → ``≗⊗⊙⊙◦⊙⊙◽Φ``, 1/3 → ``≗⊗⊙⊙◦⊗⊗◽⊗`` (1 × 3⁻¹),
−0.0 → ``≗⊗⊙⊗◦⊙⊙◽⊙``, inf → ``≗⊗⊙⊙◦Φ◽⊙``.  Values that are not finite ternary fractions (0.1,
7.5 = 21.111…₃) get the shortest digit string that rounds back to the same double (34 digits here).
"""

from __future__ import annotations

import functools
import math
import struct
from decimal import Decimal

from . import codes
from .radix import digits_to_int
from .symbols import (
    CONTROL_END,
    CONTROL_START,
    TRIT_0,
    TRIT_1,
    TRIT_2,
    int_to_trits,
    is_trits,
    trits_to_int,
)

MAX_DECIMAL_DIGITS = 100_000  # |D| of a DECIMAL-T; beyond this a value is refused, not slowly built
#: Base-3 digits in any one digit run (an INT-U3/INT-S3 magnitude, a DECIMAL-T's D, a FLOAT-T mantissa):
#: 3**210,000 has 100,196 decimal digits, so integers reach as far as DECIMAL-T does and no further.
MAX_INT_DIGITS = 210_000
_CAP_HINT = "ForgeNumerics-S numbers are for measurements and counts; store larger data as BLOB-T bytes"
_FLOAT_K_LIMIT = 1200  # |E − n + 1| beyond which no finite double can result (3**1200 ≫ 2**1024)


class BodyError(Exception):
    """A malformed numeric body: code, message, offset relative to the body, hint.

    Internal to the codec: the scanner turns it into a located ParseError.
    """

    def __init__(self, code: str, message: str, offset: int = 0, hint: str = "") -> None:
        super().__init__(code, message, offset, hint)
        self.code = code
        self.message = message
        self.offset = offset
        self.hint = hint


# --- shared pieces -------------------------------------------------------------------------------


def _digits(body: str, start: int, end: int, what: str) -> int:
    if end - start > MAX_INT_DIGITS:  # refused before any conversion work is spent on it
        raise BodyError(
            codes.NUMBER_TOO_LONG,
            f"{what} has {end - start:,} digits; a ForgeNumerics-S number has at most {MAX_INT_DIGITS:,} "
            "base-3 digits (about 100,000 decimal digits)",
            start + MAX_INT_DIGITS,
            _CAP_HINT,
        )
    part = body[start:end]
    if not part:
        raise BodyError(codes.MALFORMED_NUMBER, f"{what} has no digits", start, "write at least ⊙ (zero)")
    if not is_trits(part):
        bad = next(i for i, ch in enumerate(part) if ch not in (TRIT_0 + TRIT_1 + TRIT_2))
        ch = part[bad]
        raise BodyError(
            codes.INVALID_TRIT_SEQUENCE,
            f"{what} holds {ch!r} (U+{ord(ch):04X}), which is not a base-3 digit",
            start + bad,
            "digits are ⊙ (0), ⊗ (1) and Φ (2)",
        )
    return trits_to_int(part)


def _sign(body: str, index: int, what: str) -> bool:
    """Read a sign trit; return True for negative."""
    if index >= len(body):
        raise BodyError(codes.MALFORMED_NUMBER, f"{what} is missing its sign trit", index)
    ch = body[index]
    if ch == TRIT_0:
        return False
    if ch == TRIT_1:
        return True
    raise BodyError(
        codes.RESERVED_SIGN,
        f"{what} has sign {ch!r}; a sign is ⊙ (plus) or ⊗ (minus)",
        index,
        "Φ is reserved in sign position" if ch == TRIT_2 else "",
    )


def _expect(body: str, index: int, symbol: str, what: str) -> None:
    if index >= len(body) or body[index] != symbol:
        found = repr(body[index]) if index < len(body) else "the end of the token"
        raise BodyError(codes.MALFORMED_NUMBER, f"{what}: expected {symbol} but found {found}", index)


def _find(body: str, symbol: str, start: int, what: str) -> int:
    index = body.find(symbol, start)
    if index < 0:
        raise BodyError(codes.MALFORMED_NUMBER, f"{what} is missing its {symbol} separator", len(body))
    return index


def int_too_long(value: int) -> bool:
    """True when ``value`` needs more than :data:`MAX_INT_DIGITS` base-3 digits (checked without converting)."""
    bits = value.bit_length()
    if bits <= _CAP_BITS_BELOW:
        return False
    return bits > _CAP_BITS_ABOVE or abs(value) >= _cap_power()


_CAP_BITS_BELOW = int(MAX_INT_DIGITS * math.log2(3))  # 2**this < 3**MAX_INT_DIGITS
_CAP_BITS_ABOVE = _CAP_BITS_BELOW + 2  # 2**(this - 1) > 3**MAX_INT_DIGITS


@functools.cache
def _cap_power() -> int:
    return int(3**MAX_INT_DIGITS)


# --- INT-U3 / INT-U3-L ---------------------------------------------------------------------------


def encode_uint(value: int, *, length_prefixed: bool = False) -> str:
    digits = int_to_trits(value)
    if length_prefixed:
        return CONTROL_START + int_to_trits(len(digits)) + CONTROL_END + digits
    return digits


def decode_uint(body: str) -> tuple[int, bool]:
    """Return (value, length_prefixed)."""
    if body.startswith(CONTROL_START):
        end = _find(body, CONTROL_END, 1, "INT-U3-L length")
        length = _digits(body, 1, end, "INT-U3-L length")
        digits = body[end + 1 :]
        value = _digits(body, end + 1, len(body), "INT-U3-L value")
        if length != len(digits):
            raise BodyError(
                codes.MALFORMED_NUMBER,
                f"INT-U3-L says {length} digits but {len(digits)} follow",
                1,
                "the length field counts the digits after ◽",
            )
        return value, True
    return _digits(body, 0, len(body), "INT-U3"), False


# --- INT-S3 --------------------------------------------------------------------------------------


def encode_sint(value: int) -> str:
    sign = TRIT_1 if value < 0 else TRIT_0
    return CONTROL_START + sign + CONTROL_END + int_to_trits(abs(value))


def decode_sint(body: str) -> int:
    _expect(body, 0, CONTROL_START, "INT-S3")
    negative = _sign(body, 1, "INT-S3")
    _expect(body, 2, CONTROL_END, "INT-S3")
    magnitude = _digits(body, 3, len(body), "INT-S3 magnitude")
    return -magnitude if negative else magnitude


# --- DECIMAL-T -----------------------------------------------------------------------------------


def decimal_parts(value: Decimal) -> tuple[bool, int, int]:
    """(negative, scale, magnitude) with minimal scale and no negative zero.

    Raises ValueError for NaN, infinities and values whose digits would exceed MAX_DECIMAL_DIGITS.
    """
    if not value.is_finite():
        raise ValueError(f"DECIMAL-T holds finite values only, not {value}")
    sign, digit_tuple, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # pragma: no cover - finite decimals always have one
        raise ValueError(f"DECIMAL-T cannot hold {value}")
    if len(digit_tuple) + max(exponent, 0) > MAX_DECIMAL_DIGITS or -exponent > MAX_DECIMAL_DIGITS:
        raise ValueError(f"DECIMAL-T values have at most {MAX_DECIMAL_DIGITS} digits and decimals")
    magnitude = digits_to_int("".join(map(str, digit_tuple)), 10)  # not int(str): capped at 4300 digits
    if exponent >= 0:
        magnitude *= 10**exponent
        scale = 0
    else:
        scale = -exponent
        # strip trailing zeros of the fraction: 0.10 → 0.1
        while scale and magnitude % 10 == 0:
            magnitude //= 10
            scale -= 1
    if magnitude == 0:
        return False, 0, 0
    return bool(sign), scale, magnitude


def encode_decimal(negative: bool, scale: int, magnitude: int) -> str:
    sign = TRIT_1 if negative else TRIT_0
    return sign + CONTROL_START + int_to_trits(scale) + CONTROL_END + int_to_trits(magnitude)


def decode_decimal(body: str) -> tuple[bool, int, int]:
    """Return the canonical (negative, scale, magnitude) of a DECIMAL-T body."""
    negative = _sign(body, 0, "DECIMAL-T")
    _expect(body, 1, CONTROL_START, "DECIMAL-T")
    end = _find(body, CONTROL_END, 2, "DECIMAL-T scale")
    scale = _digits(body, 2, end, "DECIMAL-T scale")
    magnitude = _digits(body, end + 1, len(body), "DECIMAL-T value")
    if magnitude == 0:
        return False, 0, 0
    if scale > MAX_DECIMAL_DIGITS or magnitude.bit_length() > MAX_DECIMAL_DIGITS * 3.33:
        raise BodyError(
            codes.MALFORMED_NUMBER, f"DECIMAL-T values have at most {MAX_DECIMAL_DIGITS} digits and decimals", 2
        )
    while scale and magnitude % 10 == 0:
        magnitude //= 10
        scale -= 1
    return negative, scale, magnitude


# --- FLOAT-T -------------------------------------------------------------------------------------

_SPECIAL = TRIT_2
_FRACTION_BITS = 52
_EXPONENT_MASK = 0x7FF << _FRACTION_BITS
_FRACTION_MASK = (1 << _FRACTION_BITS) - 1


def float_bits(value: float) -> int:
    return int.from_bytes(struct.pack(">d", value), "big")


def float_from_bits(bits: int) -> float:
    return float(struct.unpack(">d", bits.to_bytes(8, "big"))[0])


def encode_float(value: float) -> str:
    bits = float_bits(value)
    sign = TRIT_1 if bits >> 63 else TRIT_0
    if bits & _EXPONENT_MASK == _EXPONENT_MASK:  # inf or NaN
        return sign + CONTROL_START + _SPECIAL + CONTROL_END + int_to_trits(bits & _FRACTION_MASK)
    if value == 0:
        return sign + CONTROL_START + TRIT_0 + TRIT_0 + CONTROL_END + TRIT_0
    mantissa, exponent = shortest_ternary(abs(value))
    digits = int_to_trits(mantissa)
    exp_sign = TRIT_1 if exponent < 0 else TRIT_0
    return sign + CONTROL_START + exp_sign + int_to_trits(abs(exponent)) + CONTROL_END + digits


def decode_float(body: str) -> float:
    negative = _sign(body, 0, "FLOAT-T")
    _expect(body, 1, CONTROL_START, "FLOAT-T")
    end = _find(body, CONTROL_END, 2, "FLOAT-T exponent")
    if body[2:end] == _SPECIAL:
        fraction = _digits(body, end + 1, len(body), "FLOAT-T special payload")
        if fraction > _FRACTION_MASK:
            raise BodyError(codes.MALFORMED_NUMBER, "FLOAT-T NaN payload exceeds 52 bits", end + 1)
        return float_from_bits((negative << 63) | _EXPONENT_MASK | fraction)
    exp_negative = _sign(body, 2, "FLOAT-T exponent")
    magnitude_text = body[3:end]
    if len(magnitude_text) > 12:  # 3**12 > 500,000: no double is that far out
        raise BodyError(codes.MALFORMED_NUMBER, "FLOAT-T exponent is out of the range of a double", 3)
    exponent = _digits(body, 3, end, "FLOAT-T exponent")
    exponent = -exponent if exp_negative else exponent
    mantissa_text = body[end + 1 :]
    mantissa = _digits(body, end + 1, len(body), "FLOAT-T mantissa")
    scale = exponent - len(mantissa_text) + 1
    value = ternary_to_float(mantissa, scale, offset=end + 1)
    return -value if negative else value


def ternary_to_float(mantissa: int, scale: int, *, offset: int = 0) -> float:
    """The double nearest to mantissa·3^scale (ties to even); BodyError when it is out of range."""
    if mantissa == 0:
        return 0.0
    top = scale + mantissa.bit_length() * 0.631  # log3(2) ≈ 0.631: an upper bound of log3(value)
    if top < -800:  # below half the smallest subnormal: rounds to zero
        return 0.0
    if abs(scale) > _FLOAT_K_LIMIT + mantissa.bit_length():
        raise BodyError(codes.MALFORMED_NUMBER, "FLOAT-T value is out of the range of a double", offset)
    try:
        if scale >= 0:
            return float(mantissa * 3**scale)
        divisor: int = 3**-scale
        return mantissa / divisor  # int/int true division is correctly rounded in CPython
    except OverflowError:
        # from None: the OverflowError adds nothing the message does not already say
        raise BodyError(codes.MALFORMED_NUMBER, "FLOAT-T value is out of the range of a double", offset) from None


def shortest_ternary(value: float) -> tuple[int, int]:
    """(D, E) such that D's n digits read as d₀.d₁…×3^E round back to ``value`` (> 0), n minimal.

    Tries n = 1, 2, … digits; at each length the two candidates around ``value`` are the only ones
    that can round back to it, and the nearer one is preferred.  Doubles need at most 35 digits.
    """
    num, den = value.as_integer_ratio()
    exponent = math.floor(math.log(value, 3))
    while _cmp_pow3(num, den, exponent) < 0:  # value < 3**exponent
        exponent -= 1
    while _cmp_pow3(num, den, exponent + 1) >= 0:  # value ≥ 3**(exponent+1)
        exponent += 1
    for length in range(1, 40):
        scale = exponent - length + 1
        if scale >= 0:
            low, remainder = divmod(num, den * 3**scale)
            twice_gap, unit = 2 * remainder, den * 3**scale
        else:
            low, remainder = divmod(num * 3**-scale, den)
            twice_gap, unit = 2 * remainder, den
        upper_nearer = twice_gap > unit or (twice_gap == unit and low % 2 == 1)
        candidates = (low + 1, low) if upper_nearer else (low, low + 1)
        for candidate in candidates:
            if candidate and _rounds_to(candidate, scale, value):
                while candidate % 3 == 0:
                    candidate //= 3
                    scale += 1
                return candidate, scale + len(int_to_trits(candidate)) - 1
    raise AssertionError(f"no ternary form found for {value!r}")  # pragma: no cover - unreachable


def _rounds_to(mantissa: int, scale: int, value: float) -> bool:
    try:
        return ternary_to_float(mantissa, scale) == value
    except BodyError:
        return False


def _cmp_pow3(num: int, den: int, exponent: int) -> int:
    """Sign of num/den − 3**exponent."""
    left, right = (num, den * 3**exponent) if exponent >= 0 else (num * 3**-exponent, den)
    return (left > right) - (left < right)
