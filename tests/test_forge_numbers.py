"""Known-answer tests for every numeric profile, derived from the format rules.

Digits are unbalanced base 3, most significant first (⊙ 0, ⊗ 1, Φ 2).  Expected strings are written
out by hand from the rules (e.g. 42 = 1·27 + 1·9 + 2·3 + 0 = 1120₃ → ⊗⊗Φ⊙); large values are checked
against a ten-line reference converter in this file, independent of the implementation.
"""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from arcticcodex.errors import EncodeError, ParseError
from arcticcodex.forge import Dec, Float, SInt, UInt, parse_token
from arcticcodex.forge.numbers import BodyError, shortest_ternary, ternary_to_float

DIGIT = "⊙⊗Φ"


def reference_trits(n: int) -> str:
    """Base-3 digits of n ≥ 0, written straight from the definition."""
    if n == 0:
        return "⊙"
    out = ""
    while n:
        n, r = divmod(n, 3)
        out = DIGIT[r] + out
    return out


@pytest.mark.parametrize(
    ("value", "token"),
    [
        (0, "≗⊙⊙⊙"),  # zero is a single ⊙
        (1, "≗⊙⊙⊗"),
        (2, "≗⊙⊙Φ"),
        (3, "≗⊙⊙⊗⊙"),  # 10₃
        (13, "≗⊙⊙⊗⊗⊗"),  # 111₃ = 9 + 3 + 1
        (14, "≗⊙⊙⊗⊗Φ"),  # 112₃
        (42, "≗⊙⊙⊗⊗Φ⊙"),  # 1120₃ = 27 + 9 + 6
        (75, "≗⊙⊙ΦΦ⊗⊙"),  # 2210₃ = 54 + 18 + 3; the spec's "75 = 2200₃" is wrong (2200₃ = 72)
        (72, "≗⊙⊙ΦΦ⊙⊙"),  # …which is this one
        (80, "≗⊙⊙ΦΦΦΦ"),  # 3⁴ − 1
        (81, "≗⊙⊙⊗⊙⊙⊙⊙"),  # 3⁴
        (255, "≗⊙⊙⊗⊙⊙⊗⊗⊙"),  # 100110₃ = 243 + 9 + 3
        (1000, "≗⊙⊙⊗⊗⊙⊗⊙⊙⊗"),  # 1101001₃ = 729 + 243 + 27 + 1
    ],
)
def test_int_u3_known_answers(value: int, token: str) -> None:
    assert UInt(value).to_text() == token
    assert parse_token(token) == UInt(value)


def test_spec_worked_example_for_75_is_wrong() -> None:
    assert parse_token("≗⊙⊙ΦΦ⊙⊙") == UInt(72)
    assert UInt(75).to_text() != "≗⊙⊙ΦΦ⊙⊙"


@pytest.mark.parametrize("value", [2**32, 2**64 - 1, 3**40, 10**30, 3**5000 - 1, 7**3000])
def test_int_u3_large_values_match_reference(value: int) -> None:
    token = "≗⊙⊙" + reference_trits(value)
    assert UInt(value).to_text() == token
    assert parse_token(token).value == value  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "token"),
    [
        (0, "≗⊙⊙◦⊗◽⊙"),  # one digit; the length 1 is itself ⊗
        (5, "≗⊙⊙◦Φ◽⊗Φ"),  # 12₃ has two digits: length Φ
        (42, "≗⊙⊙◦⊗⊗◽⊗⊗Φ⊙"),  # four digits: length 11₃
    ],
)
def test_int_u3_l_known_answers(value: int, token: str) -> None:
    assert UInt(value, length_prefixed=True).to_text() == token
    assert parse_token(token) == UInt(value, length_prefixed=True)


def test_int_u3_l_length_must_match() -> None:
    with pytest.raises(ParseError) as info:
        parse_token("≗⊙⊙◦Φ◽⊗Φ⊙")
    assert info.value.code == "PARSE_016"


@pytest.mark.parametrize(
    ("value", "token"),
    [
        (0, "≗⊙⊗◦⊙◽⊙"),
        (1, "≗⊙⊗◦⊙◽⊗"),
        (-1, "≗⊙⊗◦⊗◽⊗"),
        (-14, "≗⊙⊗◦⊗◽⊗⊗Φ"),  # the spec's example
        (42, "≗⊙⊗◦⊙◽⊗⊗Φ⊙"),
        (-42, "≗⊙⊗◦⊗◽⊗⊗Φ⊙"),
    ],
)
def test_int_s3_known_answers(value: int, token: str) -> None:
    assert SInt(value).to_text() == token
    assert parse_token(token) == SInt(value)


def test_int_s3_negative_zero_reads_as_zero_and_writes_as_plus_zero() -> None:
    assert parse_token("≗⊙⊗◦⊗◽⊙") == SInt(0)
    assert parse_token("≗⊙⊗◦⊗◽⊙").to_text() == "≗⊙⊗◦⊙◽⊙"


def test_int_s3_large() -> None:
    value = -(2**63)
    assert SInt(value).to_text() == "≗⊙⊗◦⊗◽" + reference_trits(2**63)


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("0", "≗⊗⊗⊙◦⊙◽⊙"),
        ("-12.34", "≗⊗⊗⊗◦Φ◽⊗Φ⊙⊙Φ⊙⊗"),  # scale 2, 1234 = 1200201₃
        ("3.14", "≗⊗⊗⊙◦Φ◽⊗⊙Φ⊗ΦΦ"),  # 314 = 102122₃
        ("0.001", "≗⊗⊗⊙◦⊗⊙◽⊗"),  # scale 3 = 10₃
        ("100.5", "≗⊗⊗⊙◦⊗◽⊗⊗⊙⊗⊙Φ⊙"),  # scale 1, 1005 = 1101020₃
        ("-7", "≗⊗⊗⊗◦⊙◽Φ⊗"),
        ("0.95", "≗⊗⊗⊙◦Φ◽⊗⊙⊗⊗Φ"),  # 95 = 10112₃
    ],
)
def test_decimal_t_known_answers(text: str, token: str) -> None:
    assert Dec(text).to_text() == token
    assert parse_token(token) == Dec(text)
    assert str(parse_token(token)) == text


@pytest.mark.parametrize(
    ("written", "canonical"),
    [("0.10", "0.1"), ("-0.0", "0"), ("1e5", "100000"), ("2.500", "2.5"), ("-0", "0"), ("1E-3", "0.001")],
)
def test_decimal_t_is_normalised(written: str, canonical: str) -> None:
    assert Dec(written) == Dec(canonical)
    assert Dec(written).to_text() == Dec(canonical).to_text()
    assert str(Dec(written)) == canonical


def test_decimal_t_non_minimal_scale_reads_and_canonicalises() -> None:
    non_canonical = "≗⊗⊗⊙◦Φ◽⊗⊙⊗"  # scale 2, 10 = 101₃ → 0.10
    assert parse_token(non_canonical) == Dec("0.1")
    assert parse_token(non_canonical).to_text() == "≗⊗⊗⊙◦⊗◽⊗"


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "abc", 1.5, True])
def test_decimal_t_refuses_non_decimals(bad: object) -> None:
    with pytest.raises(EncodeError):
        Dec(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "token"),
    [
        (1.0, "≗⊗⊙⊙◦⊙⊙◽⊗"),  # 1 × 3⁰
        (2.0, "≗⊗⊙⊙◦⊙⊙◽Φ"),  # 2 × 3⁰: the original could not encode this
        (3.0, "≗⊗⊙⊙◦⊙⊗◽⊗"),  # 1 × 3¹
        (4.0, "≗⊗⊙⊙◦⊙⊗◽⊗⊗"),  # 1.1₃ × 3¹
        (7.0, "≗⊗⊙⊙◦⊙⊗◽Φ⊗"),  # 2.1₃ × 3¹
        (-6.0, "≗⊗⊙⊗◦⊙⊗◽Φ"),  # −2 × 3¹
        (1 / 3, "≗⊗⊙⊙◦⊗⊗◽⊗"),  # 1 × 3⁻¹ (the double nearest 1/3 is written with one digit)
        (2 / 9, "≗⊗⊙⊙◦⊗Φ◽Φ"),
        (0.0, "≗⊗⊙⊙◦⊙⊙◽⊙"),  # zero: the original had no encoding
        (-0.0, "≗⊗⊙⊗◦⊙⊙◽⊙"),
        (math.inf, "≗⊗⊙⊙◦Φ◽⊙"),  # special exponent Φ, fraction 0
        (-math.inf, "≗⊗⊙⊗◦Φ◽⊙"),
        (math.nan, "≗⊗⊙⊙◦Φ◽" + reference_trits(1 << 51)),  # the quiet NaN's fraction field
    ],
)
def test_float_t_known_answers(value: float, token: str) -> None:
    assert Float(value).to_text() == token
    assert parse_token(token) == Float(value)


@pytest.mark.parametrize(
    "value", [0.1, -2.5, 7.5, 1e-7, 12345.678, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308]
)
def test_float_t_values_the_original_could_not_write_round_trip_with_the_shortest_mantissa(
    value: float,
) -> None:
    token = Float(value).to_text()
    assert " " not in token and "∷" not in token
    assert parse_token(token) == Float(value)
    digits, exponent = shortest_ternary(abs(value))
    length = len(reference_trits(digits))
    # one digit fewer cannot round back to the same double: the nearest two candidates both miss
    scale = exponent - (length - 1) + 1
    base = abs(value) / 3.0**scale if scale > -600 else None
    if length > 1 and base is not None and math.isfinite(base):
        for candidate in (math.floor(base), math.floor(base) + 1):
            try:
                shorter = ternary_to_float(candidate, scale)
            except BodyError:  # out of the range of a double: certainly not the value
                continue
            assert candidate == 0 or shorter != abs(value)


def test_float_t_nan_payload_and_sign_survive() -> None:
    import struct

    bits = 0xFFF4_0000_0000_0ABC  # negative signalling-style NaN with a payload
    value = struct.unpack(">d", bits.to_bytes(8, "big"))[0]
    back = parse_token(Float(value).to_text())
    assert isinstance(back, Float)
    assert struct.pack(">d", back.value) == bits.to_bytes(8, "big")


def test_float_t_non_canonical_mantissa_reads_to_the_same_double() -> None:
    # 1.0 written with a leading zero and trailing zeros: ⊙⊗⊙⊙ × 3^(1−3) → 1·3⁰
    assert parse_token("≗⊗⊙⊙◦⊙⊗◽⊙⊗⊙⊙") == Float(1.0)
    assert parse_token("≗⊗⊙⊙◦⊙⊗◽⊙⊗⊙⊙").to_text() == "≗⊗⊙⊙◦⊙⊙◽⊗"


def test_float_t_out_of_range_is_an_error_not_a_hang() -> None:
    with pytest.raises(ParseError) as info:
        parse_token("≗⊗⊙⊙◦⊙" + "Φ" * 40 + "◽⊗")
    assert info.value.code == "PARSE_016"


@pytest.mark.parametrize(
    ("data", "token"),
    [
        (b"", "≗Φ⊙"),
        (b"\x00", "≗Φ⊙⊙⊙⊙⊙"),
        (b"\xff", "≗Φ⊙⊛⊛⊛⊛"),  # 11 11 11 11
        (b"A", "≗Φ⊙⊗⊙⊙⊗"),  # 0x41 = 01 00 00 01
        (b"\x1b", "≗Φ⊙⊙⊗Φ⊛"),  # 00 01 10 11
        (b"hi", "≗Φ⊙⊗ΦΦ⊙⊗ΦΦ⊗"),  # 0x68 = 01 10 10 00, 0x69 = 01 10 10 01
        ("é".encode(), "≗Φ⊙⊛⊙⊙⊛ΦΦΦ⊗"),  # c3 a9
    ],
)
def test_blob_t_known_answers(data: bytes, token: str) -> None:
    from arcticcodex.forge import Blob

    assert Blob(data).to_text() == token
    assert parse_token(token) == Blob(data)


def test_blob_t_large_uses_the_same_table() -> None:
    from arcticcodex.forge import Blob

    data = bytes(range(256)) * 40
    expected = "".join("".join("⊙⊗Φ⊛"[(byte >> shift) & 3] for shift in (6, 4, 2, 0)) for byte in data)
    assert Blob(data).to_text() == "≗Φ⊙" + expected
    assert parse_token("≗Φ⊙" + expected) == Blob(data)


@pytest.mark.parametrize(
    ("token", "code", "column"),
    [
        ("≗Φ⊙⊗⊙⊙⊗⊗", "PARSE_011", 8),  # 5 symbols: not a multiple of 4
        ("≗Φ⊙⊗⊙x⊗", "PARSE_006", 6),  # unknown symbol: the original decoded it as 00
        ("≗Φ⊙" + "⊗⊙⊙⊗" * 100 + "⊗⊙⊙◦", "PARSE_006", 407),  # vectorised path reports the spot too
        ("≗⊙⊗◦Φ◽⊗", "PARSE_012", 5),  # reserved sign trit: the original read it as negative
        ("≗⊗⊗Φ◦⊗◽⊗", "PARSE_012", 4),
        ("≗⊙⊙", "PARSE_016", 4),  # empty INT-U3: the original read 0
        ("≗⊙⊗◦⊙◽", "PARSE_016", 7),
        ("≗⊙⊙⊗Ψ", "PARSE_006", 5),
        ("≗ΦΦ⊗", "PARSE_005", 2),  # unassigned profile
        ("≗⊙⊗◦⊙⊗", "PARSE_016", 6),  # no ◽
        ("≗⊗⊗⊙Φ◽⊗", "PARSE_016", 5),  # DECIMAL-T without ◦
        ("≗⊗⊗⊙◦Φ⊗⊗", "PARSE_016", 9),  # DECIMAL-T without ◽
    ],
)
def test_numeric_errors_are_located(token: str, code: str, column: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_token(token)
    assert info.value.code == code
    assert info.value.line == 1
    assert info.value.column == column
    assert info.value.hint or info.value.context


@pytest.mark.parametrize("value", [-5, 2.5, True, "3"])
def test_int_u3_refuses_what_it_cannot_hold(value: object) -> None:
    with pytest.raises(EncodeError) as info:
        UInt(value)  # type: ignore[arg-type]
    assert info.value.code in ("ENCODE_001", "ENCODE_002")


def test_decimal_value_and_str_agree() -> None:
    assert Dec("-0.05").value == Decimal("-0.05")
    assert str(Dec(Decimal("1.2300"))) == "1.23"


@pytest.mark.parametrize("size", [63, 64, 65, 4095, 4096 + 3, (1 << 18) + 5, (1 << 20) + 1])
def test_blob_t_sizes_across_the_small_chunked_and_large_paths(size: int) -> None:
    from arcticcodex.forge import Blob, Frame, parse_frame

    data = bytes((i * 7919) % 256 for i in range(size))
    token = Blob(data).to_text()
    assert len(token) == 3 + 4 * size
    assert parse_token(token) == Blob(data)
    frame = Frame({"TYPE": "X"}, [data, 1, data])  # runs ending at ⦙ and ⧈ inside a frame
    assert parse_frame(frame.to_text()) == frame
    spaced = "⧆≛TYPE⦙≛X∷" + token + " \n ⦙ " + token + "\t⧈"  # whitespace ends a run too
    assert parse_frame(spaced).payload == (Blob(data), Blob(data))


@pytest.mark.parametrize("bad_at", [0, 4095, 4096, 5000, 70_000, (1 << 18) + 17])
def test_blob_t_bad_symbol_is_located_on_the_chunked_path(bad_at: int) -> None:
    body = list("⊗⊙⊙⊗" * 80_000)
    body[bad_at] = "x"
    with pytest.raises(ParseError) as info:
        parse_token("≗Φ⊙" + "".join(body))
    assert info.value.code == "PARSE_006"
    assert info.value.column == 4 + bad_at


@pytest.mark.parametrize("length", [4097, 16_385, 300_001])
def test_blob_t_partial_byte_is_an_error_on_the_chunked_path(length: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_token("≗Φ⊙" + ("⊗⊙⊙⊗" * 80_000)[:length])
    assert info.value.code == "PARSE_011"


def test_blob_t_astral_character_ends_the_run() -> None:
    with pytest.raises(ParseError) as info:
        parse_token("≗Φ⊙" + "⊗⊙⊙⊗" * 2000 + "🦊" + "⊗⊙⊙⊗")
    assert (info.value.code, info.value.column) == ("PARSE_006", 4 + 8000)


def test_spec_float_example_is_wrong_too() -> None:
    """The spec writes 7.5 as 2.1₃ × 3¹; but 2.1₃ × 3 = 21₃ = 7.  7.5 = 21.111…₃ has no finite form."""
    assert parse_token("≗⊗⊙⊙◦⊙⊗◽Φ⊗") == Float(7.0)
    assert parse_token(Float(7.5).to_text()) == Float(7.5)
    assert len(Float(7.5).to_text()) > len(Float(7.0).to_text())
