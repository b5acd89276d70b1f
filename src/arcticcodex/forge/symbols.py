"""The ForgeNumerics-S alphabet and unbalanced base-3 digit strings.

The alphabet is the format's since its first version, unchanged.  Digits are unbalanced base 3, most significant first:
⊙ = 0, ⊗ = 1, Φ = 2.  Conversions divide and conquer (:mod:`.radix`), so integers up to the codec's
cap convert in sub-quadratic time and never hit CPython's limit on int/str conversion.
"""

from __future__ import annotations

import re
from itertools import product

from .radix import digits_to_int, int_to_digits

TRIT_0 = "⊙"  # U+2299
TRIT_1 = "⊗"  # U+2297
TRIT_2 = "Φ"  # U+03A6
BLOB_11 = "⊛"  # U+229B, the BLOB-T symbol for the bit pair 11
WORD_MODE = "≛"  # U+225B
NUMBER_MODE = "≗"  # U+2257
FRAME_START = "⧆"  # U+29C6
FRAME_END = "⧈"  # U+29C8
HEADER_PAYLOAD_SEP = "∷"  # U+2237
FIELD_SEP = "∴"  # U+2234
TOKEN_SEP = "⦙"  # U+2999
LITERAL_OPEN = "⟦"  # U+27E6
LITERAL_CLOSE = "⟧"  # U+27E7
CONTROL_START = "◦"  # U+25E6
CONTROL_END = "◽"  # U+25FD

TRITS = TRIT_0 + TRIT_1 + TRIT_2
ALPHABET = frozenset(
    TRITS
    + BLOB_11
    + WORD_MODE
    + NUMBER_MODE
    + FRAME_START
    + FRAME_END
    + HEADER_PAYLOAD_SEP
    + FIELD_SEP
    + TOKEN_SEP
    + LITERAL_OPEN
    + LITERAL_CLOSE
    + CONTROL_START
    + CONTROL_END
)
#: Symbols that end a token in the frame grammar.
DELIMITERS = frozenset(FIELD_SEP + TOKEN_SEP + HEADER_PAYLOAD_SEP + FRAME_END)

# Profile codes: the two trits after ≗.
PROFILE_INT_U3 = TRIT_0 + TRIT_0
PROFILE_INT_S3 = TRIT_0 + TRIT_1
PROFILE_FLOAT_T = TRIT_1 + TRIT_0
PROFILE_DECIMAL_T = TRIT_1 + TRIT_1
PROFILE_BLOB_T = TRIT_2 + TRIT_0

_TO_DIGIT = str.maketrans({TRIT_0: "0", TRIT_1: "1", TRIT_2: "2", **{d: "x" for d in "0123456789"}})
_FROM_DIGIT = str.maketrans({"0": TRIT_0, "1": TRIT_1, "2": TRIT_2})
_ASCII_TRITS = re.compile("[012]+")


def is_trits(text: str) -> bool:
    """True when ``text`` is a non-empty string of the three digit symbols."""
    return bool(text) and _ASCII_TRITS.fullmatch(text.translate(_TO_DIGIT)) is not None


def trits_to_int(digits: str) -> int:
    """Value of a non-empty string of trit symbols; the caller has checked it with :func:`is_trits`."""
    return digits_to_int(digits.translate(_TO_DIGIT), 3)


def int_to_trits(value: int) -> str:
    """Shortest trit string for ``value`` ≥ 0 (``⊙`` for zero, never a leading zero otherwise)."""
    if value < 0:
        raise ValueError("int_to_trits needs a non-negative integer")
    if value < _TABLE_LIMIT:
        return _TRIT_TABLE[value]
    return int_to_digits(value, 3).translate(_FROM_DIGIT)


_TABLE_LIMIT = 3**9  # indexes, counts, scales and short decimals: looked up, not computed
_TRIT_TABLE = [("".join(trits).lstrip("0") or "0").translate(_FROM_DIGIT) for trits in product("012", repeat=9)]
