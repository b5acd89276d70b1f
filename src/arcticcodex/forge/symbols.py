"""The ForgeNumerics-S alphabet and unbalanced base-3 digit strings.

The alphabet is the original's, unchanged.  Digits are unbalanced base 3, most significant first:
⊙ = 0, ⊗ = 1, Φ = 2.  Conversions work in chunks so that integers of any size convert in time close
to linear for realistic sizes and never hit CPython's limit on decimal-string conversion.
"""

from __future__ import annotations

import re

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
_CHUNK = 1000  # digits per int() call: well below CPython's 4300-digit conversion limit
_CHUNK_POWER = 3**_CHUNK


def is_trits(text: str) -> bool:
    """True when ``text`` is a non-empty string of the three digit symbols."""
    return bool(text) and _ASCII_TRITS.fullmatch(text.translate(_TO_DIGIT)) is not None


def trits_to_int(digits: str) -> int:
    """Value of a non-empty string of trit symbols; the caller has checked it with :func:`is_trits`."""
    ascii_digits = digits.translate(_TO_DIGIT)
    if len(ascii_digits) <= _CHUNK:
        return int(ascii_digits, 3)
    value = 0
    head = len(ascii_digits) % _CHUNK or _CHUNK
    value = int(ascii_digits[:head], 3)
    for start in range(head, len(ascii_digits), _CHUNK):
        value = value * _CHUNK_POWER + int(ascii_digits[start : start + _CHUNK], 3)
    return value


def int_to_trits(value: int) -> str:
    """Shortest trit string for ``value`` ≥ 0 (``⊙`` for zero, never a leading zero otherwise)."""
    if value < 0:
        raise ValueError("int_to_trits needs a non-negative integer")
    if value < _TABLE_LIMIT:
        return _TRIT_TABLE[value]
    chunks: list[str] = []
    while value:
        value, low = divmod(value, _SMALL_POWER)
        chunks.append(_small_to_ascii(low))
    ascii_digits = "".join(reversed(chunks)).lstrip("0")
    return ascii_digits.translate(_FROM_DIGIT)


_SMALL_WIDTH = 38  # 3**38 < 2**63, so each chunk is a machine-sized int
_SMALL_POWER = 3**_SMALL_WIDTH
_BYTE_TRITS = ["".join("012"[(n // 3**p) % 3] for p in range(6, -1, -1)) for n in range(3**7)]  # 7-trit groups


def _small_to_ascii(value: int) -> str:
    """``value`` < 3**38 as exactly 38 ASCII base-3 digits (leading zeros kept)."""
    groups = []
    for _ in range(6):  # 6 groups of 7 trits = 42 ≥ 38
        value, low = divmod(value, 3**7)
        groups.append(_BYTE_TRITS[low])
    return "".join(reversed(groups))[-_SMALL_WIDTH:]


_TABLE_LIMIT = 3**9  # indexes, counts, scales and short decimals: looked up, not computed
_TRIT_TABLE = [(_BYTE_TRITS[n // 3**7] + _BYTE_TRITS[n % 3**7]).lstrip("0") or "0" for n in range(_TABLE_LIMIT)]
_TRIT_TABLE = [digits.translate(_FROM_DIGIT) for digits in _TRIT_TABLE]
