"""The chunker: exact offsets, size and overlap limits, whole paragraphs, headings, and speed."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from arcticcodex.errors import ConfigError
from arcticcodex.vault.chunker import ChunkSpan, chunk_text, iter_headings

# Building blocks that exercise every rule: words (ASCII, accented, CJK, emoji, combining marks),
# sentence ends, every kind of line break and blank line, tabs, odd Unicode spaces, headings, fences.
FRAGMENTS = st.sampled_from(
    [
        "word", "naïve", "日本語", "😀", "👩‍👩‍👧", "e\u0301", "Straße", "x" * 150,
        " ", "  ", "\t", "\u00a0", "\u2003", "\u2028", "\x0c", "\x1c",
        ". ", "! ", "? ", "… ", ".",
        "\n", "\r\n", "\r", "\n\n", "\r\n\r\n", "\n \t\n", "\n\n\n",
        "\n# Title\n", "\n## Install ##\n", "\n###### deep\n", "\n#nospace\n", "\n```\n", "\n~~~\n",
    ]
)  # fmt: skip
TEXTS = st.one_of(
    st.lists(FRAGMENTS, max_size=400).map("".join),
    st.text(max_size=600),
    st.lists(st.one_of(FRAGMENTS, st.text(max_size=30)), max_size=150).map("".join),
)
SIZES = st.integers(min_value=100, max_value=400).flatmap(
    lambda size: st.tuples(st.just(size), st.integers(min_value=0, max_value=size - 1))
)


def check_invariants(text: str, chunks: list[ChunkSpan], max_chars: int, overlap_chars: int) -> None:
    encoded = text.encode("utf-8")
    covered = [False] * len(text)
    previous: ChunkSpan | None = None
    for chunk in chunks:
        piece = text[chunk.start : chunk.end]
        assert piece, chunk
        assert encoded[chunk.start_byte : chunk.end_byte] == piece.encode("utf-8")
        assert len(piece) <= max_chars
        assert piece == piece.strip(), chunk
        if previous is not None:
            assert chunk.start > previous.start
            assert chunk.end > previous.end
            assert previous.end - chunk.start <= overlap_chars
        for index in range(chunk.start, chunk.end):
            covered[index] = True
        previous = chunk
    missed = [i for i, char in enumerate(text) if not char.isspace() and not covered[i]]
    assert not missed, missed[:10]


@given(TEXTS, SIZES)
@example("", (100, 0))
@example(" \t\r\n\u2028 ", (100, 99))
@example("\ufeff# Title\n\nbody", (100, 10))
@example("  # Title\n\nbody", (100, 10))
@example("\ufeff  ## Title\r\n\r\n```\n# no\n```\nbody", (100, 10))
def test_invariants_hold_for_any_text(text: str, sizes: tuple[int, int]) -> None:
    max_chars, overlap_chars = sizes
    chunks = chunk_text(text, max_chars=max_chars, overlap_chars=overlap_chars)
    check_invariants(text, chunks, max_chars, overlap_chars)
    assert chunk_text(text, max_chars=max_chars, overlap_chars=overlap_chars) == chunks
    if not text.strip():
        assert chunks == []


PARAGRAPHS = st.lists(
    st.text(st.sampled_from("abc xyz.é😀\t"), min_size=1, max_size=120)
    .map(str.strip)
    .filter(bool)
    .map(lambda p: p.replace("\n", " ")),
    min_size=1,
    max_size=40,
)
SEPARATORS = st.sampled_from(["\n\n", "\r\n\r\n", "\n \n", "\n\t\n\n"])


@given(PARAGRAPHS, SEPARATORS, SIZES)
def test_paragraphs_that_fit_are_never_cut(paragraphs: list[str], separator: str, sizes: tuple[int, int]) -> None:
    max_chars, overlap_chars = sizes
    text = separator.join(paragraphs)
    chunks = chunk_text(text, max_chars=max_chars, overlap_chars=overlap_chars)
    check_invariants(text, chunks, max_chars, overlap_chars)
    position = 0
    for paragraph in paragraphs:
        start = text.index(paragraph, position)
        end = start + len(paragraph)
        position = end
        assert any(c.start <= start and end <= c.end for c in chunks), paragraph
        # A paragraph is a piece: chunks begin and end on paragraph boundaries here.
        for chunk in chunks:
            assert not start < chunk.start < end
            assert not start < chunk.end < end


def test_small_text_is_one_chunk_including_blank_lines() -> None:
    text = "\n\n  First paragraph.\n\n\nSecond one.  \n"
    [chunk] = chunk_text(text)
    assert text[chunk.start : chunk.end] == "First paragraph.\n\n\nSecond one."
    assert chunk.heading is None
    assert (chunk.start_byte, chunk.end_byte) == (chunk.start, chunk.end)


def test_empty_and_whitespace_only_text() -> None:
    assert chunk_text("") == []
    assert chunk_text(" \n\t\r\n \u3000 ") == []


def test_headings_are_attached_and_start_their_section() -> None:
    intro = "Intro text. " * 5
    install = "Run the installer and follow the prompts. " * 4
    usage = "Call the tool with a file. " * 3
    text = f"{intro}\n\n## Install\n\n{install}\n\n# Usage #\n\n{usage}"
    chunks = chunk_text(text, max_chars=200, overlap_chars=0)
    pieces = [text[c.start : c.end] for c in chunks]
    assert [c.heading for c in chunks] == [None, "Install", "Usage"]
    assert pieces[1].startswith("## Install\n\n") and pieces[2].startswith("# Usage #\n\n")


def test_a_chunk_does_not_end_on_a_heading() -> None:
    first = "a" * 80
    text = f"{first}\n\n# Next\n\n{'b' * 90}"
    chunks = chunk_text(text, max_chars=100, overlap_chars=0)
    assert [text[c.start : c.end] for c in chunks] == [first, f"# Next\n\n{'b' * 90}"]
    assert [c.heading for c in chunks] == [None, "Next"]


def test_heading_rules() -> None:
    assert list(iter_headings("  # Indented")) == [(2, 12, "Indented")]
    assert list(iter_headings("\ufeff # Bom")) == [(0, 7, "Bom")]
    text = "\ufeff# Top\n#nospace\n```\n# not a heading\n```\n  ### Indented ###  \n####### seven\n# \n"
    assert [title for _, _, title in iter_headings(text)] == ["Top", "Indented"]
    start, end, _ = list(iter_headings(text))[1]
    assert text[start:end] == "### Indented ###"


def test_long_paragraph_splits_at_sentences_then_whitespace_then_hard() -> None:
    sentence = "This sentence is about sixty characters long, give or take. "
    text = (sentence * 6).strip()
    chunks = chunk_text(text, max_chars=130, overlap_chars=0)
    assert all(text[c.start : c.end].endswith("take.") for c in chunks)
    words = " ".join(["word"] * 100)
    for chunk in chunk_text(words, max_chars=100, overlap_chars=0):
        assert text_piece_is_whole_words(words[chunk.start : chunk.end])
    solid = "x" * 250
    spans = [(c.start, c.end) for c in chunk_text(solid, max_chars=100, overlap_chars=0)]
    assert spans == [(0, 100), (100, 200), (200, 250)]


def text_piece_is_whole_words(piece: str) -> bool:
    return all(word == "word" for word in piece.split(" "))


def test_overlap_is_made_of_whole_pieces() -> None:
    sentences = [f"Sentence number {i} ends here." for i in range(40)]
    text = " ".join(sentences)
    chunks = chunk_text(text, max_chars=200, overlap_chars=70)
    assert len(chunks) > 3
    for before, after in itertools.pairwise(chunks):
        shared = text[after.start : before.end]
        assert 0 < len(shared) <= 70
        assert shared.startswith("Sentence") and shared.endswith("here.")


def test_byte_offsets_for_non_ascii() -> None:
    text = "Ünïcödé 😀 paragraph.\n\n" + "Второй абзац. " * 30
    chunks = chunk_text(text, max_chars=150, overlap_chars=40)
    encoded = text.encode()
    assert chunks[0].start_byte == 0 and chunks[0].end_byte > chunks[0].end
    for chunk in chunks:
        assert encoded[chunk.start_byte : chunk.end_byte].decode() == text[chunk.start : chunk.end]


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"max_chars": 99}, "max_chars"),
        ({"max_chars": True}, "max_chars"),
        ({"max_chars": 150.0}, "max_chars"),
        ({"overlap_chars": -1}, "overlap_chars"),
        ({"max_chars": 300, "overlap_chars": 300}, "overlap_chars"),
    ],
)
def test_invalid_arguments_raise_config_error(options: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        chunk_text("some text", **options)  # type: ignore[arg-type]


def test_ten_megabytes_chunk_quickly() -> None:
    rng = random.Random(7)
    vocabulary = ["alpha", "beta", "gamma", "délta", "ε", "😀", "zeta", "eta", "theta"]
    paragraphs = []
    size = 0
    while size < 10_000_000:
        sentences = [
            " ".join(rng.choice(vocabulary) for _ in range(rng.randint(3, 30))) + "." for _ in range(rng.randint(1, 12))
        ]
        paragraph = " ".join(sentences)
        if rng.random() < 0.05:
            paragraph = f"## {rng.choice(vocabulary)}"
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    text = "\n\n".join(paragraphs)
    chunks = chunk_text(text)
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    assert chunks[-1].end_byte == len(text.encode())
