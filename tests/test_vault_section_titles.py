"""Underlined section titles: Markdown's setext headings, reStructuredText and plain text, through an import.

Before, only ``#`` lines were headings: a README written with ``====`` underlines, a reStructuredText
manual (``.rst`` was not even importable) or the Python documentation's text edition came out with no
heading path at all and their title lines glued to the text under them as body.  Each test imports a
real file and reads what the vault stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from arcticcodex.vault import Vault, import_paths
from arcticcodex.vault.chunk_stream import ChunkStream
from arcticcodex.vault.chunker import ChunkSpan, chunk_text
from arcticcodex.vault.ingest import STREAM_FROM_BYTES
from arcticcodex.vault.loaders import load_document
from arcticcodex.vault.section_titles import TitleStyle, section_titles
from arcticcodex.workspace import Workspace
from embedders import RecordingBackend

SETEXT = """Otter guide
===========

Read this first.

Installation
------------

Use the distribution's package manager to install the otter tool.

Usage
-----

Run the otter tool with a file name and it prints a summary.
"""

RST = """=====
heapq
=====

Heap queue algorithm, also known as the priority queue algorithm.

Basic examples
==============

.. function:: nsmallest(n, iterable, key=None)

   Return a list with the n smallest elements from the dataset defined by iterable.

# a line that is text in reStructuredText

Implementation notes
--------------------

A priority queue is common for a heap, and it presents several implementation challenges.

Short
--

An underline shorter than its title is not one.
"""

TEXT_EDITION = """heapq — Heap queue algorithm
****************************

This module provides an implementation of the heap queue algorithm.

Basic Examples
==============

A heapsort can be implemented by pushing all values onto a heap.

Priority Queue Implementation Notes
===================================

A priority queue is common use for a heap.
"""


@pytest.fixture
def vault(workspace: Workspace) -> Iterator[Vault]:
    with Vault(workspace, embedder=RecordingBackend()) as opened:
        yield opened


def import_file(vault: Vault, path: Path, text: str) -> list[tuple[str, str | None]]:
    path.write_bytes(text.encode("utf-8"))
    report = import_paths(vault, [path])
    assert report.failed == [], report.failed
    rows = vault.conn.execute("SELECT text, heading_path, start_byte, end_byte FROM chunks ORDER BY sequence")
    stored = []
    data = path.read_bytes()
    for text_stored, path_text, start, end in rows:
        assert data[start:end].decode("utf-8") == text_stored  # offsets still point into the file's bytes
        stored.append((text_stored, path_text))
    return stored


def test_markdown_setext_headings_give_paths_and_boundaries(vault: Vault, tmp_path: Path) -> None:
    chunks = import_file(vault, tmp_path / "guide.md", SETEXT)
    assert path_of(chunks, "install the otter tool.") == "Otter guide › Installation"
    assert path_of(chunks, "it prints a summary.") == "Otter guide › Usage"
    assert all("Installation" not in text or "Usage" not in text for text, _ in chunks)  # a section boundary
    assert all(not text.startswith(("===", "---")) for text, _ in chunks)  # an underline never opens a chunk
    (title,) = vault.conn.execute("SELECT title FROM documents").fetchone()
    assert title == "Otter guide"


@pytest.mark.parametrize(
    "text",
    [
        "Para line one\nline two\n---\n\nbody\n",  # a paragraph's second line: not a heading here
        "Intro.\n\n---\n\nAfter a thematic break.\n",  # a rule after a blank line
        "```\nnot a title\n---\n```\n",  # inside a fenced code block
        "---\ntitle: front matter\n---\n\nbody\n",  # YAML front matter
        "| a | b |\n|---|---|\n| 1 | 2 |\n",  # a table
        "- a list item\n---\n",  # a list item
        "    indented code\n    ---------\n",  # a literal block
        "===\n===\n===\n",  # punctuation under punctuation
        "Title\n***\n",  # Markdown underlines are = and - only
    ],
)
def test_what_is_not_a_markdown_title(text: str) -> None:
    assert section_titles(text, "markdown") is None


def path_of(chunks: list[tuple[str, str | None]], sentence: str) -> str | None:
    (path,) = [path for text, path in chunks if sentence in text]
    return path


def test_rst_imports_with_levels_by_first_appearance_and_definitions_kept(vault: Vault, tmp_path: Path) -> None:
    chunks = import_file(vault, tmp_path / "heapq.rst", RST)
    assert path_of(chunks, "Heap queue algorithm, also known as") == "heapq"
    definition = next(text for text, _ in chunks if ".. function:: nsmallest" in text)
    assert "Return a list with the n smallest elements" in definition  # the definition keeps its description
    assert path_of(chunks, ".. function:: nsmallest(n, iterable, key=None)") == "heapq › Basic examples"
    # "-" first appears third, so it is level 3: under "Basic examples", not beside it
    assert path_of(chunks, "it presents several implementation challenges.") == (
        "heapq › Basic examples › Implementation notes"
    )
    assert all(not text.startswith("# a line") for text, _ in chunks)  # no "#" headings in reST: it is text
    assert path_of(chunks, "# a line that is text in reStructuredText") == "heapq › Basic examples"
    assert path_of(chunks, "Short\n--\n\nAn underline shorter") == "heapq › Basic examples › Implementation notes"
    (title,) = vault.conn.execute("SELECT title FROM documents").fetchone()
    assert title == "heapq"


def test_the_python_docs_text_edition_gets_its_sections(vault: Vault, tmp_path: Path) -> None:
    chunks = import_file(vault, tmp_path / "heapq.txt", TEXT_EDITION)
    assert len(chunks) == 3  # one per section: a title is a boundary
    assert path_of(chunks, "This module provides") == "heapq — Heap queue algorithm"
    assert path_of(chunks, "A heapsort can be implemented") == "heapq — Heap queue algorithm › Basic Examples"
    assert path_of(chunks, "A priority queue is common use for a heap.") == (
        "heapq — Heap queue algorithm › Priority Queue Implementation Notes"
    )


def test_plain_text_keeps_its_hash_headings_beside_underlined_ones() -> None:
    text = "# Notes\n\nfirst\n\nResults\n=======\n\nsecond\n"
    loaded = load_document(Path("notes.txt"), text.encode())
    assert loaded.headings == [(0, 7, "Notes", 1), (16, 31, "Results", 1)]
    assert load_document(Path("plain.txt"), b"# Only hash\n\nbody\n").headings is None  # the chunker's own path


def test_windows_line_endings_and_an_overline_that_is_the_previous_underline() -> None:
    text = "Title\r\n=====\r\n\r\nbody\r\n\r\nNext\r\n====\r\n"
    titles = section_titles(text, "rst")
    assert titles == [(0, 12, "Title", 1), (24, 34, "Next", 1)]
    assert text[0:12] == "Title\r\n=====" and text[24:34] == "Next\r\n===="
    stacked = "First\n=====\nSecond\n=====\n"  # no blank line: "Second" is not a title's first line
    assert section_titles(stacked, "rst") == [(0, 11, "First", 1)]


def test_an_unknown_style_is_refused() -> None:
    with pytest.raises(ValueError, match="title style 'asciidoc'"):
        section_titles("x", "asciidoc")  # type: ignore[arg-type]


def long_document() -> str:
    """Sixty sections under alternating underlines and some ``#`` headings, with fenced blocks that run
    across many stream sections and hold a fake title inside."""
    parts = []
    for n in range(60):
        title = f"Section {n}"
        if n % 7 == 3:
            parts.append(f"## {title}")
        else:
            parts.append(f"{title}\n{'=-'[n % 2] * len(title)}")
        parts.extend(f"Paragraph {n}.{k} " + "word " * (10 + (n * k) % 40) for k in range(1 + n % 4))
        if n % 9 == 4:  # a fence holding blank lines and a fake title, longer than a stream section
            parts.append("```\nnot a title\n-----------\n\n" + "\n\n".join(["code line"] * 300) + "\n```")
    return "\n\n".join(parts)


@pytest.mark.parametrize("style", ["markdown", "text"])
def test_a_streamed_text_gets_the_same_titles_as_one_read_whole(style: TitleStyle) -> None:
    text = long_document()
    whole = chunk_text(text, max_chars=300, overlap_chars=80, headings=section_titles(text, style))
    for section_chars in range(1200, 1500, 23):  # sections end in many places, inside fences too
        stream = ChunkStream(max_chars=300, overlap_chars=80, section_chars=section_chars, title_style=style)
        streamed: list[ChunkSpan] = []
        for start in range(0, len(text), 997):
            streamed.extend(span for span, _ in stream.feed(text[start : start + 997]))
        streamed.extend(span for span, _ in stream.finish())
        assert streamed == whole, section_chars
    paths = {chunk.heading_path for chunk in whole}
    if style == "markdown":  # "=" is level 1 and "-" level 2; "## Section 3" sits beside "Section 2"
        assert "Section 0" in paths and "Section 2 › Section 3" in paths
        assert not any("not a title" in (path or "") for path in paths)  # fenced: text, in every section
    else:  # reStructuredText rules: levels by first appearance, no fences
        assert "Section 0 › Section 1" in paths


def test_a_large_markdown_file_streams_in_with_its_setext_titles(vault: Vault) -> None:
    body = long_document()
    text = body + "\n\n" + "\n\n".join(f"Filler paragraph {n}. " + "otter " * 40 for n in range(17_000))
    path = vault.workspace.root / "big.md"
    path.write_bytes(text.encode())
    assert path.stat().st_size >= STREAM_FROM_BYTES
    report = import_paths(vault, [path])
    assert report.added == ["big.md"] and not report.failed
    rows = vault.conn.execute("SELECT start_byte, end_byte, heading_path FROM chunks ORDER BY sequence").fetchall()
    expected = chunk_text(text, headings=section_titles(text, "markdown"))
    assert [tuple(row) for row in rows] == [(c.start_byte, c.end_byte, c.heading_path) for c in expected]
    (title,) = vault.conn.execute("SELECT title FROM documents").fetchone()
    assert title == "Section 0"


TITLE_BITS = st.sampled_from(
    ["word", "Title", "Setup guide", "é😀", " ", "\t", ". ", "\n", "\r\n", "x" * 40, "\n=====\n", "\n-----\n",
     "\n***\n", "===", "\n```\n", "\n~~~\n", "\n# Hash\n", "- item", "> quote", "    indented"]
)  # fmt: skip
# Paragraphs of at most 8 bits (≤ 320 characters) joined by blank lines: every stream section (≥ 400
# characters) holds a blank line to end at, the case where streaming must equal the whole text.
TITLED_TEXTS = st.tuples(
    st.lists(st.lists(TITLE_BITS, min_size=1, max_size=8).map("".join), min_size=1, max_size=40),
    st.sampled_from(["\n\n", "\r\n\r\n", "\n \t\n"]),
).map(lambda parts: parts[1].join(parts[0]))
# Anything, long lines and long stretches without a blank line included: sections may end mid-line.
ANY_TITLED_TEXTS = st.lists(st.sampled_from([*TITLE_BITS.elements, "x" * 150, "\n\n", "\r"]), max_size=300).map("".join)


def stream_spans(text: str, style: TitleStyle, max_chars: int, section_chars: int) -> list[ChunkSpan]:
    stream = ChunkStream(
        max_chars=max_chars, overlap_chars=max_chars // 4, section_chars=section_chars, title_style=style
    )
    return [span for span, _ in stream.feed(text)] + [span for span, _ in stream.finish()]


@given(TITLED_TEXTS, st.sampled_from(["markdown", "text", "rst"]), st.integers(100, 300), st.integers(1, 3))
@example("Title\n=====\n\n```\n\nFake\n-----\n\n" + "a. " * 30 + "\n```\n\nReal\n----\n\nbody", "markdown", 100, 1)
def test_streamed_titles_are_whole_text_titles_when_sections_end_at_blank_lines(
    text: str, style: TitleStyle, max_chars: int, sections: int
) -> None:
    titles = section_titles(text, style)
    for start, end, title, level in titles or []:
        assert 0 <= start < end <= len(text) and 1 <= level <= 6
        assert title in text[start:end] and title == title.strip() and "\n" not in title
    spans = [(start, end) for start, end, _, _ in titles or []]
    assert spans == sorted(spans) and all(a[1] <= b[0] for a, b in pairwise(spans))
    whole = chunk_text(text, max_chars=max_chars, overlap_chars=max_chars // 4, headings=titles)
    assert stream_spans(text, style, max_chars, 4 * max_chars * sections) == whole


@given(ANY_TITLED_TEXTS, st.sampled_from(["markdown", "text", "rst"]), st.integers(100, 300))
@example("x" * 600 + "\n=====\n", "markdown", 100)  # a stream section starting mid-line over an underline
def test_streamed_titles_keep_every_promise_for_any_text(text: str, style: TitleStyle, max_chars: int) -> None:
    """Sections cut without a blank line may find fewer titles; offsets, limits and coverage still hold."""
    encoded = text.encode()
    covered = [False] * len(text)
    previous: ChunkSpan | None = None
    for span in stream_spans(text, style, max_chars, 4 * max_chars):
        piece = text[span.start : span.end]
        assert piece and piece == piece.strip() and len(piece) <= max_chars
        assert encoded[span.start_byte : span.end_byte] == piece.encode()
        if previous is not None:
            assert span.start > previous.start and span.end > previous.end
        covered[span.start : span.end] = [True] * (span.end - span.start)
        previous = span
    assert all(covered[i] or char.isspace() for i, char in enumerate(text))
