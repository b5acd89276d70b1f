"""``arcticcodex forge``: encode, decode, validate, canonicalize and diff, end to end.

The JSON shape of ``forge decode --json`` is a contract other tools rely on, so these tests parse the
output and compare exact values.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import pytest

from arcticcodex.errors import ParseError
from arcticcodex.forge import Blob, Dec, Float, Frame, SInt, Text, Token, UInt, parse_frame
from arcticcodex.forge.record_frames import (
    fact_frame,
    log_frame,
    matrix_frame,
    summary_frame,
    train_pair_frame,
    vector_frame,
)
from conftest import Acx

SAMPLE = Frame({"TYPE": "X", "Q": Dec("0.5")}, [42, -1, 0.25, float("nan"), b"hi", b"\xff"])
SAMPLE_JSON = {
    "header": {"Q": "0.5", "TYPE": "X"},
    "payload": [42, -1, 0.25, "nan", {"utf8": "hi"}, {"base64": "/w=="}],
}
BAD_DIGIT = "⧆≛TYPE⦙≛A∷≗⊙⊙x⧈"  # column 14 holds 'x', which is not a base-3 digit
LEGACY_VECTOR = "⧆≛TYPE⦙≛VECTOR∴≛LEN⦙≛≗⊙⊙Φ∷≗⊙⊙⊗⦙≗⊙⊙⊗⊙⧈"
LEGACY_VECTOR_CANONICAL = "⧆≛LEN⦙≗⊙⊙Φ∴≛TYPE⦙≛VECTOR∷≗⊙⊙⊗⦙≗⊙⊙⊗⊙⧈"


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def decoded(acx: Acx, *args: str | Path, input: str | None = None) -> list[object]:
    value = json.loads(acx("forge", "decode", "--json", *args, input=input).stdout)
    assert isinstance(value, list)
    return value


def valid_frames() -> list[Frame]:
    return [
        fact_frame(fact_id="f1", subject="Fox", predicate="jumps over", obj="Dog", confidence="0.9"),
        summary_frame(summary_id="s1", text="Two lines.\nOf summary.", created_at="2026-01-31T12:00:00Z"),
        vector_frame([1, -2, Decimal("0.5"), 0.25]),
        matrix_frame([[1, 2], [3, 4]]),
        log_frame("info", "hello", detail="more detail"),
        train_pair_frame(
            pair_id="p1",
            index=0,
            quality="0.8",
            signer="alice",
            key_id="a" * 64,
            created_at="2026-01-31T12:00:00Z",
            instruction="What is 2 + 2?",
            completion="4",
            teachers=["deepseek"],
        ),
    ]


# --- decode --------------------------------------------------------------------------------------


def test_decode_json_file_one_item_per_non_blank_line(tmp_path: Path, acx: Acx) -> None:
    source = write(tmp_path / "a.fn", SAMPLE.to_text(), "", "   ", UInt(7).to_text(), Text("hi there").to_text())
    assert decoded(acx, source) == [SAMPLE_JSON, 7, "hi there"]


def test_decode_json_from_stdin(acx: Acx) -> None:
    text = "\n" + SAMPLE.to_text() + "\n\n" + UInt(7).to_text() + "\n"
    assert decoded(acx, input=text) == [SAMPLE_JSON, 7]
    assert decoded(acx, "-", input=text) == [SAMPLE_JSON, 7]


def test_decode_json_value_kinds(acx: Acx) -> None:
    tokens: list[Token] = [
        UInt(0),
        UInt(3**40),
        UInt(5, length_prefixed=True),
        SInt(-14),
        Dec("-12.340"),
        Dec("1E+3"),
        Float(0.1),
        Float(-0.0),
        Float(math.inf),
        Float(-math.inf),
        Float(math.nan),
        Blob(b""),
        Blob("snø ❄".encode()),
        Blob(b"\x00\xff\xfe"),
        Text("word"),
        Text("two words ⟧ and ⦙"),
    ]
    values = decoded(acx, input="".join(token.to_text() + "\n" for token in tokens))
    assert values == [
        0,
        3**40,
        5,
        -14,
        "-12.34",
        "1000",
        0.1,
        -0.0,
        "inf",
        "-inf",
        "nan",
        {"utf8": ""},
        {"utf8": "snø ❄"},
        {"base64": "AP/+"},
        "word",
        "two words ⟧ and ⦙",
    ]
    assert isinstance(values[0], int) and isinstance(values[1], int)  # numbers, not strings
    assert math.copysign(1.0, values[7]) == -1.0  # type: ignore[arg-type]


def test_decode_json_nested_frames_and_empty_frames(acx: Acx) -> None:
    inner = Frame({"TYPE": "EVIDENCE", "N": UInt(1)}, [b"text"])
    outer = Frame({"TYPE": "OUTER"}, ["a", inner, Frame()])
    assert decoded(acx, input=outer.to_text() + "\n") == [
        {
            "header": {"TYPE": "OUTER"},
            "payload": [
                "a",
                {"header": {"N": 1, "TYPE": "EVIDENCE"}, "payload": [{"utf8": "text"}]},
                {"header": {}, "payload": []},
            ],
        }
    ]


def test_decode_json_of_nothing_is_an_empty_list(acx: Acx) -> None:
    assert decoded(acx, input="") == []
    assert decoded(acx, input="\n  \n\n") == []


def test_decode_without_json_describes_values(acx: Acx) -> None:
    result = acx("forge", "decode", input=SAMPLE.to_text() + "\n" + UInt(42).to_text() + "\n")
    lines = result.stdout.splitlines()
    assert lines[0] == "frame X"
    assert '  Q = DECIMAL-T "0.5"' in lines
    assert "  [0] INT-U3 42" in lines
    assert "  [1] INT-S3 -1" in lines
    assert '  [3] FLOAT-T "nan"' in lines
    assert '  [5] BLOB-T {"base64": "/w=="}' in lines
    assert lines[-1] == "INT-U3 42"


def test_decode_legacy_reads_what_the_original_wrote(acx: Acx) -> None:
    assert decoded(acx, "--legacy", input=LEGACY_VECTOR + "\n") == [
        {"header": {"TYPE": "VECTOR", "LEN": 2}, "payload": [1, 3]}
    ]
    # without --legacy the same line is an error, located and coded
    result = acx("forge", "decode", "--json", input=LEGACY_VECTOR + "\n", code=1)
    assert "<stdin>:1:22: PARSE_014" in result.stderr
    assert result.stdout == ""


def test_decode_reports_file_line_column_and_code(tmp_path: Path, acx: Acx) -> None:
    ok = Frame({"TYPE": "A"}, ["x"]).to_text()
    source = write(tmp_path / "bad.fn", ok, ok, BAD_DIGIT, ok)
    result = acx("forge", "decode", "--json", source, code=1)
    assert result.stdout == ""  # one JSON list or nothing: never half a list
    assert f"{source}:3:14: PARSE_006" in result.stderr
    assert result.stderr.count("PARSE_006") == 1
    assert "▼x⧈" in result.stderr  # the context snippet points at the bad digit
    assert "hint:" in result.stderr
    assert result.stderr.startswith("Error: ")


def test_decode_error_location_counts_blank_lines_and_names_stdin(acx: Acx) -> None:
    result = acx("forge", "decode", input="\n\n" + BAD_DIGIT + "\n", code=1)
    assert "<stdin>:3:14: PARSE_006" in result.stderr


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("≛TYPE⦙≛A∷≛x⧈", "PARSE_010"),  # without ⧆ it is a token followed by junk
        ("⧆≛TYPE⦙≛A∷≛x", "PARSE_002"),
        ("⧆≛TYPE⦙≛A⧈", "PARSE_003"),
        ("⧆≛TYPE⦙≛A∴≛TYPE⦙≛B∷⧈", "PARSE_009"),
        ("⧆≛TYPE⦙≛A∷≛x⧈ ≛extra", "PARSE_010"),
        ("⧆≛TYPE⦙≛A∷≛x ∷ ≛y⧈", "PARSE_007"),
        ("≛⟦open", "PARSE_008"),
    ],
)
def test_decode_bad_lines_exit_1_with_their_code(line: str, code: str, acx: Acx) -> None:
    result = acx("forge", "decode", input=line + "\n", code=1)
    assert "<stdin>:1:" in result.stderr
    assert code in result.stderr


def test_raise_errors_env_reraises_the_original_exception(monkeypatch: pytest.MonkeyPatch, acx: Acx) -> None:
    monkeypatch.setenv("ARCTICCODEX_RAISE_ERRORS", "1")
    with pytest.raises(ParseError) as raised:  # raised through click, not printed
        acx("forge", "decode", input="\n\n" + BAD_DIGIT + "\n")
    assert raised.value.code == "PARSE_006"
    assert (raised.value.line, raised.value.column) == (3, 14)
    assert raised.value.source == "<stdin>"


# --- canonicalize --------------------------------------------------------------------------------


def test_canonicalize_prints_one_canonical_frame_per_line(tmp_path: Path, acx: Acx) -> None:
    messy = [
        "⧆≛TYPE⦙≛⟦LOG⟧ ∴ ≛SEVERITY⦙≛INFO ∷ ≛MSG ⦙ ≛⟦hi⟧⧈",
        "   ⧆≛Z⦙≗⊗⊗⊙◦Φ◽⊗⊙⊗∴≛A⦙≗⊙⊗◦⊗◽⊙∷⧈   ",  # 0.10 (scale 2, 10), −0
        "",
        LEGACY_VECTOR_CANONICAL,
    ]
    source = write(tmp_path / "messy.fn", *messy)
    result = acx("forge", "canonicalize", source)
    assert result.stdout.splitlines() == [
        "⧆≛SEVERITY⦙≛INFO∴≛TYPE⦙≛LOG∷≛MSG⦙≛hi⧈",
        Frame({"Z": Dec("0.1"), "A": SInt(0)}).to_text(),
        LEGACY_VECTOR_CANONICAL,
    ]
    # idempotent: canonicalizing the output changes nothing, and --check agrees
    again = acx("forge", "canonicalize", input=result.stdout)
    assert again.stdout == result.stdout
    assert acx("forge", "canonicalize", "--check", input=result.stdout).stdout == ""


def test_canonicalize_check(tmp_path: Path, acx: Acx) -> None:
    canonical = [frame.to_text() for frame in valid_frames()]
    good = write(tmp_path / "good.fn", *canonical)
    result = acx("forge", "canonicalize", "--check", good)
    assert result.stdout == "" and result.stderr == ""

    bad = write(tmp_path / "bad.fn", canonical[0], "⧆≛Z⦙≛1∴≛A⦙≛2∷≛x⧈", canonical[1], "⧆ ∷ ⧈")
    result = acx("forge", "canonicalize", "--check", bad, code=1)
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"{bad}:2: not canonical", f"{bad}:4: not canonical"]


def test_canonicalize_legacy(acx: Acx) -> None:
    result = acx("forge", "canonicalize", "--legacy", input=LEGACY_VECTOR + "\n")
    assert result.stdout == LEGACY_VECTOR_CANONICAL + "\n"
    result = acx("forge", "canonicalize", "--legacy", "--check", input=LEGACY_VECTOR + "\n", code=1)
    assert "<stdin>:1: not canonical" in result.stderr


def test_canonicalize_bad_line(tmp_path: Path, acx: Acx) -> None:
    source = write(tmp_path / "doc.fn", "⧆∷⧈", "", BAD_DIGIT)
    result = acx("forge", "canonicalize", source, code=1)
    assert f"{source}:3:14: PARSE_006" in result.stderr
    result = acx("forge", "canonicalize", input=UInt(1).to_text() + "\n", code=1)
    assert "<stdin>:1:1: PARSE_001" in result.stderr  # a token is not a frame


# --- validate ------------------------------------------------------------------------------------


def test_validate_accepts_a_valid_document(tmp_path: Path, acx: Acx) -> None:
    frames = valid_frames()
    source = write(tmp_path / "good.fn", *(frame.to_text() for frame in frames))
    result = acx("forge", "validate", source)
    assert result.stdout == f"ok: {len(frames)} frame(s) valid\n"
    assert result.stderr == ""
    # from standard input, with blank lines, too
    result = acx("forge", "validate", input="\n" + "\n\n".join(frame.to_text() for frame in frames))
    assert result.stdout == f"ok: {len(frames)} frame(s) valid\n"


def test_validate_reports_every_problem(tmp_path: Path, acx: Acx) -> None:
    lines = [
        valid_frames()[0].to_text(),
        Frame({"TYPE": "VECTOR", "LEN": UInt(3)}, [1, 2]).to_text(),
        Frame({"TYPE": "NOPE"}).to_text(),
        "",
        BAD_DIGIT,
        Frame(
            {"TYPE": "FACT", "FACT_ID": "x", "CONFIDENCE": Dec("1.5"), "EXTRA": "y"},
            ["SUBJ", "a", "PRED", "b", "OBJ", "c"],
        ).to_text(),
        Frame({}, ["no type"]).to_text(),
    ]
    source = write(tmp_path / "bad.fn", *lines)
    result = acx("forge", "validate", source, code=1)
    assert "ok:" not in result.stdout
    err = result.stderr
    assert f"{source}:2:1: VALIDATE_005 VECTOR LEN says 3 values but the payload holds 2" in err
    assert f"{source}:3:1: VALIDATE_006 no schema for TYPE NOPE" in err
    assert f"{source}:5:14: PARSE_006" in err
    assert f"{source}:6:1: VALIDATE_008 FACT header CONFIDENCE must be between 0 and 1" in err
    assert f"{source}:6:1: VALIDATE_007 FACT frame has an unknown header EXTRA" in err
    assert f"{source}:7:1: VALIDATE_004 frame has no TYPE header" in err
    assert f"{source}:1:" not in err
    assert err.rstrip().endswith("6 problem(s) in 6 frame(s)")


def test_validate_checks_nested_frames(acx: Acx) -> None:
    bad_evidence = Frame({"TYPE": "EVIDENCE", "CHUNK_ID": "c", "DOC_ID": "d", "SHA256": "nothex"})
    pair = valid_frames()[-1]
    broken = Frame(pair.header, [*pair.payload, bad_evidence])
    result = acx("forge", "validate", input=broken.to_text() + "\n", code=1)
    assert "<stdin>:1:1: VALIDATE_008 TRAIN_PAIR payload item 4: EVIDENCE header SHA256" in result.stderr


def test_validate_legacy(acx: Acx) -> None:
    assert acx("forge", "validate", "--legacy", input=LEGACY_VECTOR + "\n").stdout == "ok: 1 frame(s) valid\n"
    result = acx("forge", "validate", input=LEGACY_VECTOR + "\n", code=1)
    assert "<stdin>:1:22: PARSE_014" in result.stderr


# --- encode --------------------------------------------------------------------------------------


def encoded_lines(acx: Acx, *args: str | Path, input: str | None = None) -> list[str]:
    return acx("forge", "encode", *args, input=input).stdout.splitlines()


def roundtrip(acx: Acx, lines: list[str]) -> list[object]:
    return decoded(acx, input="".join(line + "\n" for line in lines))


def test_encode_values_auto(acx: Acx) -> None:
    lines = encoded_lines(acx, "42", "-14", '"hello world"', '{"decimal": "-12.34"}', "plain", "0.5", "-3.25")
    assert lines == [
        UInt(42).to_text(),
        SInt(-14).to_text(),
        Text("hello world").to_text(),
        Dec("-12.34").to_text(),
        Text("plain").to_text(),
        Float(0.5).to_text(),
        Float(-3.25).to_text(),
    ]
    assert roundtrip(acx, lines) == [42, -14, "hello world", "-12.34", "plain", 0.5, -3.25]


def test_encode_typed_json_objects(acx: Acx) -> None:
    lines = encoded_lines(
        acx,
        '{"float": "nan"}',
        '{"float": "-inf"}',
        '{"utf8": "snø"}',
        '{"hex": "ff00"}',
        '{"base64": "//4="}',
        '{"uint": 5, "length_prefixed": true}',
        '{"sint": 3}',
        '{"text": "42"}',
    )
    assert lines[5] == UInt(5, length_prefixed=True).to_text()
    assert lines[6] == SInt(3).to_text()
    assert lines[7] == Text("42").to_text()
    assert roundtrip(acx, lines) == [
        "nan",
        "-inf",
        {"utf8": "snø"},
        {"base64": "/wA="},
        {"base64": "//4="},
        5,
        3,
        "42",
    ]


def test_encode_as_float(acx: Acx) -> None:
    lines = encoded_lines(acx, "--as", "float", "0.1", "nan", "-0.0", "inf", "-2.5e3")
    assert lines == [Float(v).to_text() for v in (0.1, math.nan, -0.0, math.inf, -2500.0)]
    values = roundtrip(acx, lines)
    assert values == [0.1, "nan", -0.0, "inf", -2500.0]
    assert math.copysign(1.0, values[2]) == -1.0  # type: ignore[arg-type]


def test_encode_as_other_profiles(acx: Acx) -> None:
    assert encoded_lines(acx, "--as", "decimal", "0.10", "-12.340", "0") == [
        Dec("0.1").to_text(),
        Dec("-12.34").to_text(),
        Dec("0").to_text(),
    ]
    assert roundtrip(acx, encoded_lines(acx, "--as", "decimal", "0.10")) == ["0.1"]
    assert roundtrip(acx, encoded_lines(acx, "--as", "blob-hex", "ff00")) == [{"base64": "/wA="}]
    assert roundtrip(acx, encoded_lines(acx, "--as", "blob-base64", "aGk=")) == [{"utf8": "hi"}]
    assert roundtrip(acx, encoded_lines(acx, "--as", "blob", "snø")) == [{"utf8": "snø"}]
    assert encoded_lines(acx, "--as", "text", "42", "two words") == [
        Text("42").to_text(),
        Text("two words").to_text(),
    ]
    assert encoded_lines(acx, "--as", "uint", "7", "0x10") == [UInt(7).to_text(), UInt(16).to_text()]
    assert encoded_lines(acx, "--as", "uint-l", "7") == [UInt(7, length_prefixed=True).to_text()]
    assert encoded_lines(acx, "--as", "sint", "-7", "7") == [SInt(-7).to_text(), SInt(7).to_text()]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as", "uint", "abc"], "'abc' is not an integer"),
        (["--as", "uint", "-3"], "ENCODE_001"),
        (["--as", "float", "x"], "'x' is not a float"),
        (["--as", "blob-hex", "zz"], "cannot decode 'zz' as hex"),
        (["--as", "blob-base64", "!!"], "cannot decode '!!' as base64"),
        (["--as", "decimal", "abc"], "ENCODE_002"),
        (["true"], "ENCODE_002"),
        (['{"what": 1}'], "cannot tell which token"),
    ],
)
def test_encode_bad_values(args: list[str], message: str, acx: Acx) -> None:
    result = acx("forge", "encode", *args, code=1)
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert message in result.stderr


def test_encode_json_lines_from_stdin_round_trip(acx: Acx) -> None:
    frame_json = {
        "header": {"TYPE": "LOG", "SEVERITY": "INFO", "N": {"uint": 2}},
        "payload": ["MSG", "hi", {"decimal": "0.50"}, {"float": "nan"}, {"hex": "ff"}, -3],
    }
    values = [frame_json, 42, -14, "hello world", {"decimal": "-12.34"}, 0.25, {"utf8": "ok"}]
    text = (
        "\n".join(json.dumps(value) for value in values[:3])
        + "\n\n"
        + "\n".join(json.dumps(value) for value in values[3:])
    )
    lines = encoded_lines(acx, input=text)
    assert len(lines) == len(values)
    assert parse_frame(lines[0]) == Frame(
        {"TYPE": "LOG", "SEVERITY": "INFO", "N": UInt(2)},
        ["MSG", "hi", Dec("0.5"), Float(math.nan), b"\xff", -3],
    )
    assert roundtrip(acx, lines) == [
        {
            "header": {"N": 2, "SEVERITY": "INFO", "TYPE": "LOG"},
            "payload": ["MSG", "hi", "0.5", "nan", {"base64": "/w=="}, -3],
        },
        42,
        -14,
        "hello world",
        "-12.34",
        0.25,
        {"utf8": "ok"},
    ]


def test_encode_decode_json_is_a_fixed_point(acx: Acx) -> None:
    """decode --json output, fed back to encode line by line, encodes to the same canonical text."""
    source = [SAMPLE.to_text(), *(frame.to_text() for frame in valid_frames())]
    values = roundtrip(acx, source)
    again = encoded_lines(acx, input="\n".join(json.dumps(value) for value in values) + "\n")
    # floats, decimals and blobs decode to JSON shapes that encode to the same profile
    assert roundtrip(acx, again) == values


def test_encode_input_file_and_bad_json(tmp_path: Path, acx: Acx) -> None:
    source = write(tmp_path / "values.jsonl", "1", '"x"')
    assert encoded_lines(acx, "--input", source) == [UInt(1).to_text(), Text("x").to_text()]

    result = acx("forge", "encode", input='1\n\n{"nope\n', code=1)
    assert "<stdin>:3:2: not JSON" in result.stderr
    result = acx("forge", "encode", input='1\n{"uint": -1}\n', code=1)
    assert "<stdin>:2: ENCODE_001" in result.stderr


# --- diff ----------------------------------------------------------------------------------------


def test_diff_ignores_formatting(tmp_path: Path, acx: Acx) -> None:
    frames = valid_frames()
    left = write(tmp_path / "left.fn", *(frame.to_text() for frame in frames))
    messy_log = "  ⧆ ≛TYPE⦙≛⟦LOG⟧ ∴ ≛SEVERITY ⦙ ≛INFO ∷ ≛⟦MSG⟧⦙≛hello ⦙ ≛DETAIL⦙≛⟦more detail⟧ ⧈  "
    assert parse_frame(messy_log) == frames[4]
    right_lines = [frame.to_text() for frame in frames]
    right_lines[4] = messy_log
    right_lines.insert(2, "")
    right = write(tmp_path / "right.fn", *right_lines)
    result = acx("forge", "diff", left, right)
    assert result.stdout == ""
    assert f"same: {len(frames)} frame(s)" in result.stderr


def test_diff_lists_changed_fields_and_items(tmp_path: Path, acx: Acx) -> None:
    left = write(
        tmp_path / "left.fn",
        Frame({"TYPE": "X", "A": UInt(1), "GONE": "bye"}, ["hello", 1, 2]).to_text(),
        Frame({"TYPE": "SAME"}).to_text(),
    )
    right = write(
        tmp_path / "right.fn",
        Frame({"TYPE": "X", "A": UInt(2), "NEW": Dec("0.5")}, ["hello", 3]).to_text(),
        Frame({"TYPE": "SAME"}).to_text(),
        Frame({"TYPE": "EXTRA"}).to_text(),
    )
    result = acx("forge", "diff", left, right, code=1)
    assert result.stdout.splitlines() == [
        "~ frame 1 (X):",
        "  ~ header A: INT-U3 1 → INT-U3 2",
        '  - header GONE = text "bye"',
        '  + header NEW = DECIMAL-T "0.5"',
        "  ~ payload[1]: INT-U3 1 → INT-U3 3",
        "  - payload[2] INT-U3 2",
        "+ frame 3: EXTRA",
    ]
    assert "2 frame(s) differ" in result.stderr

    reverse = acx("forge", "diff", right, left, code=1)
    assert "- frame 3: EXTRA" in reverse.stdout.splitlines()


def test_diff_tells_float_signs_and_nested_frames_apart(tmp_path: Path, acx: Acx) -> None:
    left = write(tmp_path / "l.fn", Frame({"TYPE": "V"}, [0.0, Frame({"TYPE": "A"})]).to_text())
    right = write(tmp_path / "r.fn", Frame({"TYPE": "V"}, [-0.0, Frame({"TYPE": "B"})]).to_text())
    result = acx("forge", "diff", left, right, code=1)
    assert "  ~ payload[0]: FLOAT-T 0.0 → FLOAT-T -0.0" in result.stdout
    assert "  ~ payload[1]: frame A → frame B" in result.stdout


def test_diff_legacy_and_bad_input(tmp_path: Path, acx: Acx) -> None:
    legacy = write(tmp_path / "legacy.fn", LEGACY_VECTOR)
    canonical = write(tmp_path / "canonical.fn", LEGACY_VECTOR_CANONICAL)
    acx("forge", "diff", "--legacy", str(legacy), str(canonical))
    bad = write(tmp_path / "bad.fn", LEGACY_VECTOR_CANONICAL, "", BAD_DIGIT)
    result = acx("forge", "diff", str(canonical), bad, code=1)
    assert f"{bad}:3:14: PARSE_006" in result.stderr
    assert result.stdout == ""


def test_forge_group_help(acx: Acx) -> None:
    result = acx("forge", "--help")
    for command in ("encode", "decode", "validate", "canonicalize", "diff"):
        assert command in result.stdout
