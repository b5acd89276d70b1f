"""Codec bounds: huge integers convert correctly up to the cap and are refused past it; lone surrogates
never escape as UnicodeEncodeError.

The conversions are checked against simple chunked algorithms written here (Horner's rule and repeated
division, quadratic but obviously right), at small sizes and at sizes near the cap.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arcticcodex.errors import EncodeError, ParseError
from arcticcodex.forge import Blob, Frame, SInt, Text, UInt, parse_document, parse_frame, parse_token
from arcticcodex.forge.blob import decode_blob
from arcticcodex.forge.frame import JSON_INT_DIGITS, item_from_json, token_to_json
from arcticcodex.forge.legacy import read_legacy
from arcticcodex.forge.numbers import MAX_INT_DIGITS, BodyError
from arcticcodex.forge.radix import LEAF, digits_to_int, int_to_digits
from arcticcodex.forge.record_frames import EvidenceRef, TrainPairFrame, fact_frame, summary_frame
from arcticcodex.forge.symbols import int_to_trits, trits_to_int

TRITS = str.maketrans("012", "⊙⊗Φ")
CHUNK = 500


@contextmanager
def unlimited_int_digits() -> Iterator[None]:
    """Lift Python's int↔str limit for the reference computations only."""
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(before)


def simple_parse(digits: str, base: int) -> int:
    """Horner's rule, CHUNK digits at a time."""
    value = 0
    for start in range(0, len(digits), CHUNK):
        piece = digits[start : start + CHUNK]
        value = value * base ** len(piece) + int(piece, base)
    return value


def simple_format(value: int, base: int) -> str:
    """Repeated division by base**CHUNK, each remainder written by repeated division by base."""
    if value == 0:
        return "0"
    chunks = []
    while value:
        value, low = divmod(value, base**CHUNK)
        chunk = ""
        for _ in range(CHUNK):
            low, digit = divmod(low, base)
            chunk = "0123456789"[digit] + chunk
        chunks.append(chunk)
    return "".join(reversed(chunks)).lstrip("0")


def random_digits(length: int, base: int, seed: int) -> str:
    rng = random.Random(seed)
    alphabet = "0123456789"[:base]
    return rng.choice(alphabet[1:]) + "".join(rng.choices(alphabet, k=length - 1))


# --- sub-quadratic conversions agree with the simple ones -------------------------------------------


def big_integers(max_bits: int) -> st.SearchStrategy[int]:
    """Small integers Hypothesis can shrink, and random ones of any size up to ``max_bits``."""
    random_bits = st.builds(
        lambda bits, seed: random.Random(seed).getrandbits(bits), st.integers(0, max_bits), st.integers(0, 2**32)
    )
    return st.one_of(st.integers(min_value=0, max_value=2**600), random_bits)


@settings(max_examples=150)
@given(big_integers(50_000))
def test_base3_conversions_agree_with_the_simple_algorithm(value: int) -> None:
    digits = simple_format(value, 3)
    assert int_to_digits(value, 3) == digits
    assert digits_to_int(digits, 3) == value
    assert trits_to_int(int_to_trits(value)) == value and int_to_trits(value) == digits.translate(TRITS)


@settings(max_examples=150)
@given(big_integers(100_000))
def test_base10_conversions_agree_with_python(value: int) -> None:
    with unlimited_int_digits():
        digits = str(value)
    assert int_to_digits(value, 10) == digits and digits_to_int(digits, 10) == value


@settings(max_examples=4, deadline=None)
@given(st.integers(min_value=MAX_INT_DIGITS - 4 * LEAF, max_value=MAX_INT_DIGITS), st.integers(0, 2**32))
def test_conversions_near_the_cap_agree_with_the_simple_algorithm(length: int, seed: int) -> None:
    digits = random_digits(length, 3, seed)
    value = digits_to_int(digits, 3)
    assert value == simple_parse(digits, 3)
    assert int_to_digits(value, 3) == digits == simple_format(value, 3)
    token = "≗⊙⊙" + digits.translate(TRITS)
    assert parse_token(token) == UInt(value) and UInt(value).to_text() == token


@pytest.mark.parametrize("width", sorted({LEAF << k for k in range(9)} | {MAX_INT_DIGITS}))
@pytest.mark.parametrize("shift", [-1, 0, 1])
def test_conversions_at_the_split_points(width: int, shift: int) -> None:
    """Values whose digit counts sit on either side of each LEAF·2^k split: all ones, all twos, 10…0."""
    length = width + shift
    for digits in ("2" * length, "1" + "0" * (length - 1), "1" * length):
        value = simple_parse(digits, 3)
        assert digits_to_int(digits, 3) == value and int_to_digits(value, 3) == digits


# --- the digit cap --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "what", "column"),
    [
        ("≗⊙⊙", "INT-U3", 4),
        ("≗⊙⊗◦⊙◽", "INT-S3 magnitude", 7),
        ("≗⊙⊗◦⊗◽", "INT-S3 magnitude", 7),
        ("≗⊗⊗⊙◦⊗◽", "DECIMAL-T value", 8),
        ("≗⊗⊙⊙◦⊙⊗◽", "FLOAT-T mantissa", 9),
    ],
)
def test_numbers_past_the_cap_are_refused_with_a_located_error(prefix: str, what: str, column: int) -> None:
    fits = prefix + "⊗" * MAX_INT_DIGITS
    assert parse_token(fits)  # exactly at the cap: read (FLOAT-T rounds it to a double)
    with pytest.raises(ParseError) as info:
        parse_token(prefix + "⊗" * (MAX_INT_DIGITS + 1))
    error = info.value
    assert error.code == "PARSE_019" and (error.line, error.column) == (1, column + MAX_INT_DIGITS)
    assert f"{what} has 210,001 digits; a ForgeNumerics-S number has at most 210,000 base-3 digits" in str(error)
    assert "BLOB-T" in error.hint


def test_the_int_u3_l_length_and_value_are_both_capped() -> None:
    digits = "⊗" * (MAX_INT_DIGITS + 1)
    with pytest.raises(ParseError, match="INT-U3-L value has 210,001 digits") as info:
        parse_token("≗⊙⊙◦" + int_to_trits(len(digits)) + "◽" + digits)
    assert info.value.code == "PARSE_019"
    with pytest.raises(ParseError, match="INT-U3-L length has 210,001 digits"):
        parse_token("≗⊙⊙◦" + "⊗" * (MAX_INT_DIGITS + 1) + "◽⊗")


def test_integers_past_the_cap_cannot_be_encoded_either() -> None:
    largest = 3**MAX_INT_DIGITS - 1
    assert len(UInt(largest).to_text()) == 3 + MAX_INT_DIGITS
    assert SInt(-largest).value == -largest
    for make in (UInt, SInt, lambda value: SInt(-value), lambda value: Frame({"N": value})):
        with pytest.raises(EncodeError, match="at most 210,000 base-3 digits") as info:
            make(largest + 1)
        assert info.value.code == "ENCODE_001"
    with pytest.raises(EncodeError, match="beyond the codec's cap"):
        item_from_json({"uint": "9" * 100_201})


def test_json_writes_integers_beyond_python_s_limit_as_digit_strings_and_reads_them_back() -> None:
    with unlimited_int_digits():
        at_limit, past_limit = int("9" * JSON_INT_DIGITS), int("1" + "0" * JSON_INT_DIGITS)
    assert token_to_json(UInt(at_limit)) == at_limit  # a plain JSON number up to 4,300 digits
    assert token_to_json(UInt(past_limit)) == {"uint": "1" + "0" * JSON_INT_DIGITS}
    assert token_to_json(SInt(-past_limit)) == {"sint": "-1" + "0" * JSON_INT_DIGITS}
    frame = Frame({"N": past_limit}, [-past_limit, 7])
    assert repr(UInt(past_limit)) == f"UInt({'1' + '0' * JSON_INT_DIGITS})"  # repr(int) would raise here too
    text = json.dumps(frame.to_json())  # json.dumps of the int itself would raise ValueError
    assert item_from_json(json.loads(text)) == frame


# --- lone surrogates ------------------------------------------------------------------------------

LONG_RUN = "⊙⊗Φ⊛" * 3000  # past the small path: the chunked NumPy scanner reads it


@pytest.mark.parametrize(
    ("text", "read", "column"),
    [
        ("≗Φ⊙" + LONG_RUN + "\ud800" + "⊙" * 400, parse_token, 12_004),
        ("≗Φ⊙" + LONG_RUN + "\ud800\U0001f600", parse_token, 12_004),  # used to raise UnicodeEncodeError
        ("≗Φ⊙⊙⊙\ud800", parse_token, 6),  # the short path
        ("⧆∷≛A⦙≗Φ⊙" + LONG_RUN + "\udfff⧈", parse_frame, 12_009),
        ("⧆∷⧈\n⧆∷≗Φ⊙" + LONG_RUN + "\ud800⧈", parse_document, 12_006),
        ("⧆≛TYPE⦙≛A∷≗Φ⊙" + LONG_RUN + "\ud800\U0001f600⧈", read_legacy, 12_014),
    ],
)
def test_a_lone_surrogate_in_a_blob_run_is_a_located_parse_error(text: str, read: object, column: int) -> None:
    with pytest.raises(ParseError) as info:
        read(text)  # type: ignore[operator]
    error = info.value
    assert error.code == "PARSE_006" and error.column == column
    assert "BLOB-T body holds '\\ud8" in str(error) or "BLOB-T body holds '\\udfff'" in str(error)
    str(error).encode("utf-8")  # printable: the context snippet escapes the surrogate


def test_a_lone_surrogate_in_a_bare_blob_body_is_a_body_error_at_its_offset() -> None:
    for body in (LONG_RUN + "\ud800", LONG_RUN + "\ud800\U0001f600", "⊙⊙\ud800"):
        with pytest.raises(BodyError) as info:  # the scanner turns this into a located ParseError
            decode_blob(body)
        assert info.value.code == "PARSE_006" and info.value.offset == body.index("\ud800")


@pytest.mark.parametrize(
    ("build", "what"),
    [
        (lambda text: TrainPairFrame("p-1", 0, Decimal("0.9"), "s", "a" * 64, "2026-01-01T00:00:00Z", "q", text)
         .to_bytes(), "the completion of pair p-1"),
        (lambda text: TrainPairFrame("p-1", 0, Decimal("0.9"), "s", "a" * 64, "2026-01-01T00:00:00Z", text, "a")
         .to_frame(), "the instruction of pair p-1"),
        (lambda text: summary_frame(summary_id="s-1", text=text, created_at="2026-01-01T00:00:00Z"),
         "the text of summary s-1"),
        (lambda text: fact_frame(fact_id="f", subject=text, predicate="p", obj="o", confidence="1"), "the text"),
        (lambda text: item_from_json({"utf8": text}), "the utf8 text"),
    ],
)  # fmt: skip
def test_a_lone_surrogate_in_text_for_blob_t_is_an_encode_error_naming_the_field_and_spot(
    build: object, what: str
) -> None:
    text = "line one\n" + "x" * 5000 + "\ud800" + "y" * 10
    with pytest.raises(EncodeError) as info:
        build(text)  # type: ignore[operator]
    error = info.value
    assert error.code == "ENCODE_002" and (error.line, error.column) == (2, 5001)
    assert f"{what} holds a lone surrogate U+D800 at index 5,009, which UTF-8 cannot encode" in str(error)
    assert "U+FFFD" in error.hint
    str(error).encode("utf-8")


def test_lone_surrogates_in_words_literals_and_evidence_are_named_as_such() -> None:
    with pytest.raises(EncodeError, match="holds a lone surrogate U\\+DC80 at index 1"):
        Text("a\udc80")
    with pytest.raises(ParseError, match="literal holds a lone surrogate U\\+D800"):
        parse_frame("⧆∷≛⟦a\ud800b⟧⧈")
    with pytest.raises(EncodeError, match="lone surrogate U\\+D800"):  # used to slip into signed frame bytes
        EvidenceRef("c", "d", "a" * 64, source="x\ud800")
    assert Blob("\ud800".encode("utf-8", "surrogatepass")).to_text()  # bytes are bytes: any of them encode
