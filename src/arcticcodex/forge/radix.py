"""Integers to and from digit strings in base 3 or 10, in sub-quadratic time and without Python's cap.

Why this exists: CPython 3.11 converts between ``int`` and decimal text in quadratic time and refuses
more than 4,300 digits (``sys.get_int_max_str_digits``), and it has no base-3 conversion at all.  A
chunked loop (divide by 3³⁸ again and again) is quadratic too: a 200,000-digit INT-U3 took seconds.
Both directions here divide and conquer, as CPython 3.12's own ``_pylong`` does for decimal:

* **digits → int**: split the digit string where the lower part has ``LEAF·2^k`` digits, convert
  both halves, and combine them as ``high · base^(LEAF·2^k) + low``.  CPython multiplies large ints
  with Karatsuba (O(n^1.58)), so the whole conversion is O(n^1.58).
* **int → digits**: divide by ``base^(LEAF·2^k)`` (half the digits), convert quotient and remainder,
  and pad the remainder with zeros.  CPython 3.11's ``divmod`` is schoolbook (quadratic), so the
  division is the recursive one of Burnikel and Ziegler (1998), built on Karatsuba multiplication.

The powers ``base^(LEAF·2^k)`` are computed once by repeated squaring and kept, so a conversion only
multiplies and divides.  Leaves (at most ``LEAF`` = 512 digits) use ``int(text, base)`` and ``str`` —
below 640, the lowest limit ``sys.set_int_max_str_digits`` accepts, so no setting can break them.
Callers bound the size (the codec caps numbers at ``numbers.MAX_INT_DIGITS``); nothing here does.
"""

from __future__ import annotations

import math
import threading

LEAF = 512  # digits per leaf: small enough for int()/str() under any int_max_str_digits setting
_DIVISION_LEAF_BITS = 4000  # below this many quotient bits CPython's own divmod is faster
_SMALL_WIDTH = 38  # 3**38 < 2**63: one machine-sized chunk of a base-3 leaf
_SMALL_POWER = 3**_SMALL_WIDTH
_GROUP = 3**7
_GROUP_TRITS = ["".join("012"[(n // 3**p) % 3] for p in range(6, -1, -1)) for n in range(_GROUP)]
_powers: dict[int, list[int]] = {}
_powers_lock = threading.Lock()


def digits_to_int(digits: str, base: int) -> int:
    """The value of ``digits`` (ASCII digits of ``base``, 3 or 10, no sign), however long."""
    if len(digits) <= LEAF:
        return int(digits, base)
    powers = _powers_up_to(base, _level(len(digits)))

    def value(start: int, end: int) -> int:
        width = end - start
        if width <= LEAF:
            return int(digits[start:end], base)
        level = _level(width) - 1
        middle = end - (LEAF << level)  # the low part is exactly LEAF·2^level digits
        return value(start, middle) * powers[level] + value(middle, end)

    return value(0, len(digits))


def int_to_digits(value: int, base: int) -> str:
    """The ASCII digits of ``value`` ≥ 0 in ``base`` (3 or 10): no leading zeros, ``"0"`` for zero."""
    if value < 0:
        raise ValueError("int_to_digits needs a non-negative integer")
    upper_bound = math.floor(value.bit_length() / math.log2(base)) + 1  # digits needed, at most
    if upper_bound <= LEAF:
        return _leaf(value, base, 0).lstrip("0") or "0"
    top = _level(upper_bound)
    powers = _powers_up_to(base, top)

    def text(number: int, level: int) -> str:
        """Exactly LEAF·2^level digits of ``number`` < base^(LEAF·2^level), zero-padded."""
        if number == 0:
            return "0" * (LEAF << level)
        if level == 0:
            return _leaf(number, base, LEAF)
        divisor = powers[level - 1]
        high, low = divide(number, divisor)
        return text(high, level - 1) + text(low, level - 1)

    return text(value, top).lstrip("0") or "0"


def divide(dividend: int, divisor: int) -> tuple[int, int]:
    """``divmod(dividend, divisor)`` for ``0 ≤ dividend < divisor²``, in sub-quadratic time."""
    bits = divisor.bit_length()
    return _divide_2n_by_n(dividend, divisor, bits)


def _level(width: int) -> int:
    """The smallest k with LEAF·2^k ≥ width."""
    level = 0
    while LEAF << level < width:
        level += 1
    return level


def _powers_up_to(base: int, level: int) -> list[int]:
    """[base^LEAF, base^(2·LEAF), base^(4·LEAF), …] with at least ``level`` entries, built once."""
    with _powers_lock:
        powers = _powers.setdefault(base, [base**LEAF])
        while len(powers) < level:
            powers.append(powers[-1] * powers[-1])
        return powers


def _leaf(value: int, base: int, width: int) -> str:
    """``value`` < base^LEAF as ASCII digits, zero-padded to ``width``."""
    if base == 10:
        return str(value).zfill(width)
    chunks: list[str] = []
    while value:
        value, low = divmod(value, _SMALL_POWER)
        groups = []
        for _ in range(6):  # 6 groups of 7 trits = 42 ≥ 38
            low, group = divmod(low, _GROUP)
            groups.append(_GROUP_TRITS[group])
        chunks.append("".join(reversed(groups))[-_SMALL_WIDTH:])
    return "".join(reversed(chunks)).lstrip("0").zfill(width)


def _divide_2n_by_n(dividend: int, divisor: int, bits: int) -> tuple[int, int]:
    """Burnikel–Ziegler: divmod of ``dividend`` < 2^bits·divisor by a divisor of exactly ``bits`` bits.

    The dividend is split into halves of the divisor's size; each half-step divides a 3-part number by a
    2-part one, which recurses on half the size and corrects the estimate with one multiplication.
    """
    if dividend.bit_length() - bits <= _DIVISION_LEAF_BITS:
        return divmod(dividend, divisor)
    odd = bits & 1
    if odd:  # make the size even, so it halves exactly
        dividend, divisor, bits = dividend << 1, divisor << 1, bits + 1
    half = bits >> 1
    mask = (1 << half) - 1
    divisor_high, divisor_low = divisor >> half, divisor & mask
    quotient_high, remainder = _divide_3_by_2(
        dividend >> bits, (dividend >> half) & mask, divisor, divisor_high, divisor_low, half
    )
    quotient_low, remainder = _divide_3_by_2(remainder, dividend & mask, divisor, divisor_high, divisor_low, half)
    if odd:
        remainder >>= 1
    return quotient_high << half | quotient_low, remainder


def _divide_3_by_2(
    top: int, bottom: int, divisor: int, divisor_high: int, divisor_low: int, half: int
) -> tuple[int, int]:
    """One half-step of :func:`_divide_2n_by_n`: (top·2^half + bottom) divided by ``divisor``."""
    if top >> half == divisor_high:
        quotient, remainder = (1 << half) - 1, top - (divisor_high << half) + divisor_high
    else:
        quotient, remainder = _divide_2n_by_n(top, divisor_high, half)
    remainder = (remainder << half | bottom) - quotient * divisor_low
    while remainder < 0:  # the estimate is at most 2 too large
        quotient -= 1
        remainder += divisor
    return quotient, remainder
