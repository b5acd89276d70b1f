"""``arcticcodex forge`` at the codec's bounds: huge integers, the digit cap, lone surrogates (issue 11)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from arcticcodex.forge import Frame, SInt, UInt
from conftest import Acx
from test_cli_forge import write


def _digits_value(digits: str) -> int:
    """int(digits) with Python's 4,300-digit limit lifted for the reference value only."""
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return int(digits)
    finally:
        sys.set_int_max_str_digits(before)


@pytest.mark.parametrize("length", [5_000, 100_000])
def test_decode_json_writes_huge_integers_as_digit_strings_that_encode_reads_back(length: int, acx: Acx) -> None:
    digits = "9" + ("0123456789" * (length // 10 + 1))[: length - 1]
    value = _digits_value(digits)
    tokens = [UInt(value).to_text(), SInt(-value).to_text(), Frame({"N": value}, [-value]).to_text()]
    result = acx("forge", "decode", "--json", input="\n".join(tokens) + "\n")
    decoded_items = json.loads(result.stdout)  # readable by any json.loads: no number over 4,300 digits
    assert decoded_items == [
        {"uint": digits},
        {"sint": "-" + digits},
        {"header": {"N": {"uint": digits}}, "payload": [{"sint": "-" + digits}]},
    ]
    lines = "".join(json.dumps(item) + "\n" for item in decoded_items)
    encoded = acx("forge", "encode", input=lines)
    assert encoded.stdout.splitlines() == tokens  # the round trip is exact
    described = acx("forge", "decode", input=tokens[0] + "\n")
    assert described.stdout.strip() == f"INT-U3 {digits[:60]}… ({length:,} digits)"


def test_decode_json_keeps_integers_up_to_4300_digits_as_numbers(acx: Acx) -> None:
    value = _digits_value("7" * 4300)
    result = acx("forge", "decode", "--json", input=UInt(value).to_text() + "\n")
    assert result.stdout.startswith("[" + "7" * 4300 + "]")


def test_decode_of_an_int_u3_past_the_digit_cap_is_a_located_error(tmp_path: Path, acx: Acx) -> None:
    source = write(tmp_path / "huge.fn", "⧆∷⧈", "⧆∷≗⊙⊙" + "⊗" * 210_001 + "⧈")
    result = acx("forge", "decode", "--json", source, code=1)
    assert result.stdout == ""
    assert f"{source}:2:210006: PARSE_019 INT-U3 has 210,001 digits; a ForgeNumerics-S number has at most " in (
        result.output
    )
    assert "210,000 base-3 digits (about 100,000 decimal digits)" in result.output
    assert "hint: ForgeNumerics-S numbers are for measurements and counts; store larger data as BLOB-T" in (
        result.output
    )


def test_encode_refuses_integers_past_the_cap_with_the_cap_in_the_message(acx: Acx) -> None:
    result = acx("forge", "encode", input=json.dumps({"uint": "9" * 100_197}) + "\n", code=1)
    assert "<stdin>:1: ENCODE_001 INT-U3 holds at most 210,000 base-3 digits (about 100,000 decimal digits)" in (
        result.output
    )
    assert acx("forge", "encode", "--as", "uint", "9" * 5000).stdout.startswith("≗⊙⊙")  # past 4,300 digits is fine


def test_encode_names_a_lone_surrogate_instead_of_crashing(acx: Acx) -> None:
    argument = acx("forge", "encode", "--as", "blob", "ab\udcffcd", code=1)  # what a non-UTF-8 argv byte becomes
    assert "ENCODE_002 the value holds a lone surrogate U+DCFF at index 2, which UTF-8 cannot encode" in argument.output
    assert "hint: replace it with U+FFFD" in argument.output
    line = json.dumps({"utf8": "x" * 5000 + "\ud800"})  # JSON spells it as the escape \ud800
    piped = acx("forge", "encode", input=line + "\n", code=1)
    assert "<stdin>:1: line 1:5001: ENCODE_002 the utf8 text holds a lone surrogate U+D800 at index 5,000" in (
        piped.output
    )


def test_decode_of_a_file_holding_an_encoded_surrogate_is_a_message(tmp_path: Path, acx: Acx) -> None:
    source = tmp_path / "cesu.fn"
    source.write_bytes("⧆∷≗Φ⊙".encode() + "⊙⊗Φ⊛".encode() * 3000 + b"\xed\xa0\x80\xe2\xa7\x88\n")  # UTF-8 of U+D800
    result = acx("forge", "decode", "--json", source, code=1)
    assert "not UTF-8 text (byte 0xed)" in result.stderr and str(source) in result.stderr
