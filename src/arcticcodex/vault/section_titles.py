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
whole; a file large enough to be streamed (:mod:`.chunk_stream`) is scanned section by section by a
:class:`TitleScanner`, with the same result.
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_right
from collections.abc import Iterator
from typing import Literal

from .chunker import iter_headings

__all__ = ["MAX_TITLE_CHARS", "TITLE_STYLES", "TITLE_STYLE_OF", "TitleScanner", "TitleStyle", "section_titles"]

TitleStyle = Literal["markdown", "rst", "text"]
TITLE_STYLES: tuple[TitleStyle, ...] = ("markdown", "rst", "text")
# How each importable text format marks its titles (the loaders and the streamed import both ask).
TITLE_STYLE_OF: dict[str, TitleStyle] = {"text/plain": "text", "text/markdown": "markdown", "text/x-rst": "rst"}

MAX_TITLE_CHARS = 200  # a longer "title" is a paragraph over a rule, not a section title
LINE_CARRY = 1024  # characters of a line a stream section ends in that are kept for the next one
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
    return TitleScanner(style).merged(text, None)


class TitleScanner:
    """Finds underlined titles in consecutive sections of one text, carrying the levels and an open code fence.

    :mod:`.chunk_stream` cuts a streamed text into sections at blank lines, and a title and its
    underline have none between them, so scanning section by section finds what one scan of the whole
    text finds, as long as the style levels, a code fence still open and the line before the section
    carry over (they do here).  A stretch with no blank line for a whole section is cut at a line break
    or mid-line; then a title whose line starts in the previous section, or whose overline ends it, is
    not found (text, as the chunker's promises allow), and one whose line above ends it is judged by it.
    """

    def __init__(self, style: TitleStyle) -> None:
        if style not in TITLE_STYLES:
            raise ValueError(f"title style {style!r}: use one of {', '.join(TITLE_STYLES)}")
        self.style = style
        self._markdown = style == "markdown"
        self._levels: dict[tuple[str, bool], int] = {}  # reStructuredText: a style's level, by first appearance
        self._fence: str | None = None  # the marker of a Markdown code fence still open at the last section's end
        self._line_before: str | None = None  # the last line before the next section, when that starts a line
        self._partial = ""  # the unfinished line the last section ended in (its last LINE_CARRY characters)

    def merged(
        self, text: str, hash_headings: list[tuple[int, int, str]] | None, *, at_line_start: bool = True
    ) -> list[tuple[int, int, str, int]] | None:
        """The underlined titles of ``text`` with its ``hash_headings`` (``#`` lines; None: found here if needed).

        None when there is no underlined title and the style keeps ``#`` headings: the caller's own
        path for them is then exactly what it was.
        """
        underlined = list(self.scan(text, at_line_start=at_line_start))
        if self.style == "rst":
            return underlined
        if not underlined:
            return None
        if hash_headings is None:
            hash_headings = list(iter_headings(text))
        return sorted([*underlined, *_with_levels(text, hash_headings, underlined)])

    def scan(self, text: str, *, at_line_start: bool = True) -> Iterator[tuple[int, int, str, int]]:
        """The underlined titles in ``text`` (the next section of the document), offsets relative to it.

        ``at_line_start``: whether ``text`` begins a line (else its first line continues the last section's).
        """
        fences = self._fenced_ranges(text, at_line_start) if self._markdown else []
        line_before = self._line_before if at_line_start else None
        self._carry_line(text)
        claimed = 0  # end of the last title: its underline may look like the next one's overline
        for run in _RUN.finditer(text):
            character = run.group(1)
            if run.start() < claimed or (self._markdown and character not in SETEXT_LEVELS):
                continue
            if _inside(fences, run.start()) or (run.start() == 0 and not at_line_start):
                continue
            found = self._title(text, run, claimed, line_before, at_line_start)
            if found is not None:
                claimed = run.end()
                yield found

    def _carry_line(self, text: str) -> None:
        """Remember the line the next section follows: the last one ``text`` ends, or the one it leaves open."""
        if text.endswith("\n"):
            previous_break = text.rfind("\n", 0, len(text) - 1)
            last = text[previous_break + 1 : -1] if previous_break >= 0 else self._partial + text[:-1]
            self._line_before, self._partial = last.removesuffix("\r")[-LINE_CARRY:], ""
        else:
            last_break = text.rfind("\n")
            self._partial = (text[last_break + 1 :] if last_break >= 0 else self._partial + text)[-LINE_CARRY:]
            self._line_before = None

    def _title(
        self, text: str, run: re.Match[str], claimed: int, line_before: str | None, at_line_start: bool
    ) -> tuple[int, int, str, int] | None:
        found = _title_above(text, run.start())
        if found is None or (found[0] == 0 and not at_line_start):
            return None  # no line above, or it began in the last section
        title_start, title = found
        length = len(run.group(0).rstrip())
        if (not self._markdown and length < len(title)) or len(title) > MAX_TITLE_CHARS or _RUN.fullmatch(title):
            return None
        start, overlined = title_start, False
        above = _line_above(text, title_start)
        if above is None and title_start == 0 and line_before is not None:
            above = (-1, line_before)  # the last line of the last section
        if not self._markdown and above is not None and above[1].rstrip() == run.group(0).rstrip():
            if above[0] < claimed:
                return None  # the previous title's underline, or an overline in the last section
            start, overlined = above[0], True
        elif above is not None and above[1].strip():
            return None  # not the first line of its paragraph
        character = run.group(1)
        if self._markdown:
            level = SETEXT_LEVELS[character]
        else:
            level = self._levels.setdefault((character, overlined), min(len(self._levels) + 1, 6))
        end = run.end() - (1 if text[run.end() - 1 : run.end()] == "\r" else 0)
        return start, end, title, level

    def _fenced_ranges(self, text: str, at_line_start: bool) -> list[tuple[int, int]]:
        """``(start, end)`` of each fenced code block in ``text`` (one open at its end runs to the end)."""
        ranges: list[tuple[int, int]] = []
        opened = (0, self._fence) if self._fence is not None else None
        for fence in _FENCE.finditer(text):
            if fence.start() == 0 and not at_line_start:
                continue  # the middle of a line the last section began
            marker = fence.group(1)
            if opened is None:
                opened = (fence.start(), marker)
            elif marker[0] == opened[1][0] and len(marker) >= len(opened[1]):
                ranges.append((opened[0], fence.end()))
                opened = None
        if opened is not None:
            ranges.append((opened[0], len(text)))
        self._fence = opened[1] if opened is not None else None
        return ranges


def _with_levels(
    text: str, hash_headings: list[tuple[int, int, str]], underlined: list[tuple[int, int, str, int]]
) -> Iterator[tuple[int, int, str, int]]:
    """The ``#`` headings with their levels, except any inside an underlined title's span."""
    spans = [(start, end) for start, end, _, _ in underlined]
    for start, end, title in hash_headings:
        index = bisect_right(spans, (start, sys.maxsize)) - 1
        if index >= 0 and spans[index][0] <= start < spans[index][1]:
            continue
        marks = text[start:end].lstrip("\ufeff \t")
        yield start, end, title, min(max(len(marks) - len(marks.lstrip("#")), 1), 6)


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


def _inside(ranges: list[tuple[int, int]], position: int) -> bool:
    index = bisect_right(ranges, (position, sys.maxsize)) - 1
    return index >= 0 and ranges[index][0] <= position < ranges[index][1]
