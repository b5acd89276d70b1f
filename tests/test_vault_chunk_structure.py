"""Structure-aware chunks: headings and definitions stay with their text, and each chunk knows its heading path."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pytest

from arcticcodex.vault.chunk_stream import ChunkStream
from arcticcodex.vault.chunker import ChunkSpan, chunk_text
from arcticcodex.vault.loaders import load_document

FILLER = "This paragraph is here to take up room in the chunk, as the prose of a module overview does. "

# An API reference in Markdown whose definitions are signature lines followed by their description.  The
# old greedy packer put the overview and the first signature in one chunk and the description in the next.
MARKDOWN_API = "\n\n".join(
    [
        "# heapq",
        FILLER * 2,
        "heapq.nsmallest(n, iterable, key=None)",
        "Return a list with the n smallest elements from the dataset defined by iterable. "
        "Equivalent to sorted(iterable, key=key)[:n] but faster for small n.",
        "heapq.nlargest(n, iterable, key=None)",
        "Return a list with the n largest elements from the dataset defined by iterable.",
        "heapq.merge(*iterables, key=None, reverse=False)",
        "Merge multiple sorted inputs into a single sorted output, lazily.",
    ]
)
DEFINITIONS = {
    "heapq.nsmallest(n, iterable, key=None)": "Return a list with the n smallest",
    "heapq.nlargest(n, iterable, key=None)": "Return a list with the n largest",
    "heapq.merge(*iterables, key=None, reverse=False)": "Merge multiple sorted inputs",
}

REST_API = """Bisection
=========

.. function:: bisect_left(a, x, lo=0, hi=len(a))

   Locate the insertion point for x in a to maintain sorted order. The parameters lo and hi may be used
   to specify a subset of the list which should be considered.

.. function:: insort_left(a, x, lo=0, hi=len(a))

   Insert x in a in sorted order. Keep in mind that the search is logarithmic but the insertion is
   linear, which dominates for long lists.
"""

PYTHON_DOC = '''def parse(text, *, strict=False):

    """Parse text into a tree."""

def render(tree, width=80):

    """Render a tree back into text no wider than width columns, wrapping long lines at spaces."""
'''

HTML_API = """<!doctype html><html><head><title>heapq — Heap queue algorithm</title></head><body>
<h1>heapq — Heap queue algorithm</h1>
<p>This module provides an implementation of the heap queue algorithm, also known as the priority queue.</p>
<h2>Basic functions</h2>
<dl><dt>heapq.heappush(heap, item)</dt><dd><p>Push the value item onto the heap, keeping the invariant.</p></dd>
<dt>heapq.heappop(heap)</dt><dd><p>Pop and return the smallest item from the heap, keeping the invariant.</p></dd></dl>
<h3>Advanced</h3>
<dl><dt>heapq.heapreplace(heap, item)</dt><dd><p>Pop and return the smallest item, then push the new item.</p></dd></dl>
<h2>Theory</h2>
<p>Heaps are arrays for which a[k] &lt;= a[2*k+1] and a[k] &lt;= a[2*k+2] for all k.</p>
</body></html>"""


def pieces(text: str, chunks: list[ChunkSpan]) -> list[str]:
    return [text[c.start : c.end] for c in chunks]


def assert_definitions_with_their_text(texts: list[str], definitions: dict[str, str]) -> None:
    """Each definition is in a chunk together with its description, and never ends a chunk without it."""
    for signature, description in definitions.items():
        holding = [t for t in texts if signature in t]
        assert holding, signature
        assert all(description in t for t in holding), (signature, holding)


def test_markdown_definitions_stay_with_their_description_one_per_chunk() -> None:
    chunks = chunk_text(MARKDOWN_API, max_chars=300, overlap_chars=60)
    texts = pieces(MARKDOWN_API, chunks)
    assert_definitions_with_their_text(texts, DEFINITIONS)
    for text in texts:  # a chunk holds one definition (so it scores for that one), not a run of them
        assert sum(signature in text for signature in DEFINITIONS) <= 1, text
    assert texts[1].startswith("heapq.nsmallest(") and texts[1].endswith("faster for small n.")
    assert {c.heading_path for c in chunks} == {"heapq"}


def test_a_larger_chunk_size_still_keeps_one_definition_per_chunk() -> None:
    chunks = chunk_text(MARKDOWN_API, max_chars=1200, overlap_chars=200)
    texts = pieces(MARKDOWN_API, chunks)
    assert len(texts) == 4
    assert_definitions_with_their_text(texts, DEFINITIONS)


def test_rest_directives_stay_with_their_indented_description() -> None:
    text = "# Bisection\n\n" + REST_API.split("=========\n\n", 1)[1]
    texts = pieces(text, chunk_text(text, max_chars=200, overlap_chars=40))
    assert_definitions_with_their_text(
        texts,
        {
            ".. function:: bisect_left(": "Locate the insertion point",
            ".. function:: insort_left(": "Insert x in a in sorted order",
        },
    )


def test_python_definitions_stay_with_their_docstring() -> None:
    texts = pieces(PYTHON_DOC, chunk_text(PYTHON_DOC, max_chars=140, overlap_chars=20))
    # each definition fits with its docstring, but not with the next one's
    assert len(texts) == 2
    assert texts[0].startswith("def parse(") and texts[0].endswith('into a tree."""')
    assert texts[1].startswith("def render(") and texts[1].endswith('at spaces."""')


def test_heading_paths_follow_markdown_levels_exactly() -> None:
    text = "\n\n".join(
        [
            "Preface without a heading.",
            "# Guide",
            "Welcome.",
            "## Installation",
            "### Linux",
            "Use the package manager.",
            "### macOS",
            "Use the installer.",
            "#### Apple silicon",
            "Nothing special.",
            "## Usage",
            "Run it.",
            "# Appendix ##",
            "Extra.",
            "### Deep",
            "A skipped level.",
        ]
    )
    chunks = chunk_text(text)
    assert [(c.heading_path, text[c.start : c.end].split("\n")[0]) for c in chunks] == [
        (None, "Preface without a heading."),
        ("Guide", "# Guide"),
        ("Guide › Installation › Linux", "## Installation"),
        ("Guide › Installation › macOS", "### macOS"),
        ("Guide › Installation › macOS › Apple silicon", "#### Apple silicon"),
        ("Guide › Usage", "## Usage"),
        ("Appendix", "# Appendix ##"),
        ("Appendix › Deep", "### Deep"),
    ]
    assert [c.heading for c in chunks] == [
        None,
        "Guide",
        "Linux",
        "macOS",
        "Apple silicon",
        "Usage",
        "Appendix",
        "Deep",
    ]


def test_oversized_section_splits_at_paragraphs_with_overlap_but_never_across_a_heading() -> None:
    paragraphs = [f"Paragraph {n} of the long section. " + "Words fill it out. " * 3 + "The end." for n in range(10)]
    text = "# Long\n\n" + "\n\n".join(paragraphs) + "\n\n# Next\n\nThe next section's only paragraph."
    chunks = chunk_text(text, max_chars=350, overlap_chars=120)
    texts = pieces(text, chunks)
    long_chunks = [c for c in chunks if c.heading_path == "Long"]
    assert len(long_chunks) >= 4
    starts = {text.index(p) for p in paragraphs} | {0}
    ends = {text.index(p) + len(p) for p in paragraphs}
    for chunk in long_chunks:  # paragraph boundaries only
        assert chunk.start in starts and chunk.end in ends
    for before, after in pairwise(long_chunks):  # consecutive chunks share a paragraph
        assert after.start < before.end
        shared = text[after.start : before.end]
        assert shared in paragraphs or shared.split("\n\n")[0] in paragraphs
    assert texts[-1] == "# Next\n\nThe next section's only paragraph."  # the overlap stops at the heading
    assert chunks[-1].heading_path == "Next"


def test_html_headings_and_definition_lists_give_paths_and_whole_definitions() -> None:
    loaded = load_document(Path("heapq.html"), HTML_API.encode())
    assert loaded.headings is not None and [h[2:] for h in loaded.headings] == [
        ("heapq — Heap queue algorithm", 1),
        ("Basic functions", 2),
        ("Advanced", 3),
        ("Theory", 2),
    ]
    chunks = chunk_text(loaded.text, max_chars=130, overlap_chars=20, headings=loaded.headings)
    texts = pieces(loaded.text, chunks)
    assert_definitions_with_their_text(
        texts,
        {
            "heapq.heappush(heap, item)": "Push the value item onto the heap",
            "heapq.heappop(heap)": "Pop and return the smallest item from the heap",
            "heapq.heapreplace(heap, item)": "Pop and return the smallest item, then push",
        },
    )
    by_text = {t.split("\n")[0]: c.heading_path for t, c in zip(texts, chunks, strict=True)}
    assert by_text["heapq.heappop(heap)"] == "heapq — Heap queue algorithm › Basic functions"
    assert by_text["Advanced"] == "heapq — Heap queue algorithm › Basic functions › Advanced"
    assert by_text["Theory"] == "heapq — Heap queue algorithm › Theory"
    assert "#" not in loaded.text  # the displayed text is the page's, with no marks added


def test_prose_with_a_call_in_a_sentence_is_not_a_definition() -> None:
    text = "Call print(x) to show x, then continue.\n\n" + "More prose follows here. " * 3
    [chunk] = chunk_text(text, max_chars=200, overlap_chars=0)
    assert text[chunk.start : chunk.end] == text.strip()


def test_streamed_chunks_have_the_same_paths_as_whole_text_chunks() -> None:
    sections = []
    for n in range(60):
        sections.append(f"{'#' * (1 + n % 3)} Section {n}")
        sections.extend(f"Paragraph {n}.{k} " + "word " * (10 + (n * k) % 40) for k in range(1 + n % 5))
        sections.append(f"api.function_{n}(a, b=None)")
        sections.append(f"Describes function {n}. " * (3 + n % 12))  # some too long to fit with the definition
    text = "\n\n".join(sections)
    whole = chunk_text(text, max_chars=300, overlap_chars=80)
    for section_chars in range(1200, 1500, 7):  # sections end in many places, between definitions and text too
        stream = ChunkStream(max_chars=300, overlap_chars=80, section_chars=section_chars)
        streamed: list[ChunkSpan] = []
        for start in range(0, len(text), 997):
            streamed.extend(span for span, _ in stream.feed(text[start : start + 997]))
        streamed.extend(span for span, _ in stream.finish())
        assert streamed == whole, section_chars
    assert any(re.fullmatch(r"Section 0 › Section 1 › Section 2", c.heading_path or "") for c in whole)


@pytest.mark.parametrize("max_chars", [100, 300])
def test_a_heading_longer_than_a_chunk_is_cut_as_text_so_no_chunk_is_too_long(max_chars: int) -> None:
    """A heading used to be one piece whatever its length: a 240-character ``#`` line made a 240-character chunk."""
    long_heading = "# " + "very long heading words " * 15
    text = f"{long_heading}\n\nBody under it.\n\n## Short\n\nMore body."
    chunks = chunk_text(text, max_chars=max_chars, overlap_chars=20)
    assert all(chunk.end - chunk.start <= max_chars for chunk in chunks)
    assert all(chunk.heading_path in (None, "Short") for chunk in chunks)  # the long line is nobody's heading
    assert chunks[-1].heading_path == "Short" and text[chunks[-1].start : chunks[-1].end] == "## Short\n\nMore body."
    covered = "".join(text[chunk.start : chunk.end] for chunk in chunks)
    assert all(word in covered for word in ("very", "Body", "More"))
