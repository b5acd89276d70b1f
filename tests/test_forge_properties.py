"""Hypothesis properties: round trips for every token kind and whole frames, canonical form, fuzzing."""

from __future__ import annotations

import contextlib
import struct
from decimal import Decimal
from fractions import Fraction

from hypothesis import assume, example, given
from hypothesis import strategies as st

from arcticcodex.errors import ParseError
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
    parse_document,
    parse_frame,
    parse_item,
    parse_token,
    write_document,
)
from arcticcodex.forge.legacy import read_legacy
from arcticcodex.forge.numbers import ternary_to_float
from arcticcodex.forge.record_frames import EvidenceRef, TrainPairFrame
from arcticcodex.forge.tokens import LITERAL_FORBIDDEN_RE

ALPHABET = "⊙⊗Φ⊛≛≗⧆⧈∷∴⦙⟦⟧◦◽"

texts = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40)
words = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs")), min_size=1, max_size=12).filter(
    lambda w: Text(w).is_word
)
doubles = st.integers(min_value=0, max_value=2**64 - 1).map(
    lambda bits: struct.unpack(">d", bits.to_bytes(8, "big"))[0]
)
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: abs(d.as_tuple().exponent) < 400  # type: ignore[operator]
)

tokens = st.one_of(
    texts.map(Text),
    st.integers(min_value=0).map(UInt),
    st.integers(min_value=0, max_value=10**40).map(lambda n: UInt(n, length_prefixed=True)),
    st.integers().map(SInt),
    decimals.map(Dec),
    doubles.map(Float),
    st.binary(max_size=300).map(Blob),
)


def frames_at(depth: int) -> st.SearchStrategy[Frame]:
    items = tokens if depth == 0 else st.one_of(tokens, tokens, frames_at(depth - 1))
    return st.builds(
        Frame,
        st.dictionaries(words, tokens, max_size=5),
        st.lists(items, max_size=6),
    )


frames = frames_at(2)


@given(tokens)
def test_every_token_round_trips(token: object) -> None:
    text = token.to_text()  # type: ignore[attr-defined]
    assert parse_token(text) == token
    assert parse_token(text).to_text() == text


@given(doubles)
def test_every_double_round_trips_bit_for_bit(value: float) -> None:
    back = parse_token(Float(value).to_text())
    assert isinstance(back, Float)
    assert struct.pack(">d", back.value) == struct.pack(">d", value)


@given(doubles)
def test_float_t_mantissa_is_the_shortest(value: float) -> None:
    assume(value == value and abs(value) not in (0.0, float("inf")))
    body = Float(value).to_text()[5:]  # after ≗⊗⊙, the sign trit and ◦
    mantissa = body.split("◽")[1]
    exponent_text = body[: body.index("◽")]
    exponent = int(exponent_text[1:].translate(str.maketrans("⊙⊗Φ", "012")), 3) * (-1 if exponent_text[0] == "⊗" else 1)
    assert mantissa[0] != "⊙" and mantissa[-1] != "⊙"
    n = len(mantissa) - 1  # one digit fewer
    if n == 0:
        return
    scale = exponent - n + 1
    exact = Fraction(abs(value)) / Fraction(3) ** scale
    for candidate in (exact.numerator // exact.denominator, exact.numerator // exact.denominator + 1):
        try:
            assert ternary_to_float(candidate, scale) != abs(value)
        except Exception as error:  # out of range of a double: not the value either
            assert "out of the range" in str(error)


@given(decimals)
def test_decimal_canonical_is_one_text_per_value(value: Decimal) -> None:
    sign, digits, exponent = value.as_tuple()
    padded = Decimal((sign, (*digits, 0, 0, 0), int(exponent) - 3))  # same value, three more zeros
    assert padded == value
    assert Dec(padded).to_text() == Dec(value).to_text()
    assert Dec(-padded if value == 0 else padded) == Dec(value)


@given(frames)
def test_frames_round_trip_and_serialise_canonically(frame: Frame) -> None:
    text = frame.to_text()
    assert parse_frame(text) == frame
    assert canonicalize(text) == text
    assert is_canonical(text)
    assert parse_item(text) == frame


@given(st.lists(frames, max_size=4))
def test_documents_round_trip(frames_list: list[Frame]) -> None:
    assert parse_document(write_document(frames_list)) == frames_list


def _respell(frame: Frame, draw: st.DrawFn) -> str:
    """A non-canonical but equivalent spelling: shuffled header, whitespace, literals, leading zeros."""
    ws = lambda: draw(st.sampled_from(["", " ", "\t", "  "]))  # noqa: E731
    fields = []
    keys = draw(st.permutations(sorted(frame.header)))
    for key in keys:
        fields.append(f"≛{key}{ws()}⦙{ws()}{_respell_token(frame.header[key], draw)}")
    items = [_respell(item, draw) if isinstance(item, Frame) else _respell_token(item, draw) for item in frame.payload]
    return (
        "⧆" + ws() + (ws() + "∴" + ws()).join(fields) + ws() + "∷" + ws() + (ws() + "⦙" + ws()).join(items) + ws() + "⧈"
    )


def _respell_token(token: object, draw: st.DrawFn) -> str:
    text = token.to_text()  # type: ignore[attr-defined]
    if isinstance(token, Text) and token.is_word and draw(st.booleans()):
        return "≛⟦" + token.text + "⟧"
    if isinstance(token, UInt) and not token.length_prefixed:
        return "≗⊙⊙" + "⊙" * draw(st.integers(0, 3)) + text[3:]
    if isinstance(token, SInt) and token.value == 0 and draw(st.booleans()):
        return "≗⊙⊗◦⊗◽⊙"
    return text


@given(st.data())
def test_canonicalize_gives_one_text_per_value(data: st.DataObject) -> None:
    frame = data.draw(frames)
    variant = _respell(frame, data.draw)
    assert parse_frame(variant) == frame
    assert canonicalize(variant) == frame.to_text()
    assert canonicalize(canonicalize(variant)) == canonicalize(variant)


fuzz_text = st.text(
    st.one_of(
        st.sampled_from(ALPHABET),
        st.sampled_from(ALPHABET),
        st.sampled_from(" \n\tabcZ_-0123x,"),
        st.characters(),
    ),
    max_size=80,
)


@given(fuzz_text)
@example("⧆" * 100)
@example("⧆∷" * 40 + "⧈" * 40)
@example("≗⊗⊙⊙◦⊙" + "Φ" * 30 + "◽⊗")
@example("≗⊙⊙" + "Φ" * 5000)
@example("≗⊗⊗⊙◦" + "Φ" * 30 + "◽⊗")
def test_arbitrary_text_parses_or_raises_parse_error(text: str) -> None:
    for parse in (parse_frame, parse_document, parse_item, parse_token, read_legacy):
        try:
            parse(text)
        except ParseError as error:
            assert error.code.startswith("PARSE_")
            assert error.line is not None and error.column is not None


@given(st.lists(st.sampled_from([*ALPHABET, "≛a", "≗⊙⊙⊗", "≛⟦x y⟧", " ", "\n"]), max_size=30))
def test_symbol_soup_parses_or_raises_parse_error(parts: list[str]) -> None:
    text = "".join(parts)
    for parse in (parse_frame, parse_document, parse_item, read_legacy):
        with contextlib.suppress(ParseError):
            parse(text)


@given(texts)
def test_text_tokens_choose_word_or_literal(value: str) -> None:
    token = Text(value)
    text = token.to_text()
    assert text.startswith("≛⟦") != token.is_word
    assert not LITERAL_FORBIDDEN_RE.search(text)
    assert parse_token(text) == token


nonempty_texts = texts.filter(lambda text: text.strip() != "" and not LITERAL_FORBIDDEN_RE.search(text))
evidence_refs = st.builds(
    EvidenceRef,
    chunk_id=nonempty_texts,
    doc_id=nonempty_texts,
    sha256=st.binary(min_size=32, max_size=32).map(bytes.hex),
    span=st.none() | st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)).map(lambda s: (min(s), max(s))),
    source=st.none() | texts,
)


@given(
    pair_id=nonempty_texts,
    index=st.integers(0, 10**9),
    quality=st.decimals(0, 1, places=4),
    signer=nonempty_texts,
    instruction=st.text(max_size=300),
    completion=st.text(max_size=300),
    teachers=st.lists(nonempty_texts, max_size=3),
    evidence=st.lists(evidence_refs, max_size=3),
)
def test_train_pair_fast_bytes_are_the_canonical_frame_bytes(
    pair_id: str,
    index: int,
    quality: Decimal,
    signer: str,
    instruction: str,
    completion: str,
    teachers: list[str],
    evidence: list[EvidenceRef],
) -> None:
    """The signature covers TrainPairFrame.to_bytes(): it must be exactly the generic encoder's output."""
    assume(all(ch < "\ud800" or ch > "\udfff" for ch in instruction + completion))
    frame = TrainPairFrame(
        pair_id=pair_id,
        index=index,
        quality=quality,
        signer=signer,
        key_id="ab" * 32,
        created_at="2026-11-25T12:00:00Z",
        instruction=instruction,
        completion=completion,
        teachers=tuple(teachers),
        evidence=tuple(evidence),
    )
    assert frame.to_bytes() == frame.to_frame().to_bytes()
    assert parse_frame(frame.to_bytes().decode("utf-8")) == frame.to_frame()
