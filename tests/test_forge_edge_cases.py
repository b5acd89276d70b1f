"""Edge cases found in review: huge numbers, surrogates, line separators, hashing, CLI input."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from arcticcodex.errors import EncodeError, ParseError, ValidationError
from arcticcodex.forge import Dec, Frame, Text, parse_document, parse_frame, parse_token
from arcticcodex.forge.record_frames import TrainPairFrame
from arcticcodex.forge.schemas import validate
from conftest import Acx


def test_decimals_beyond_4300_digits_round_trip_and_print() -> None:
    big = Dec("7" * 5001 + ".25")
    back = parse_token(big.to_text())
    assert back == big and str(back) == "7" * 5001 + ".25"
    assert back.value == Decimal("7" * 5001 + ".25")  # type: ignore[union-attr]
    with pytest.raises(EncodeError):
        Dec("1E-500000")  # one limit for the encoder and the decoder


def test_lone_surrogates_are_refused_before_they_reach_utf8() -> None:
    with pytest.raises(EncodeError):
        Text("\ud800")
    with pytest.raises(ParseError):
        parse_frame("⧆∷≛⟦a\udfffb⟧⧈")


def test_frames_are_hashable_by_their_canonical_text() -> None:
    assert len({Frame({"A": 1}), Frame({"A": 1}), Frame({"A": 2})}) == 2


def test_only_newlines_separate_frames_so_error_lines_are_right() -> None:
    assert len(parse_document("⧆∷⧈\r\n⧆∷⧈\n")) == 2
    with pytest.raises(ParseError) as info:
        parse_document("⧆∷⧈\r⧆∷⧈")
    assert info.value.code == "PARSE_010"
    with pytest.raises(ParseError) as info:
        parse_document("⧆∷⧈\n⧆∷≛a b⧈")
    assert (info.value.line, info.value.code) == (2, "PARSE_007")


def test_train_pair_timestamps_have_one_spelling() -> None:
    key = "a" * 64
    pair = TrainPairFrame("p", 0, Decimal("0.9"), "s", key, "2026-01-01T01:00:00+01:00", "q", "a").to_frame()
    assert pair.header["CREATED_AT"] == Text("2026-01-01T00:00:00Z")
    edited = Frame({**pair.header, "CREATED_AT": "2026-01-01T01:00:00+01:00"}, pair.payload)
    with pytest.raises(ValidationError):
        validate(edited)
    with pytest.raises(ValidationError):
        TrainPairFrame("p", 0, 0.9, "s", key, "2026-01-01T00:00:00Z", "q", "a")  # type: ignore[arg-type]


def test_cli_input_problems_are_messages_not_tracebacks(tmp_path: Path, acx: Acx) -> None:
    bad = tmp_path / "bad.fn"
    bad.write_bytes(b"\xff\xfe\n")
    result = acx("forge", "decode", bad, code=1)
    assert f"{bad}:1: not UTF-8 text (byte 0xff); ForgeNumerics-S files are UTF-8" in result.stderr
    nan = acx("forge", "encode", "NaN")
    assert nan.stdout.strip() == "≛NaN"  # not JSON: text, as the help says
    huge = acx("forge", "encode", "1" * 5000, code=1)
    assert "cannot read '1111" in huge.stderr and "an integer of 5000 digits" in huge.stderr
    assert '{"uint": "123…"}' in huge.stderr  # the fix: digits in a string, which encode then reads
    assert acx("forge", "encode", input=json.dumps({"uint": "1" * 5000}) + "\n").stdout.startswith("≗")
    surrogate = acx("forge", "encode", input=json.dumps({"text": "\ud800"}) + "\n", code=1)
    assert "<stdin>:1: ENCODE_002 text '\\ud800' holds a lone surrogate U+D800" in surrogate.stderr
    assert "replace a lone surrogate with U+FFFD" in surrogate.stderr
