"""Split a document's text into overlapping chunks whose offsets point exactly back into it.

Chunks are what the vault indexes, embeds and cites, so two promises matter more than chunk quality:

* ``text[c.start:c.end]`` *is* the chunk (no normalisation), and ``start_byte``/``end_byte`` are the
  UTF-8 offsets of that same span, so a citation can be checked against the stored text (or, for a
  UTF-8 ``.txt``/``.md`` file, against the file's bytes) without re-running the chunker;
* every non-whitespace character lands in at least one chunk, so nothing imported is unsearchable.

Within those, chunks follow the text's own structure: paragraphs (separated by blank lines; ``\n``,
``\r\n`` and ``\r`` all end a line) are kept whole whenever they fit, and only a paragraph longer than
``max_chars`` is cut, first at sentence ends, then at whitespace, and only as a last resort mid-word.
Markdown ATX headings (and HTML headings and underlined titles, passed in by the loader) are paragraphs
of their own (one longer than ``max_chars`` is cut as text, so no chunk exceeds the limit), and
so are *definitions* in code documentation (``def name(…)``, ``.. function:: name``, a line that is
only a signature such as ``heapq.nsmallest(n, iterable)``).  Headings and definitions are boundaries:
a chunk never runs from one section (or one definition's text) into the next, so a chunk holds one
thing and scores for it; and neither ever ends a chunk when text follows it, so a heading or a
definition always stays with the text under it.  A section too long for one chunk is cut at
paragraph boundaries, its chunks overlapping by whole pieces (paragraphs or sentences, never half
sentences); no overlap crosses a boundary.  Each chunk knows its heading ``path`` (the enclosing
headings, outermost first, as Markdown levels nest them: ``("Guide", "Installation", "Linux")``),
and ``heading`` is the innermost of them.

Everything is linear in the text's length: pieces are found with regular expressions that cannot
backtrack quadratically, packing uses two forward-only cursors, and byte offsets come from one pass
over the sorted chunk boundaries.  The packer (:class:`SpanPacker`) and the heading scanner
(:class:`HeadingScanner`) also run incrementally, which is what :mod:`.chunk_stream` builds on to chunk
a file far larger than memory with exactly these results.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain

from ..errors import ConfigError

__all__ = [
    "ChunkSpan",
    "HeadingScanner",
    "SpanPacker",
    "chunk_text",
    "embedded_heading",
    "embedding_text",
    "heading_path",
    "iter_headings",
]

MIN_MAX_CHARS = 100

# A line break, a whitespace-only line and all whitespace after it: a paragraph boundary.  Anchoring on
# a line break and possessive quantifiers keep it linear even on megabytes of spaces or newlines.
BLANK_LINES = re.compile(r"(?:\r\n?|\n)[^\S\r\n]*+(?:\r\n?|\n)\s*+")
# Where an ATX heading (``## Install``) or a code fence (```` ``` ````, ``~~~``) may begin; whether it is
# at the start of a line is checked in Python.  Starting with a character class lets the regex engine
# skip ahead fast, which a line-start anchor would prevent.  Fences are tracked so that ``# comment``
# lines inside code blocks do not become headings.
_MARK = re.compile(r"[#`~](?:(?<=#)#{0,5}[ \t]+(?P<title>[^\r\n]*)|(?<=`)`{2,}|(?<=~)~{2,})")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")
# A definition in code documentation, matched at a paragraph's start: a Sphinx/reST directive, a Python or
# JavaScript definition line, or a line that is nothing but a signature (how rendered API docs show one).
_DEFINITION = re.compile(
    r"\.\.[ \t]+(?:[\w-]+:)?(?:function|method|class|attribute|data|exception|decorator|classmethod|staticmethod"
    r"|property|module)::[ \t]*\S"
    r"|(?:async[ \t]+)?def[ \t]+\w+[ \t]*\(|class[ \t]+[\w.]+[ \t]*[(:]|function[ \t]+\w+[ \t]*\("
    r"|[`*]{0,2}(?:class[ \t]+)?[A-Za-z_][\w.]*\([^()\r\n]*+\)[`*]{0,2}[ \t]*(?:->[^\r\n]*)?\u00b6?[ \t]*"
    r"(?:\r\n?|\n|\Z)"
)
DEFINITION = 7  # the level of a definition piece (headings are 1–6, body text 0)
PATH_SEPARATOR = " › "
_SENTENCE_GAP = re.compile(r"(?<=[.!?…])\s+")
_LAST_WHITESPACE = re.compile(r"\s(?=\S*\Z)")
_NON_WHITESPACE = re.compile(r"\S")


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    """One chunk: ``text[start:end]`` in code points, the same span in UTF-8 bytes, its heading and path."""

    start: int
    end: int
    start_byte: int
    end_byte: int
    heading: str | None
    path: tuple[str, ...] = ()

    @property
    def heading_path(self) -> str | None:
        """The path as one line ("Guide › Installation › Linux"), or None for text under no heading."""
        return heading_path(self.path)


def heading_path(path: tuple[str, ...]) -> str | None:
    return PATH_SEPARATOR.join(path) if path else None


def embedded_heading(heading_path: str | None) -> str | None:
    """The part of a chunk's heading path embedded with its text: the chunk's own heading.

    Measured on both labelled fixtures (benchmarks/README.md, issue 20): the whole path embedded
    before the text lowers passage MRR@10 by 0.04 against the last heading alone, and the two score
    the same per document; generic parent sections ("Reference › Functions") dilute a short
    definition's vector.  The whole path stays a BM25 field.
    """
    return heading_path.rsplit(PATH_SEPARATOR, 1)[-1] if heading_path else None


def embedding_text(heading_path: str | None, text: str) -> str:
    """What is embedded for a chunk: its own heading (see :func:`embedded_heading`), then its text."""
    heading = embedded_heading(heading_path)
    return f"{heading}\n\n{text}" if heading else text


Span = tuple[int, int, tuple[str, ...]]


def iter_headings(text: str) -> Iterator[tuple[int, int, str]]:
    """Yield ``(start, end, title)`` for each ATX heading line outside code fences, in order.

    ``start``/``end`` delimit the heading line without surrounding whitespace (a byte-order mark at
    the very start is included, so it never becomes a piece of its own); ``title`` has the ``#``
    marks, opening and closing, removed.  The loaders use this for Markdown titles too, so a
    document's title and its chunks' headings always agree.
    """
    return HeadingScanner().scan(text)


class HeadingScanner:
    """Finds headings in consecutive stretches of one text, carrying an open code fence between them.

    Offsets are relative to each stretch.  ``at_line_start`` says whether the stretch begins a line
    (else a mark at its very start is mid-line, not a heading); ``at_text_start`` whether it begins
    the text (only there does a byte-order mark count as part of the first line).
    """

    def __init__(self) -> None:
        self.fence: str | None = None

    def scan(
        self, text: str, *, at_line_start: bool = True, at_text_start: bool = True
    ) -> Iterator[tuple[int, int, str]]:
        for match in _MARK.finditer(text):
            start = line_start = piece_start = match.start()
            if start and text[start - 1] not in "\r\n":  # not at a line start: indented, BOM, or no mark
                while line_start > 0 and text[line_start - 1] in " \t" and start - line_start < 4:
                    line_start -= 1
                if start - line_start > 3:
                    continue
                if line_start > 0 and text[line_start - 1] not in "\r\n":
                    if not at_text_start or line_start != 1 or text[0] != "\ufeff":
                        continue
                    piece_start = 0
            if line_start == 0 and not at_line_start:
                continue
            raw = match.group("title")
            if raw is None:
                marker = match.group(0)
                if self.fence is None:
                    self.fence = marker
                elif marker[0] == self.fence[0] and len(marker) >= len(self.fence):
                    self.fence = None
                continue
            title = raw.rstrip()
            title = (_CLOSING_HASHES.sub("", title) if title.endswith("#") else title).lstrip()
            if self.fence is None and title:
                yield piece_start, start + len(match.group(0).rstrip()), title


def check_chunk_sizes(max_chars: int, overlap_chars: int) -> None:
    """Raise ``ConfigError`` for ``max_chars < 100`` or an overlap outside ``[0, max_chars)``."""
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < MIN_MAX_CHARS:
        raise ConfigError(
            f"chunk size max_chars must be an integer of at least {MIN_MAX_CHARS}, not {max_chars!r}; "
            "smaller chunks carry too little context to be worth retrieving."
        )
    if isinstance(overlap_chars, bool) or not isinstance(overlap_chars, int) or not 0 <= overlap_chars < max_chars:
        raise ConfigError(
            f"chunk overlap overlap_chars must be an integer from 0 to max_chars - 1 ({max_chars - 1}), "
            f"not {overlap_chars!r}."
        )


def chunk_text(
    text: str,
    *,
    max_chars: int = 1200,
    overlap_chars: int = 200,
    headings: list[tuple[int, int, str, int]] | None = None,
) -> list[ChunkSpan]:
    """Chunk ``text`` into spans of at most ``max_chars`` code points overlapping by ≤ ``overlap_chars``.

    Pieces are packed greedily; the next chunk starts at the earliest piece of the current one that
    begins within ``overlap_chars`` of its end (and leaves room for the piece after it), else at the
    next piece.  Returns ``[]`` for empty or whitespace-only text; the result depends only on the
    arguments.  Raises ``ConfigError`` for ``max_chars < 100`` or an overlap outside ``[0, max_chars)``.
    ``headings`` — ``(start, end, title, level)`` of each heading line, in order — replaces the Markdown
    headings found in the text (an HTML page's text has its headings without ``#`` marks).
    """
    check_chunk_sizes(max_chars, overlap_chars)
    packer = SpanPacker(max_chars, overlap_chars)
    if headings is None:
        packer.add(*find_pieces(text, max_chars, list(iter_headings(text))))
    else:
        packer.add(*find_pieces(text, max_chars, [h[:3] for h in headings], [h[3] for h in headings]))
    return _with_byte_offsets(text, packer.pack(final=True))


class SpanPacker:
    """Packs pieces into chunk spans, and can do it while the pieces are still arriving.

    Pieces are added in text order (absolute offsets; ``titles[i]`` is the heading title of a heading
    piece, else None; ``levels[i]`` is 1–6 for a heading, :data:`DEFINITION` for a definition, else 0).
    :meth:`pack` returns the spans that no later piece can change: deciding a
    chunk looks at most ``2 * max_chars`` past its start (the chunk, then the headings that must
    travel with what follows it), so a chunk is final once a piece starts beyond that.  Pieces before
    the next chunk's first piece are dropped, so memory holds about one chunk's worth of them.
    """

    def __init__(self, max_chars: int, overlap_chars: int) -> None:
        self.max_chars = max_chars
        self.overlap_chars = overlap_chars
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._titles: list[str | None] = []
        self._levels: list[int] = []
        self._first = self._last = 0
        self._labelled = -1  # index of the last piece whose heading was taken into _stack
        self._stack: list[tuple[int, str]] = []  # (level, title) of the enclosing headings, outermost first
        self._done = False

    @property
    def next_start(self) -> int | None:
        """Where the next chunk will start (None when no piece is waiting): text before it is no longer needed."""
        return self._starts[self._first] if self._first < len(self._starts) and not self._done else None

    def add(self, starts: list[int], ends: list[int], titles: list[str | None], levels: list[int]) -> None:
        self._starts.extend(starts)
        self._ends.extend(ends)
        self._titles.extend(titles)
        self._levels.extend(levels)

    def _enter(self, index: int) -> None:
        """Take piece ``index`` into the heading stack (a heading closes those at its level and deeper)."""
        level, title = self._levels[index], self._titles[index]
        if title is not None and 0 < level < DEFINITION:
            while self._stack and self._stack[-1][0] >= level:
                self._stack.pop()
            self._stack.append((level, title))

    def pack(self, *, final: bool = False) -> list[Span]:
        """The spans decided so far (all that remain when ``final``), as ``(start, end, heading path)``."""
        starts, ends, levels, max_chars = self._starts, self._ends, self._levels, self.max_chars
        spans: list[Span] = []
        count = len(starts)
        first, last = self._first, self._last
        while first < count and not self._done:
            if not final and starts[count - 1] <= starts[first] + 2 * max_chars:
                break  # the pieces that decide this chunk have not all arrived
            last = max(last, first)
            body = any(not levels[index] for index in range(first, last + 1))
            while last + 1 < count and ends[last + 1] - starts[first] <= max_chars:
                if body and levels[last + 1]:
                    break  # a heading or definition after text: the next section starts there
                last += 1
                body = body or not levels[last]
            # A heading or definition belongs with what follows it: a chunk doesn't end on them unless nothing
            # follows or the chunk is nothing but them.
            if last + 1 < count and levels[last]:
                keep = last
                while keep > first and levels[keep]:
                    keep -= 1
                if not levels[keep]:
                    last = keep
            # The path is the headings before the chunk and those that open it (up to its first text).
            opening = first
            while opening < last and levels[opening]:
                opening += 1
            for index in range(self._labelled + 1, opening + 1):
                self._enter(index)
            self._labelled = max(self._labelled, opening)
            spans.append((starts[first], ends[last], tuple(title for _, title in self._stack)))
            if last + 1 >= count:
                self._done = True
                break
            if levels[last + 1]:
                first = last + 1  # a boundary: no overlap across it
                continue
            # Within a section the next chunk overlaps by whole pieces ending here, but only so far back that it
            # still has room for the piece after this chunk; otherwise it would be a subset of this one.
            threshold = max(ends[last] - self.overlap_chars, ends[last + 1] - max_chars)
            first = bisect_left(starts, threshold, first + 1, last + 1)
        self._first, self._last = first, last
        if first > 4096 and not final:  # forget pieces behind the next chunk (amortised: a slice per 4096)
            for index in range(self._labelled + 1, first):
                self._enter(index)
            del starts[:first], ends[:first], self._titles[:first], levels[:first]
            self._labelled = -1
            self._first, self._last = 0, last - first
        return spans


def find_pieces(
    text: str,
    max_chars: int,
    headings: list[tuple[int, int, str]],
    heading_levels: list[int] | None = None,
    definition_before: int | None = None,
) -> tuple[list[int], list[int], list[str | None], list[int]]:
    """Return the starts, ends, heading titles (None but for heading lines) and levels of the packable pieces.

    A level is 1–6 for a heading (from its ``#`` marks, or ``heading_levels`` when given), :data:`DEFINITION`
    for the first piece of a paragraph that opens with a definition, else 0.  ``definition_before`` is the
    start (relative to ``text``, so negative) of a one-piece definition that ended the text before this
    one, when ``text`` continues it (:mod:`.chunk_stream`): its description is cut as it would be in one text.

    Pieces are paragraphs, heading lines, and (for paragraphs over ``max_chars``) sentences or
    whitespace-cut fragments; each is non-empty, ≤ ``max_chars``, without surrounding whitespace, and
    together they cover every non-whitespace character.  Megabytes of one-line paragraphs are common
    (logs, lists), so the usual paragraph takes a path with no copying and no function calls.
    """
    starts: list[int] = []
    ends: list[int] = []
    titles: list[str | None] = []
    levels: list[int] = []
    definition = _DEFINITION.match
    # Where the last piece, a one-piece definition, starts (else None): the paragraph after it is cut into
    # sentences when it would not fit in one chunk with the definition, so the definition opens a chunk with
    # the start of its description rather than standing alone.
    definition_at = definition_before

    def add_block(start: int, end: int) -> None:
        nonlocal definition_at
        segment = text[start:end]
        stripped = segment.strip()
        if not stripped:
            return
        start += len(segment) - len(segment.lstrip())
        end = start + len(stripped)
        levels.extend([0] * (len(starts) - len(levels)))
        first_piece = len(starts)
        after_definition = definition_at is not None and end - definition_at > max_chars
        definition_at = None
        if end - start <= max_chars and not after_definition:
            starts.append(start)
            ends.append(end)
            titles.append(None)
            opens = definition(text, start, end) is not None
            levels.append(DEFINITION if opens else 0)
            definition_at = start if opens else None
            return
        opens_definition = definition(text, start, end) is not None
        for gap in chain(_SENTENCE_GAP.finditer(text, start, end), (None,)):
            sentence_end = end if gap is None else gap.start()
            if sentence_end - start <= max_chars:
                starts.append(start)
                ends.append(sentence_end)
                titles.append(None)
            else:
                for piece_start, piece_end in _fragments(text, start, sentence_end, max_chars):
                    starts.append(piece_start)
                    ends.append(piece_end)
                    titles.append(None)
            if gap is not None:
                start = gap.end()
        levels.extend([0] * (len(starts) - len(levels)))
        if opens_definition:
            levels[first_piece] = DEFINITION

    length = len(text)
    heading_index = 0
    next_heading = headings[0][0] if headings else length
    position = 0
    gaps = BLANK_LINES.finditer(text)
    while True:
        gap = next(gaps, None)
        gap_start, gap_end = gap.span() if gap is not None else (length, length)
        while next_heading < gap_start:
            heading_start, heading_end, title = headings[heading_index]
            if heading_end - heading_start > max_chars:  # too long to be a chunk's heading: text, cut as text is
                heading_index += 1
                next_heading = headings[heading_index][0] if heading_index < len(headings) else length
                continue
            add_block(position, heading_start)
            starts.append(heading_start)
            ends.append(heading_end)
            titles.append(title)
            definition_at = None
            if heading_levels is not None:
                level = heading_levels[heading_index]
            else:
                marks = text[heading_start:heading_end].lstrip("\ufeff \t")
                level = len(marks) - len(marks.lstrip("#"))
            levels.append(min(max(level, 1), 6))
            position = heading_end
            heading_index += 1
            next_heading = headings[heading_index][0] if heading_index < len(headings) else length
        if gap_start > position:
            if (
                gap_start - position <= max_chars
                and not text[position].isspace()
                and not text[gap_start - 1].isspace()
                and (definition_at is None or gap_start - definition_at <= max_chars)
            ):
                starts.append(position)
                ends.append(gap_start)
                titles.append(None)
                opens = definition(text, position, gap_start) is not None
                levels.append(DEFINITION if opens else 0)
                definition_at = position if opens else None
            else:
                add_block(position, gap_start)
        if gap is None:
            return starts, ends, titles, levels
        position = gap_end


def _fragments(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """Cut the stripped span ``[start, end)`` at the last whitespace before each limit (or hard)."""
    while end - start > max_chars:
        window = text[start + 1 : start + max_chars + 1]
        gap = _LAST_WHITESPACE.search(window)
        if gap is None:
            yield start, start + max_chars
            start += max_chars
            continue
        cut = start + 1 + gap.start()
        yield start, start + len(text[start:cut].rstrip())
        resume = _NON_WHITESPACE.search(text, cut, end)
        if resume is None:  # unreachable for a stripped span, kept so a bug cannot loop forever
            return
        start = resume.start()
    yield start, end


def _with_byte_offsets(text: str, spans: list[Span]) -> list[ChunkSpan]:
    """Attach UTF-8 byte offsets, encoding each stretch between consecutive boundaries once."""
    if text.isascii():
        return [ChunkSpan(start, end, start, end, path[-1] if path else None, path) for start, end, path in spans]
    positions = sorted({p for start, end, _ in spans for p in (start, end)})
    byte_at: dict[int, int] = {}
    previous = offset = 0
    for position in positions:
        offset += len(text[previous:position].encode("utf-8"))
        byte_at[position] = offset
        previous = position
    return [
        ChunkSpan(start, end, byte_at[start], byte_at[end], path[-1] if path else None, path)
        for start, end, path in spans
    ]
