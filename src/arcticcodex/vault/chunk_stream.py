"""Chunking a text that arrives in pieces, in memory bounded by a section, not by the text.

A 200 MB file must not be held whole (nor its chunk list), so :class:`ChunkStream` takes the text
as it is decoded and hands back each chunk as soon as nothing later can change it, with its UTF-8
byte offsets counted as it goes.  It keeps only the text from the next chunk's start onwards.

The text is cut into *sections* (about ``section_chars`` each) that are split into pieces one at a
time, and the pieces of all sections feed one :class:`~.chunker.SpanPacker`, so chunks overlap across
section boundaries as anywhere else.  Where a section ends decides whether the result is exactly
:func:`~.chunker.chunk_text`'s:

* at a blank line (the usual case: prose and Markdown have one every few hundred characters) the
  cut is placed right after the gap's last line break, and the open code fence is carried over, so
  the pieces are exactly those of the whole text and so are the chunks;
* a stretch of ``section_chars`` with no blank line (a log, a minified file) is cut at its last line
  break, else its last whitespace, else hard.  Pieces next to such a cut may then end at the cut
  instead of at a sentence end; every promise of the chunker still holds (exact offsets, chunks of at
  most ``max_chars``, every non-whitespace character in a chunk), and the result still depends only
  on the text and the sizes.
"""

from __future__ import annotations

import re

from .chunker import (
    BLANK_LINES,
    DEFINITION,
    ChunkSpan,
    HeadingScanner,
    SpanPacker,
    check_chunk_sizes,
    find_pieces,
)
from .section_titles import TitleScanner, TitleStyle

__all__ = ["ChunkStream"]

DEFAULT_SECTION_CHARS = 1 << 17
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_WHITESPACE = re.compile(r"\s")


class ChunkStream:
    """Feed text with :meth:`feed`, end with :meth:`finish`; both return the chunks now decided.

    Each chunk is ``(span, text)``: the span's offsets are absolute in the whole text (code points and
    UTF-8 bytes), and ``text`` is the chunk itself.  ``first_heading`` is the title of the text's first
    heading once it has been seen (what a Markdown document's title is).  ``title_style`` also finds underlined
    titles (:mod:`.section_titles`), as :func:`~.loaders.load_document` does for a file read whole.
    """

    def __init__(
        self,
        *,
        max_chars: int = 1200,
        overlap_chars: int = 200,
        section_chars: int = DEFAULT_SECTION_CHARS,
        title_style: TitleStyle | None = None,
    ):
        check_chunk_sizes(max_chars, overlap_chars)
        self.max_chars = max_chars
        self.section_chars = max(section_chars, 4 * max_chars)
        self.first_heading: str | None = None
        self._packer = SpanPacker(max_chars, overlap_chars)
        self._headings = HeadingScanner()
        self._titles = TitleScanner(title_style) if title_style is not None else None
        self._buffer = ""
        self._base = 0  # offset of _buffer[0] in the whole text
        self._split = 0  # offset up to which the text has been split into pieces
        self._at_line_start = True
        self._definition_at: int | None = None  # a definition that ended the last section (see find_pieces)
        self._byte_position = 0  # a code-point offset …
        self._byte_offset = 0  # … and its UTF-8 byte offset, moved forward chunk by chunk
        self._finished = False

    def feed(self, text: str) -> list[tuple[ChunkSpan, str]]:
        if self._finished:
            raise RuntimeError("this ChunkStream is finished")
        self._buffer += text
        end = self._base + len(self._buffer)
        while end - self._split > self.section_chars:
            self._split_section(self._section_end(end))
        return self._emit(self._packer.pack())

    def finish(self) -> list[tuple[ChunkSpan, str]]:
        if not self._finished:
            self._finished = True
            self._split_section(self._base + len(self._buffer))
        return self._emit(self._packer.pack(final=True))

    def _section_end(self, end: int) -> int:
        """Where the next section should end: after a blank line if there is one, else see the module doc.

        Only matches that end inside the window count: a gap still running at the window's edge may
        go on further.  Each finder makes one forward pass (possessive, no lookahead), so this stays
        linear even in a window made of nothing but newlines.
        """
        buffer, base = self._buffer, self._base
        low, high = self._split - base, self._split - base + self.section_chars
        gap = None
        for match in BLANK_LINES.finditer(buffer, low, high + 1):
            if match.end() <= high:
                gap = match
        if gap is not None:
            line_breaks = list(_LINE_BREAK.finditer(buffer, gap.start(), gap.end()))
            return base + line_breaks[-1].end()
        for finder in (_LINE_BREAK, _WHITESPACE):
            cut = None
            for cut in finder.finditer(buffer, low, high):  # noqa: B007 - the last one is wanted
                pass
            if cut is not None:
                return base + cut.end()
        return base + high

    def _split_section(self, section_end: int) -> None:
        start, stop = self._split - self._base, section_end - self._base
        if stop <= start:
            return
        section = self._buffer[start:stop]
        headings = list(self._headings.scan(section, at_line_start=self._at_line_start, at_text_start=self._split == 0))
        heading_levels = None
        scanner = self._titles
        merged = scanner.merged(section, headings, at_line_start=self._at_line_start) if scanner is not None else None
        if merged is not None:
            headings, heading_levels = [title[:3] for title in merged], [title[3] for title in merged]
        if headings and self.first_heading is None:
            self.first_heading = headings[0][2]
        offset = self._split
        carried = None if self._definition_at is None else self._definition_at - offset
        starts, ends, titles, levels = find_pieces(section, self.max_chars, headings, heading_levels, carried)
        if levels:  # a definition that is the section's last piece is a whole paragraph (find_pieces)
            self._definition_at = starts[-1] + offset if levels[-1] == DEFINITION else None
        self._packer.add([s + offset for s in starts], [e + offset for e in ends], titles, levels)
        self._at_line_start = section[-1] in "\r\n"
        self._split = section_end

    def _emit(self, spans: list[tuple[int, int, tuple[str, ...]]]) -> list[tuple[ChunkSpan, str]]:
        chunks: list[tuple[ChunkSpan, str]] = []
        buffer, base = self._buffer, self._base
        for start, end, path in spans:
            self._byte_offset += len(buffer[self._byte_position - base : start - base].encode("utf-8"))
            self._byte_position = start
            text = buffer[start - base : end - base]
            end_byte = self._byte_offset + len(text.encode("utf-8"))
            heading = path[-1] if path else None
            chunks.append((ChunkSpan(start, end, self._byte_offset, end_byte, heading, path), text))
        next_start = self._packer.next_start
        keep_from = self._split if next_start is None else min(next_start, self._split)
        if keep_from - base > self.section_chars:  # drop text no chunk can reach (one slice per section)
            self._byte_offset += len(buffer[self._byte_position - base : keep_from - base].encode("utf-8"))
            self._byte_position = keep_from
            self._buffer = buffer[keep_from - base :]
            self._base = keep_from
        return chunks
