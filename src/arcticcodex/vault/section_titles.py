"""Section titles marked by a line of punctuation under them: reStructuredText, Markdown's setext headings, plain text.

The chunker finds Markdown's ``#`` headings itself (:func:`.chunker.iter_headings`).  Many documents mark
their sections the other way, with the title on one line and a run of one punctuation character under
it (and, in reStructuredText, optionally over it too)::

    Installation          heapq — Heap queue algorithm          ========
    ============          ****************************          Overview
                                                                ========

Markdown calls these setext headings (``=`` for level 1, ``-`` for level 2); reStructuredText numbers
its levels in the order the styles first appear in the document (a style is the character and whether
it is also over the title); the Python documentation's text edition and many README-style ``.txt``
files follow reStructuredText.  :func:`section_titles` returns them with the ``#`` headings, in text
order, in the ``(start, end, title, level)`` form :func:`.chunker.chunk_text` takes, so a chunk's
heading path and boundaries come out of these documents as they do out of ``#`` Markdown.

What is *not* a title, so as not to invent one: a line under which the run is shorter than the title
(reStructuredText's own rule; Markdown needs three characters), an indented line (a literal block), a
line that is not the first of its paragraph (in Markdown ``---`` after a paragraph's second line would
make the whole paragraph a heading; such text is left as it is), a list item, quotation or table row, a
run of punctuation itself, anything inside a fenced code block, and titles longer than
:data:`MAX_TITLE_CHARS`.  A ``---`` after a blank line is a Markdown thematic break, not an underline.

The loaders (:func:`.loaders.load_document`) call this for ``.md``, ``.rst`` and ``.txt`` files read
whole.  A ``.md`` or ``.txt`` file of :data:`.ingest.STREAM_FROM_BYTES` or more is chunked as it streams
(:mod:`.chunk_stream`), which finds ``#`` headings only: its underlined titles stay text.
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_right
from collections.abc import Iterator
from typing import Literal

from .chunker import iter_headings

__all__ = ["MAX_TITLE_CHARS", "TITLE_STYLES", "TitleStyle", "section_titles"]

TitleStyle = Literal["markdown", "rst", "text"]
TITLE_STYLES: tuple[TitleStyle, ...] = ("markdown", "rst", "text")

MAX_TITLE_CHARS = 200  # a longer "title" is a paragraph over a rule, not a section title
SETEXT_LEVELS = {"=": 1, "-": 2}
# A line that is one adornment character repeated (three or more), nothing else but trailing blanks.
_RUN = re.compile(r"^([=\-`:'\"~^_*+#<>])\1{2,}[ \t]*\r?$", re.MULTILINE)
_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})", re.MULTILINE)
# How a line that is not a title begins: a Markdown list item, quotation, table row or ATX heading.
_NOT_A_TITLE = re.compile(r"(?:[-*+][ \t]|\d{1,9}[.)][ \t]|>|\||#{1,6}(?:[ \t]|$))")


def section_titles(text: str, style: TitleStyle) -> list[tuple[int, int, str, int]] | None:
    """``(start, end, title, level)`` of every section title in ``text``, in text order.

    ``style`` "markdown": setext rules (``=`` and ``-`` only, levels 1 and 2, code fences skipped) and
    the ``#`` headings; "rst": reStructuredText's (any adornment character, over- and underlines,
    levels by first appearance) and no ``#`` headings (a ``#`` line is text there); "text": the
    reStructuredText rules and the ``#`` headings, as plain text had them before.  ``start``/``end``
    span the title with its adornment lines.  Returns None when a Markdown or plain-text document has
    no underlined title, so the chunker goes on finding ``#`` headings on its own, exactly as before.
    """
    if style not in TITLE_STYLES:
        raise ValueError(f"title style {style!r}: use one of {', '.join(TITLE_STYLES)}")
    underlined = list(_underlined(text, markdown=style == "markdown"))
    if style == "rst":
        return underlined
    if not underlined:
        return None
    return sorted([*underlined, *_atx(text, underlined)])


def _atx(text: str, underlined: list[tuple[int, int, str, int]]) -> Iterator[tuple[int, int, str, int]]:
    """The ``#`` headings with their levels, except any inside an underlined title's span."""
    spans = [(start, end) for start, end, _, _ in underlined]
    for start, end, title in iter_headings(text):
        index = bisect_right(spans, (start, sys.maxsize)) - 1
        if index >= 0 and spans[index][0] <= start < spans[index][1]:
            continue
        marks = text[start:end].lstrip("\ufeff \t")
        yield start, end, title, min(max(len(marks) - len(marks.lstrip("#")), 1), 6)


def _underlined(text: str, *, markdown: bool) -> Iterator[tuple[int, int, str, int]]:
    fences = _fenced_ranges(text) if markdown else []
    styles: dict[tuple[str, bool], int] = {}
    claimed = 0  # end of the last title: its underline may look like the next one's overline
    for run in _RUN.finditer(text):
        character = run.group(1)
        if run.start() < claimed or (markdown and character not in SETEXT_LEVELS) or _inside(fences, run.start()):
            continue
        found = _title_above(text, run.start())
        if found is None:
            continue
        title_start, title = found
        length = len(run.group(0).rstrip())
        if (not markdown and length < len(title)) or len(title) > MAX_TITLE_CHARS or _RUN.fullmatch(title):
            continue
        start, overlined = title_start, False
        if not markdown:
            above = _line_above(text, title_start)
            if above is not None and above[1].rstrip() == run.group(0).rstrip() and above[0] >= claimed:
                start, overlined = above[0], True
            elif above is not None and above[1].strip():
                continue  # not the first line of its paragraph
        elif (above := _line_above(text, title_start)) is not None and above[1].strip():
            continue
        if markdown:
            level = SETEXT_LEVELS[character]
        else:
            level = styles.setdefault((character, overlined), min(len(styles) + 1, 6))
        claimed = run.end()
        yield start, run.end() - (1 if text[run.end() - 1 : run.end()] == "\r" else 0), title, level


def _line_above(text: str, line_start: int) -> tuple[int, str] | None:
    """``(start, text)`` of the line before the one starting at ``line_start`` (None at the text's start)."""
    if line_start == 0:
        return None
    end = line_start - 1  # the "\n" ending the line above
    start = text.rfind("\n", 0, end) + 1
    return start, text[start:end].removesuffix("\r")


def _title_above(text: str, run_start: int) -> tuple[int, str] | None:
    """``(start, title)`` of the line above a run when it can be a title: unindented, not a list item or quote."""
    above = _line_above(text, run_start)
    if above is None:
        return None
    start, line = above
    title = line.strip()
    if not title or line[:1] in " \t" or _NOT_A_TITLE.match(title):
        return None
    return start, title


def _fenced_ranges(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each fenced code block (an unclosed fence runs to the end of the text)."""
    ranges: list[tuple[int, int]] = []
    opened: tuple[int, str] | None = None
    for fence in _FENCE.finditer(text):
        marker = fence.group(1)
        if opened is None:
            opened = (fence.start(), marker)
        elif marker[0] == opened[1][0] and len(marker) >= len(opened[1]):
            ranges.append((opened[0], fence.end()))
            opened = None
    if opened is not None:
        ranges.append((opened[0], len(text)))
    return ranges


def _inside(ranges: list[tuple[int, int]], position: int) -> bool:
    index = bisect_right(ranges, (position, sys.maxsize)) - 1
    return index >= 0 and ranges[index][0] <= position < ranges[index][1]
