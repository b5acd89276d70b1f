"""Schemas per TYPE, their VALIDATE_ codes, and the record builders and readers."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arcticcodex.errors import EncodeError, ValidationError
from arcticcodex.forge import Blob, Dec, Frame, Text, UInt, parse_frame
from arcticcodex.forge.record_frames import (
    EvidenceRef,
    TrainPairFrame,
    evidence_frame,
    fact_frame,
    log_frame,
    matrix_frame,
    read_evidence,
    read_train_pair,
    summary_frame,
    train_pair_frame,
    utc_timestamp,
    vector_frame,
)
from arcticcodex.forge.schemas import SCHEMAS, problems, validate

KEY_ID = hashlib.sha256(b"public key").hexdigest()
CHUNK_HASH = hashlib.sha256(b"chunk text").hexdigest()


def pair(**overrides: object) -> Frame:
    fields: dict[str, object] = {
        "pair_id": "0b7d2c1e-pair",
        "index": 3,
        "quality": Decimal("0.92"),
        "signer": "teacher-01",
        "key_id": KEY_ID,
        "created_at": datetime(2026, 11, 25, 12, 30, tzinfo=UTC),
        "instruction": "What do otters eat?\nAnswer briefly.",
        "completion": "Mostly fish ⦙ and crabs ⧈ — sometimes ⟧ shellfish.",
        "teachers": ["deepseek-chat", "local-judge"],
        "evidence": [EvidenceRef("doc-1#c0", "doc-1", CHUNK_HASH, span=(0, 120), source="notes/otters.md")],
    }
    fields.update(overrides)
    return train_pair_frame(**fields)  # type: ignore[arg-type]


def test_train_pair_round_trips_through_text_and_reader() -> None:
    frame = pair()
    assert validate(frame) is frame
    back = read_train_pair(parse_frame(frame.to_text()))
    assert back.instruction == "What do otters eat?\nAnswer briefly."
    assert back.completion == "Mostly fish ⦙ and crabs ⧈ — sometimes ⟧ shellfish."
    assert back.quality == Decimal("0.92") and back.index == 3
    assert back.created_at == "2026-11-25T12:30:00Z"
    assert back.teachers == ("deepseek-chat", "local-judge")
    assert back.evidence == (EvidenceRef("doc-1#c0", "doc-1", CHUNK_HASH, span=(0, 120), source="notes/otters.md"),)


def test_train_pair_binds_everything_in_one_canonical_line() -> None:
    text = pair().to_text()
    assert "\n" not in text and "'" not in text  # no repr, no line breaks: text lives in BLOB-T
    assert text.count("CREATED_AT") == 1
    assert text.endswith("≛TYPE⦙≛TRAIN_PAIR∷" + text.split("∷", 1)[1])


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"quality": Decimal("1.01")}, "QUALITY"),
        ({"quality": "-0.1"}, "QUALITY"),
        ({"key_id": "ABC"}, "KEY_ID"),
        ({"pair_id": ""}, "ID"),
        ({"index": -1}, "INDEX"),
        ({"teachers": [""]}, "TEACHER"),
    ],
)
def test_train_pair_builder_refuses_invalid_fields(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        pair(**overrides)
    assert info.value.field == field
    assert info.value.code.startswith("VALIDATE_")


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        pair(created_at=datetime(2026, 1, 1))


def test_timestamps_are_normalised_to_utc() -> None:
    moment = datetime(2026, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert utc_timestamp(moment) == "2026-01-01T12:00:00Z"
    assert utc_timestamp("2026-01-01T12:00:00.5+00:00") == "2026-01-01T12:00:00.500000Z"


@given(
    quality=st.decimals(min_value=0, max_value=1, places=4),
    index=st.integers(min_value=0, max_value=10**9),
    instruction=st.text(max_size=200),
    completion=st.text(max_size=200),
    teachers=st.lists(st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1), max_size=3),
)
def test_builder_output_always_satisfies_the_schema(
    quality: Decimal, index: int, instruction: str, completion: str, teachers: list[str]
) -> None:
    frame = TrainPairFrame(
        pair_id="p",
        index=index,
        quality=quality,
        signer="s",
        key_id=KEY_ID,
        created_at="2026-11-25T12:00:00Z",
        instruction=instruction,
        completion=completion,
        teachers=tuple(teachers),
    ).to_frame()
    assert problems(frame) == []
    assert read_train_pair(parse_frame(frame.to_text())).completion == completion


def test_every_schema_has_a_builder_that_validates() -> None:
    built = {
        "TRAIN_PAIR": pair(),
        "EVIDENCE": evidence_frame(EvidenceRef("c", "d", CHUNK_HASH)),
        "FACT": fact_frame(fact_id="f-1", subject="Otter", predicate="eats", obj="fish", confidence="0.750"),
        "SUMMARY": summary_frame(summary_id="s-1", text="Otters eat fish.\nMostly.", created_at=datetime.now(UTC)),
        "VECTOR": vector_frame([1, -2, Decimal("0.5"), 0.25]),
        "MATRIX": matrix_frame([[1, 2], [3, 4]]),
        "LOG": log_frame("info", "started", detail="pid 42", time=1700000000),
    }
    assert set(built) | {"SIGNED"} == set(SCHEMAS)
    for type_name, frame in built.items():
        assert frame.type == type_name
        assert problems(parse_frame(frame.to_text())) == []
    assert built["FACT"].header["CONFIDENCE"] == Dec("0.75")


@pytest.mark.parametrize(
    ("frame", "code", "field"),
    [
        (Frame({"FACT_ID": "f"}), "VALIDATE_004", "TYPE"),
        (Frame({"TYPE": "NOPE"}), "VALIDATE_006", "TYPE"),
        (Frame({"TYPE": "VECTOR", "LEN": 2}, [1]), "VALIDATE_005", None),
        (Frame({"TYPE": "VECTOR", "LEN": 1}, ["x"]), "VALIDATE_005", None),
        (Frame({"TYPE": "VECTOR", "LEN": "two"}, []), "VALIDATE_002", "LEN"),
        (Frame({"TYPE": "VECTOR", "LEN": 0, "COLOR": "red"}), "VALIDATE_007", "COLOR"),
        (Frame({"TYPE": "MATRIX", "ROWS": 2, "COLS": 2}, [1, 2, 3]), "VALIDATE_005", None),
        (Frame({"TYPE": "LOG", "SEVERITY": "LOUD"}, ["MSG", "x"]), "VALIDATE_008", "SEVERITY"),
        (Frame({"TYPE": "LOG", "SEVERITY": "INFO"}, ["MESSAGE", "x"]), "VALIDATE_005", None),
        (
            Frame({"TYPE": "SUMMARY", "SUMMARY_ID": "s", "CREATED_AT": "2026-01-01T00:00:00"}, [b"x"]),
            "VALIDATE_008",
            "CREATED_AT",
        ),
        (
            Frame(
                {"TYPE": "FACT", "FACT_ID": "f", "CONFIDENCE": Dec("1.5")},
                ["SUBJ", "a", "PRED", "b", "OBJ", "c"],
            ),
            "VALIDATE_008",
            "CONFIDENCE",
        ),
        (
            Frame({"TYPE": "FACT", "FACT_ID": "f", "CONFIDENCE": Dec("0.5")}, ["SUBJ", "a", "OBJ", "c"]),
            "VALIDATE_005",
            None,
        ),
        (
            Frame({"TYPE": "EVIDENCE", "CHUNK_ID": "c", "DOC_ID": "d", "SHA256": "xyz"}),
            "VALIDATE_008",
            "SHA256",
        ),
        (
            Frame(
                {
                    "TYPE": "EVIDENCE",
                    "CHUNK_ID": "c",
                    "DOC_ID": "d",
                    "SHA256": CHUNK_HASH,
                    "SPAN_START": 5,
                    "SPAN_END": 2,
                }
            ),
            "VALIDATE_005",
            None,
        ),
    ],
)
def test_validation_codes(frame: Frame, code: str, field: str | None) -> None:
    with pytest.raises(ValidationError) as info:
        validate(frame)
    assert info.value.code == code
    assert info.value.field == field
    assert info.value.hint or code in ("VALIDATE_002", "VALIDATE_008")


def test_problems_lists_every_violation_including_nested_frames() -> None:
    bad_evidence = Frame({"TYPE": "EVIDENCE", "CHUNK_ID": "c", "DOC_ID": "d", "SHA256": "bad"})
    frame = Frame(
        {"TYPE": "TRAIN_PAIR", "ID": "p", "INDEX": 0, "QUALITY": Dec("2"), "SIGNER": "s", "KEY_ID": KEY_ID},
        [b"q", b"a", bad_evidence],
    )
    found = problems(frame)
    codes = [(problem.code, problem.field) for problem in found]
    assert ("VALIDATE_004", "CREATED_AT") in codes
    assert ("VALIDATE_008", "QUALITY") in codes
    assert ("VALIDATE_008", "SHA256") in codes
    assert "payload item 2" in str(found[-1])


def test_expected_type_mismatch() -> None:
    with pytest.raises(ValidationError) as info:
        read_train_pair(fact_frame(fact_id="f", subject="a", predicate="b", obj="c", confidence="1"))
    assert info.value.code == "VALIDATE_003"


def test_evidence_reader() -> None:
    ref = EvidenceRef("doc-9#c3", "doc-9", CHUNK_HASH, span=(10, 20))
    assert read_evidence(evidence_frame(ref)) == ref
    with pytest.raises(ValidationError):
        EvidenceRef("c", "d", CHUNK_HASH, span=(5, 1))


def test_builders_turn_long_or_multiline_text_into_blobs() -> None:
    frame = fact_frame(fact_id="f", subject="x" * 300, predicate="is", obj="line\nbreak", confidence="0.5")
    assert isinstance(frame.payload[1], Blob) and isinstance(frame.payload[5], Blob)
    assert frame.payload[3] == Text("is")


def test_matrix_must_be_rectangular_and_vector_len_matches() -> None:
    with pytest.raises(ValueError, match="rectangular"):
        matrix_frame([[1, 2], [3]])
    assert vector_frame([]).header["LEN"] == UInt(0)
    with pytest.raises(EncodeError):
        vector_frame([True])
