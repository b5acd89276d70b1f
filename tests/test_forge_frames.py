"""Frames: the strict scanner's grammar, its located errors, documents and canonical form."""

from __future__ import annotations

from decimal import Decimal

import pytest

from arcticcodex.errors import EncodeError, ParseError
from arcticcodex.forge import (
    Blob,
    Dec,
    Float,
    Frame,
    SInt,
    Text,
    UInt,
    canonicalize,
    is_canonical,
    iter_document,
    parse_document,
    parse_frame,
    parse_item,
    parse_token,
    write_document,
)


def test_spec_fact_example_reads_and_canonicalises() -> None:
    pretty = "⧆≛TYPE⦙≛FACT ∷\n  ≛SUBJ⦙≛Einstein ⦙\n  ≛PRED⦙≛born_in ⦙\n  ≛OBJ⦙≛Ulm\n⧈"
    frame = parse_frame(pretty)
    assert frame.type == "FACT"  # whitespace between tokens is not part of them
    assert frame.payload == tuple(map(Text, ["SUBJ", "Einstein", "PRED", "born_in", "OBJ", "Ulm"]))
    assert canonicalize(pretty) == "⧆≛TYPE⦙≛FACT∷≛SUBJ⦙≛Einstein⦙≛PRED⦙≛born_in⦙≛OBJ⦙≛Ulm⧈"


def test_header_is_sorted_by_code_point() -> None:
    assert canonicalize("⧆≛Z⦙≛1∴≛A⦙≛2∷≛x⧈") == "⧆≛A⦙≛2∴≛Z⦙≛1∷≛x⧈"
    assert canonicalize("⧆≛A_FIRST⦙≛1∴≛AB⦙≛2∷⧈") == "⧆≛AB⦙≛2∴≛A_FIRST⦙≛1∷⧈"  # 'B' < '_'
    assert canonicalize("⧆≛type⦙≛V∴≛TYPE⦙≛W∷⧈") == "⧆≛TYPE⦙≛W∴≛type⦙≛V∷⧈"  # case-sensitive


def test_header_values_may_be_bare_numbers_and_are_written_bare() -> None:
    frame = parse_frame("⧆≛LEN⦙≗⊙⊙Φ∴≛TYPE⦙≛VECTOR∷≗⊙⊙⊗⦙≗⊙⊙Φ⧈")
    assert frame.header["LEN"] == UInt(2)
    assert frame.to_text() == "⧆≛LEN⦙≗⊙⊙Φ∴≛TYPE⦙≛VECTOR∷≗⊙⊙⊗⦙≗⊙⊙Φ⧈"


def test_float_t_in_a_header_does_not_break_the_frame() -> None:
    frame = Frame({"X": 7.5, "TYPE": "M"}, ["a"])
    assert parse_frame(frame.to_text()) == frame


def test_literals_are_opaque_and_escape_the_closing_bracket() -> None:
    frame = parse_frame("⧆≛TYPE⦙≛LOG∷≛MSG⦙≛⟦a⦙b ∷ c⧈ ⟧⟧ d⟧⧈")
    assert frame.payload == (Text("MSG"), Text("a⦙b ∷ c⧈ ⟧ d"))
    assert frame.to_text() == "⧆≛TYPE⦙≛LOG∷≛MSG⦙≛⟦a⦙b ∷ c⧈ ⟧⟧ d⟧⧈"


def test_text_that_can_be_a_word_is_written_as_one() -> None:
    assert canonicalize("⧆∷≛⟦megafauna⟧⧈") == "⧆∷≛megafauna⧈"
    assert Text("").to_text() == "≛⟦⟧"
    assert Text("two words").to_text() == "≛⟦two words⟧"
    assert Text("Φ").to_text() == "≛⟦Φ⟧"  # alphabet symbols are never word characters


def test_nested_frames_in_the_payload() -> None:
    inner = Frame({"TYPE": "VECTOR", "LEN": 2}, [1, -3])
    outer = Frame({"TYPE": "MATRIX_OF_VECTORS"}, [inner, inner])
    text = outer.to_text()
    assert text == "⧆≛TYPE⦙≛MATRIX_OF_VECTORS∷" + inner.to_text() + "⦙" + inner.to_text() + "⧈"
    assert parse_frame(text) == outer
    assert list(parse_frame(text).frames()) == [inner, inner]


def test_empty_frame() -> None:
    assert parse_frame("⧆∷⧈") == Frame()
    assert Frame().to_text() == "⧆∷⧈"


@pytest.mark.parametrize(
    ("text", "code", "line", "column", "hint_word"),
    [
        ("not_a_frame", "PARSE_001", 1, 1, "legacy"),
        ("", "PARSE_001", 1, 1, ""),
        ("⧆≛TYPE⦙≛A∷≛x", "PARSE_002", 1, 13, ""),
        ("⧆≛TYPE⦙≛VECTOR⧈", "PARSE_003", 1, 2, "∷"),
        ("⧆≛TYPE⦙≛A⦙≛EXTRA∷≛P⧈", "PARSE_004", 1, 2, "∴"),
        ("⧆≛A⦙≛1∴\n≛B⦙≛2⦙≛3∷⧈", "PARSE_004", 2, 1, ""),  # lines and columns count code points
        ("⧆≛TYPE⦙≛X∴≛ORPHAN∷≛a⧈", "PARSE_004", 1, 11, "KEY"),  # the original silently dropped it
        ("⧆≛T⦙≛V∷a⦙b⧈", "PARSE_007", 1, 8, "≛"),  # bare words are not tokens
        ("⧆≛T⦙≛V∷≛a⦙⦙≛b⧈", "PARSE_013", 1, 11, ""),
        ("⧆≛T⦙≛V∷≛a⦙⧈", "PARSE_013", 1, 11, ""),
        ("⧆≛T⦙≛⟦open∷≛a⧈", "PARSE_008", 1, 5, "⟧"),
        ("⧆≛T⦙≛1∴≛T⦙≛2∷⧈", "PARSE_009", 1, 8, "once"),
        ("⧆≛T⦙≛1∷⧈ extra", "PARSE_010", 1, 10, ""),
        ("⧆≛T⦙≛a⧆b∷⧈", "PARSE_014", 1, 7, "literal"),
        ("⧆≛T⦙≛⟦a\nb⟧∷⧈", "PARSE_017", 1, 8, "BLOB-T"),
        ("⧆≛T⦙≛X∷≛VALUE⦙≗⊗⊙⊙◦⊗⊙◽⊙⊗ ∷ ⊗⊙⧈", "PARSE_007", 1, 26, "legacy"),  # the original's FLOAT-T
        ("⧆≛T⦙⧆∷⧈∷⧈", "PARSE_007", 1, 5, ""),  # frames are payload items only
        ("⧆∷" + "⧆∷" * 40 + "⧈" * 41, "PARSE_015", 1, 65, ""),
    ],
)
def test_parse_errors_are_structured_and_located(text: str, code: str, line: int, column: int, hint_word: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_frame(text)
    error = info.value
    assert (error.code, error.line, error.column) == (code, line, column), str(error)
    assert error.offset is not None and "▼" in error.context
    assert hint_word in error.hint
    assert f"{line}:{column}: {code}" in str(error)


def test_document_one_frame_per_line() -> None:
    frames = [Frame({"TYPE": "A"}, [1]), Frame({"TYPE": "B"}, [b"x"])]
    text = write_document(frames)
    assert text.count("\n") == 2
    assert parse_document(text) == frames
    assert parse_document("\n\n" + text + "\n  \n") == frames


def test_document_errors_name_the_frame_line() -> None:
    text = "⧆≛TYPE⦙≛A∷≗⊙⊙⊗⧈\n⧆≛TYPE⦙≛B∷≗⊙⊙⊗⧈\n⧆≛TYPE⦙≛C∷≗⊙⊙x⧈\n"
    frames = iter_document(text)
    assert next(frames).type == "A" and next(frames).type == "B"
    with pytest.raises(ParseError) as info:
        next(frames)
    assert (info.value.line, info.value.column, info.value.code) == (3, 14, "PARSE_006")


def test_two_frames_on_one_line_are_refused() -> None:
    with pytest.raises(ParseError) as info:
        parse_document("⧆∷⧈⧆∷⧈")
    assert info.value.code == "PARSE_010"


def test_parse_item_and_token() -> None:
    assert parse_item(" ≗⊙⊙⊗ ") == UInt(1)
    assert parse_item("⧆∷⧈") == Frame()
    with pytest.raises(ParseError):
        parse_token("⧆∷⧈")
    with pytest.raises(ParseError) as info:
        parse_token("≗⊙⊙⊗ ≗⊙⊙⊗")
    assert info.value.code == "PARSE_010"


def test_is_canonical() -> None:
    assert is_canonical("⧆≛A⦙≛val∴≛Z⦙≛val∷≛token1⧈")
    assert not is_canonical("⧆≛Z⦙≛val∴≛A⦙≛val∷≛token1⧈")
    assert not is_canonical("⧆≛A⦙≛1∷ ≛x⧈")
    assert not is_canonical("garbage")


def test_frame_construction_converts_python_values() -> None:
    frame = Frame(
        {"TYPE": "X", "N": 3, "S": -2, "D": Decimal("1.50"), "F": 0.5, "B": b"\x00"},
        ["word", "two words", 7, Decimal("-0"), 1e300],
    )
    assert frame.header["N"] == UInt(3) and frame.header["S"] == SInt(-2)
    assert frame.header["D"] == Dec("1.5") and frame.header["F"] == Float(0.5) and frame.header["B"] == Blob(b"\x00")
    assert parse_frame(frame.to_text()) == frame


@pytest.mark.parametrize(
    ("header", "payload"),
    [
        ({"TWO WORDS": 1}, []),
        ({"K⦙": 1}, []),
        ({"K": Frame()}, []),
        ({"K": None}, []),
        ({"K": True}, []),
        ({}, [object()]),
        ({}, ["line\nbreak"]),
    ],
)
def test_frame_construction_refuses_what_has_no_encoding(header: dict[str, object], payload: list[object]) -> None:
    with pytest.raises(EncodeError):
        Frame(header, payload)


def test_float_equality_is_by_bits() -> None:
    assert Float(0.0) != Float(-0.0)
    assert Float(float("nan")) == Float(float("nan"))
    assert len({Float(0.0), Float(-0.0), Float(float("nan"))}) == 3


def test_to_json_contract() -> None:
    frame = Frame(
        {"TYPE": "X", "D": Dec("-12.34"), "F": float("-inf")},
        [42, -1, float("nan"), 0.25, b"hi", b"\xff\x00", Frame({"TYPE": "Y"})],
    )
    assert frame.to_json() == {
        "header": {"TYPE": "X", "D": "-12.34", "F": "-inf"},
        "payload": [
            42,
            -1,
            "nan",
            0.25,
            {"utf8": "hi"},
            {"base64": "/wA="},
            {"header": {"TYPE": "Y"}, "payload": []},
        ],
    }
