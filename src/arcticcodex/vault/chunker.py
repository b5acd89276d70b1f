"""Split a document's text into overlapping chunks whose offsets point exactly back into it.

Chunks are what the vault indexes, embeds and cites, so two promises matter more than chunk quality:

* ``text[c.start:c.end]`` *is* the chunk (no normalisation), and ``start_byte``/``end_byte`` are the
  UTF-8 offsets of that same span, so a citation can be checked against the stored text (or, for a
  UTF-8 ``.txt``/``.md`` file, against the file's bytes) without re-running the chunker;
* every non-whitespace character lands in at least one chunk, so nothing imported is unsearchable.

Within those, chunks follow the text's own structure: paragraphs (separated by blank lines; ``\n``,
``\r\n`` and ``\r`` all end a line) are kept whole whenever they fit, and only a paragraph longer than
``max_chars`` is cut, first at sentence ends, then at whitespace, and only as a last resort mid-word.
Markdown ATX headings are paragraphs of their own; a chunk's ``heading`` is the last one at or before
its start, and a chunk does not end on a heading when text follows it (the heading opens the next
chunk instead, next to the text it names).  Overlap is made of whole pieces (paragraphs or
sentences), never of half sentences, so an overlapping chunk still reads as text.

Everything is linear in the text's length: pieces are found with regular expressions that cannot
backtrack quadratically, packing uses two forward-only cursors, and byte offsets come from one pass
over the sorted chunk boundaries.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain

from ..errors import ConfigError

__all__ = ["ChunkSpan", "chunk_text", "iter_headings"]

MIN_MAX_CHARS = 100

# A line break, a whitespace-only line and all whitespace after it: a paragraph boundary.  Anchoring on
# a line break and possessive quantifiers keep it linear even on megabytes of spaces or newlines.
_BLANK_LINES = re.compile(r"(?:\r\n?|\n)[^\S\r\n]*+(?:\r\n?|\n)\s*+")
# Where an ATX heading (``## Install``) or a code fence (```` ``` ````, ``~~~``) may begin; whether it is
# at the start of a line is checked in Python.  Starting with a character class lets the regex engine
# skip ahead fast, which a line-start anchor would prevent.  Fences are tracked so that ``# comment``
# lines inside code blocks do not become headings.
_MARK = re.compile(r"[#`~](?:(?<=#)#{0,5}[ \t]+(?P<title>[^\r\n]*)|(?<=`)`{2,}|(?<=~)~{2,})")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")
_SENTENCE_GAP = re.compile(r"(?<=[.!?…])\s+")
_LAST_WHITESPACE = re.compile(r"\s(?=\S*\Z)")
_NON_WHITESPACE = re.compile(r"\S")


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    """One chunk: ``text[start:end]`` in code points, the same span in UTF-8 bytes, and its heading."""

    start: int
    end: int
    start_byte: int
    end_byte: int
    heading: str | None


def iter_headings(text: str) -> Iterator[tuple[int, int, str]]:
    """Yield ``(start, end, title)`` for each ATX heading line outside code fences, in order.

    ``start``/``end`` delimit the heading line without surrounding whitespace (a byte-order mark at
    the very start is included, so it never becomes a piece of its own); ``title`` has the ``#``
    marks, opening and closing, removed.  The loaders use this for Markdown titles too, so a
    document's title and its chunks' headings always agree.
    """
    fence: str | None = None
    for match in _MARK.finditer(text):
        start = line_start = piece_start = match.start()
        if start and text[start - 1] not in "\r\n":  # not at a line start: indented, BOM, or no mark
            while line_start > 0 and text[line_start - 1] in " \t" and start - line_start < 4:
                line_start -= 1
            if start - line_start > 3:
                continue
            if line_start > 0 and text[line_start - 1] not in "\r\n":
                if line_start != 1 or text[0] != "\ufeff":
                    continue
                piece_start = 0
        raw = match.group("title")
        if raw is None:
            marker = match.group(0)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
            continue
        title = raw.rstrip()
        title = (_CLOSING_HASHES.sub("", title) if title.endswith("#") else title).lstrip()
        if fence is None and title:
            yield piece_start, start + len(match.group(0).rstrip()), title


def chunk_text(text: str, *, max_chars: int = 1200, overlap_chars: int = 200) -> list[ChunkSpan]:
    """Chunk ``text`` into spans of at most ``max_chars`` code points overlapping by ≤ ``overlap_chars``.

    Pieces are packed greedily; the next chunk starts at the earliest piece of the current one that
    begins within ``overlap_chars`` of its end (and leaves room for the piece after it), else at the
    next piece.  Returns ``[]`` for empty or whitespace-only text; the result depends only on the
    arguments.  Raises ``ConfigError`` for ``max_chars < 100`` or an overlap outside ``[0, max_chars)``.
    """
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
    headings = list(iter_headings(text))
    heading_starts = [start for start, _, _ in headings]
    is_heading = set(heading_starts)
    starts, ends = _pieces(text, max_chars, headings)
    spans: list[tuple[int, int, str | None]] = []
    count = len(starts)
    first = last = 0
    while first < count:
        last = max(last, first)
        while last + 1 < count and ends[last + 1] - starts[first] <= max_chars:
            last += 1
        # A heading belongs with what follows it: a chunk doesn't end on headings unless nothing follows
        # them or the chunk is nothing but headings.
        if last + 1 < count and starts[last] in is_heading:
            keep = last
            while keep > first and starts[keep] in is_heading:
                keep -= 1
            if starts[keep] not in is_heading:
                last = keep
        label = bisect_right(heading_starts, starts[first]) - 1
        spans.append((starts[first], ends[last], headings[label][2] if label >= 0 else None))
        if last + 1 >= count:
            break
        # The next chunk overlaps by whole pieces ending here, but only so far back that it still has
        # room for what comes after this chunk (headings included, with the paragraph they introduce);
        # otherwise it would be a subset of this one.
        following = last + 1
        while starts[following] in is_heading and following + 1 < count and ends[following] - max_chars < ends[last]:
            following += 1
        threshold = max(ends[last] - overlap_chars, ends[following] - max_chars)
        first = bisect_left(starts, threshold, first + 1, last + 1)
    return _with_byte_offsets(text, spans)


def _pieces(text: str, max_chars: int, headings: list[tuple[int, int, str]]) -> tuple[list[int], list[int]]:
    """Return the starts and ends of the packable pieces, in order.

    Pieces are paragraphs, heading lines, and (for paragraphs over ``max_chars``) sentences or
    whitespace-cut fragments; each is non-empty, ≤ ``max_chars``, without surrounding whitespace, and
    together they cover every non-whitespace character.  Megabytes of one-line paragraphs are common
    (logs, lists), so the usual paragraph takes a path with no copying and no function calls.
    """
    starts: list[int] = []
    ends: list[int] = []

    def add_block(start: int, end: int) -> None:
        segment = text[start:end]
        stripped = segment.strip()
        if not stripped:
            return
        start += len(segment) - len(segment.lstrip())
        end = start + len(stripped)
        if end - start <= max_chars:
            starts.append(start)
            ends.append(end)
            return
        for gap in chain(_SENTENCE_GAP.finditer(text, start, end), (None,)):
            sentence_end = end if gap is None else gap.start()
            if sentence_end - start <= max_chars:
                starts.append(start)
                ends.append(sentence_end)
            else:
                for piece_start, piece_end in _fragments(text, start, sentence_end, max_chars):
                    starts.append(piece_start)
                    ends.append(piece_end)
            if gap is not None:
                start = gap.end()

    length = len(text)
    heading_index = 0
    next_heading = headings[0][0] if headings else length
    position = 0
    gaps = _BLANK_LINES.finditer(text)
    while True:
        gap = next(gaps, None)
        gap_start, gap_end = gap.span() if gap is not None else (length, length)
        while next_heading < gap_start:
            heading_start, heading_end, _ = headings[heading_index]
            add_block(position, heading_start)
            starts.append(heading_start)
            ends.append(heading_end)
            position = heading_end
            heading_index += 1
            next_heading = headings[heading_index][0] if heading_index < len(headings) else length
        if gap_start > position:
            if gap_start - position <= max_chars and not text[position].isspace() and not text[gap_start - 1].isspace():
                starts.append(position)
                ends.append(gap_start)
            else:
                add_block(position, gap_start)
        if gap is None:
            return starts, ends
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


def _with_byte_offsets(text: str, spans: list[tuple[int, int, str | None]]) -> list[ChunkSpan]:
    """Attach UTF-8 byte offsets, encoding each stretch between consecutive boundaries once."""
    if text.isascii():
        return [ChunkSpan(start, end, start, end, label) for start, end, label in spans]
    positions = sorted({p for start, end, _ in spans for p in (start, end)})
    byte_at: dict[int, int] = {}
    previous = offset = 0
    for position in positions:
        offset += len(text[previous:position].encode("utf-8"))
        byte_at[position] = offset
        previous = position
    return [ChunkSpan(start, end, byte_at[start], byte_at[end], label) for start, end, label in spans]
