"""The strict ForgeNumerics-S scanner and parser.

A real scanner, not string splitting: literals are opaque (separators inside ``≛⟦…⟧`` are text, ``⟧⟧``
is an escaped ``⟧``), frames nest in payloads, and every token is checked against its profile.
Whitespace between tokens is ignored (so pretty-printed frames read fine); whitespace inside a token
is an error.  Anything malformed raises :class:`~arcticcodex.errors.ParseError` with a stable code,
the offset (in code points), 1-based line and column, a context snippet and a hint.  Nothing is
silently dropped or guessed; the lenient reading of frames the first version wrote lives in :mod:`.legacy`.

Grammar::

    document := ws (frame (hspace* newline ws frame)*)? ws
    frame    := "⧆" ws header? ws "∷" ws payload? ws "⧈"
    header   := field (ws "∴" ws field)*
    field    := word ws "⦙" ws (word | literal | number)
    payload  := item (ws "⦙" ws item)*
    item     := word | literal | number | frame
    word     := "≛" wordchar+            literal := "≛⟦" (char | "⟧⟧")* "⟧"
    number   := "≗" profile body         (profiles: see .numbers and .blob)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NoReturn

from ..errors import ParseError
from . import codes
from .blob import decode_blob, scan_blob
from .frame import Frame, Item
from .numbers import BodyError, decode_decimal, decode_float, decode_sint, decode_uint
from .symbols import (
    FIELD_SEP,
    FRAME_END,
    FRAME_START,
    HEADER_PAYLOAD_SEP,
    LITERAL_CLOSE,
    LITERAL_OPEN,
    NUMBER_MODE,
    PROFILE_BLOB_T,
    PROFILE_DECIMAL_T,
    PROFILE_FLOAT_T,
    PROFILE_INT_S3,
    PROFILE_INT_U3,
    TOKEN_SEP,
    WORD_MODE,
)
from .tokens import LITERAL_FORBIDDEN_RE, WORD_RE, Blob, Dec, Float, SInt, Text, Token, UInt, forbidden_character

MAX_DEPTH = 32
_WS = re.compile(r"\s*")
_HSPACE = re.compile(r"[^\S\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]*")
_DELIMITER_CHARS = FIELD_SEP + TOKEN_SEP + HEADER_PAYLOAD_SEP + FRAME_END
_WHITESPACE = "".join(chr(code) for code in range(0x3001) if chr(code).isspace())  # all of them lie below
_RUN = re.compile(f"[^{re.escape(_WHITESPACE)}{_DELIMITER_CHARS}]*")  # explicit class: faster than \\s
_WORD_HINT = (
    "text with spaces or ForgeNumerics symbols goes in a literal ≛⟦…⟧, long text in BLOB-T "
    "(frames the original ArcticCodex wrote read with forge.read_legacy, or `arcticcodex forge … --legacy`)"
)
_TOKEN_HINT = "a token starts with ≛ (word or literal ≛⟦…⟧), ≗ (number) or, in a payload, ⧆ (frame)"
_LEGACY_HINT = "text written by the original ArcticCodex reads with forge.read_legacy (`arcticcodex forge … --legacy`)"


def _run_end(pattern: re.Pattern[str], text: str, start: int) -> int:
    """End of the (possibly empty) run of ``pattern`` at ``start``."""
    match = pattern.match(text, start)
    return match.end() if match else start


def parse_frame(text: str) -> Frame:
    """Parse exactly one frame (surrounding whitespace allowed)."""
    parser = _Parser(text)
    parser.skip_ws()
    frame = parser.frame(0)
    parser.skip_ws()
    parser.expect_end("after the frame's closing ⧈")
    return frame


def parse_document(text: str) -> list[Frame]:
    """Parse a ``.fn`` document: frames one per line, blank lines allowed."""
    return list(iter_document(text))


def iter_document(text: str) -> Iterator[Frame]:
    parser = _Parser(text)
    parser.skip_ws()
    while parser.pos < len(text):
        yield parser.frame(0)
        parser.pos = _run_end(_HSPACE, text, parser.pos)
        if text.startswith("\r\n", parser.pos):
            parser.pos += 1
        if parser.pos < len(text) and text[parser.pos] != "\n":
            # frames are separated by \n (or \r\n): the line numbers in errors count exactly those
            parser.fail(codes.TRAILING_TEXT, "text after the frame's closing ⧈", hint="one frame per line (\\n)")
        parser.skip_ws()


def parse_token(text: str) -> Token:
    """Parse a single token (word, literal or number) with optional surrounding whitespace."""
    item = parse_item(text)
    if isinstance(item, Frame):
        raise ParseError(codes.NOT_A_SINGLE_TOKEN, "expected a token, found a frame", text=text, offset=0)
    return item


def parse_item(text: str) -> Item:
    """Parse one token or one frame: the unit of a line in ``forge decode``."""
    parser = _Parser(text)
    parser.skip_ws()
    if parser.pos >= len(text):
        parser.fail(codes.NOT_A_SINGLE_TOKEN, "expected a token or a frame, found nothing")
    item = parser.frame(0) if text[parser.pos] == FRAME_START else parser.token(in_header=False)
    parser.skip_ws()
    parser.expect_end("after the token" if not isinstance(item, Frame) else "after the frame's closing ⧈")
    return item


class _Parser:
    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"ForgeNumerics-S text must be str, not {type(text).__name__}")
        self.text = text
        self.pos = 0

    # -- plumbing -----------------------------------------------------------------------------------

    def fail(self, code: str, message: str, *, at: int | None = None, hint: str = "") -> NoReturn:
        raise ParseError(code, message, hint=hint, text=self.text, offset=self.pos if at is None else at)

    def skip_ws(self) -> None:
        self.pos = _run_end(_WS, self.text, self.pos)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect_end(self, where: str) -> None:
        if self.pos < len(self.text):
            self.fail(codes.TRAILING_TEXT, f"unexpected {self.text[self.pos]!r} {where}")

    # -- frames -------------------------------------------------------------------------------------

    def frame(self, depth: int) -> Frame:
        start = self.pos
        if self.peek() != FRAME_START:
            found = repr(self.peek()) if self.peek() else "the end of the text"
            self.fail(codes.INVALID_FRAME_START, f"expected ⧆ (frame start), found {found}", hint=_LEGACY_HINT)
        if depth >= MAX_DEPTH:
            self.fail(codes.NESTING_TOO_DEEP, f"frames nested more than {MAX_DEPTH} deep")
        self.pos += 1
        header = self.header(start)
        self.skip_ws()
        payload: list[Item] = []
        if self.peek() != FRAME_END:
            while True:
                payload.append(self.item(depth))
                self.skip_ws()
                ch = self.peek()
                if ch == TOKEN_SEP:
                    self.pos += 1
                    self.skip_ws()
                    if self.peek() in (TOKEN_SEP, FRAME_END):
                        self.fail(codes.EMPTY_TOKEN, "empty payload item (nothing between two ⦙)")
                    continue
                if ch == FRAME_END:
                    break
                if not ch:
                    self.fail(codes.INVALID_FRAME_END, "the frame is not closed by ⧈", at=len(self.text))
                hint = _LEGACY_HINT if ch == HEADER_PAYLOAD_SEP else "payload items are separated by ⦙"
                self.fail(codes.UNEXPECTED_TOKEN, f"unexpected {ch!r} in the payload", hint=hint)
        self.pos += 1  # ⧈
        return Frame.trusted(header, tuple(payload))

    def header(self, frame_start: int) -> dict[str, Token]:
        header: dict[str, Token] = {}
        self.skip_ws()
        if self.peek() == HEADER_PAYLOAD_SEP:
            self.pos += 1
            return header
        while True:
            key_at = self.pos
            if self.peek() != WORD_MODE:
                self._header_structure_error(frame_start, "a header field starts with ≛KEY")
            if self.text.startswith(WORD_MODE + LITERAL_OPEN, self.pos):
                self.fail(codes.MALFORMED_HEADER_FIELD, "header keys are words, not literals")
            key = self.word()
            self.skip_ws()
            if self.peek() != TOKEN_SEP:
                self._header_structure_error(
                    frame_start, f"header field {key} has no value: expected ⦙ after the key", at=key_at
                )
            self.pos += 1
            self.skip_ws()
            value = self.token(in_header=True)
            if key in header:
                self.fail(
                    codes.DUPLICATE_HEADER_KEY,
                    f"header key {key} appears twice",
                    at=key_at,
                    hint="each key may appear once; merge or rename the fields",
                )
            header[key] = value
            self.skip_ws()
            ch = self.peek()
            if ch == FIELD_SEP:
                self.pos += 1
                self.skip_ws()
                continue
            if ch == HEADER_PAYLOAD_SEP:
                self.pos += 1
                return header
            if ch == TOKEN_SEP:
                self.fail(
                    codes.MALFORMED_HEADER_FIELD,
                    f"header field {key} has more than one value",
                    at=key_at,
                    hint="a header field is ≛KEY⦙VALUE; separate fields with ∴",
                )
            self._header_structure_error(frame_start, f"unexpected {ch!r} after header field {key}")

    def _header_structure_error(self, frame_start: int, message: str, at: int | None = None) -> NoReturn:
        ch = self.peek()
        if not ch or ch == FRAME_END:
            self.fail(
                codes.MISSING_HEADER_PAYLOAD_SEP,
                "the frame has no ∷ between header and payload",
                at=frame_start + 1,
                hint="write ⧆header∷payload⧈ (an empty header is ⧆∷…⧈)",
            )
        self.fail(codes.MALFORMED_HEADER_FIELD, message, at=at, hint="a header field is ≛KEY⦙VALUE")

    # -- tokens -------------------------------------------------------------------------------------

    def item(self, depth: int) -> Item:
        if self.peek() == FRAME_START:
            return self.frame(depth + 1)
        return self.token(in_header=False)

    def token(self, *, in_header: bool) -> Token:
        ch = self.peek()
        if ch == WORD_MODE:
            if self.text.startswith(LITERAL_OPEN, self.pos + 1):
                return Text(self.literal())
            return Text(self.word())
        if ch == NUMBER_MODE:
            return self.number()
        if not ch:
            self.fail(codes.EMPTY_TOKEN, "expected a token, found the end of the text")
        if ch in (TOKEN_SEP, FIELD_SEP, HEADER_PAYLOAD_SEP, FRAME_END):
            self.fail(codes.EMPTY_TOKEN, f"expected a token before {ch!r}")
        if ch == FRAME_START and in_header:
            self.fail(codes.UNEXPECTED_TOKEN, "frames may only stand in a payload, not in a header value")
        self.fail(codes.UNEXPECTED_TOKEN, f"unexpected {ch!r} where a token must start", hint=_TOKEN_HINT)

    def word(self) -> str:
        start = self.pos + 1
        end = _run_end(_RUN, self.text, start)
        word = self.text[start:end]
        if not word:
            self.fail(codes.EMPTY_TOKEN, "≛ with no word after it", at=start, hint=_WORD_HINT)
        if not WORD_RE.fullmatch(word):
            bad = next(i for i, ch in enumerate(word) if not WORD_RE.fullmatch(ch))
            ch = word[bad]
            self.fail(
                codes.INVALID_WORD,
                f"word {word!r} holds {ch!r} (U+{ord(ch):04X}), which words may not contain",
                at=start + bad,
                hint=_WORD_HINT,
            )
        self.pos = end
        return word

    def literal(self) -> str:
        open_at = self.pos
        start = self.pos + 2
        cursor = start
        text = self.text
        while True:
            close = text.find(LITERAL_CLOSE, cursor)
            if close < 0:
                self.fail(
                    codes.UNTERMINATED_LITERAL,
                    "literal ≛⟦ is never closed by ⟧",
                    at=open_at,
                    hint="close it with ⟧; a ⟧ inside a literal is written ⟧⟧",
                )
            if text.startswith(LITERAL_CLOSE, close + 1):
                cursor = close + 2
                continue
            break
        body = text[start:close]
        bad = LITERAL_FORBIDDEN_RE.search(body)
        if bad:
            self.fail(
                codes.INVALID_LITERAL,
                f"literal holds {forbidden_character(bad.group())}",
                at=start + bad.start(),
                hint="literals are single-line text; store multi-line text as BLOB-T",
            )
        self.pos = close + 1
        nxt = self.peek()
        if nxt and not nxt.isspace() and nxt not in (TOKEN_SEP, FIELD_SEP, HEADER_PAYLOAD_SEP, FRAME_END):
            self.fail(
                codes.UNEXPECTED_TOKEN,
                f"unexpected {nxt!r} right after a literal",
                hint="a ⟧ inside a literal is written ⟧⟧",
            )
        return body.replace(LITERAL_CLOSE * 2, LITERAL_CLOSE)

    def number(self) -> Token:
        start = self.pos + 1
        text = self.text
        body_at = start + 2
        try:
            if text.startswith(PROFILE_BLOB_T, start):  # the long one: scanned and decoded in one pass
                data, self.pos = scan_blob(text, body_at, _ends_token)
                return Blob(data)
            end = _run_end(_RUN, text, start)
            if end == start:
                self.fail(codes.EMPTY_TOKEN, "≗ with no number after it", at=start)
            token = decode_profile(text[start:body_at], text[body_at:end])
        except BodyError as error:
            # from None: the BodyError adds nothing the message does not already say
            raise ParseError(
                error.code, error.message, hint=error.hint, text=text, offset=body_at + error.offset
            ) from None
        if token is None:
            self.fail(
                codes.UNKNOWN_NUMERIC_PROFILE,
                f"unknown numeric profile {text[start:body_at]!r}",
                at=start,
                hint="profiles: ⊙⊙ INT-U3, ⊙⊗ INT-S3, ⊗⊙ FLOAT-T, ⊗⊗ DECIMAL-T, Φ⊙ BLOB-T",
            )
        self.pos = end
        return token


def _ends_token(ch: str) -> bool:
    return ch in _DELIMITER_CHARS or ch.isspace()


def decode_profile(profile: str, body: str) -> Token | None:
    """Decode a numeric body by its two profile trits; None for an unknown profile."""
    if profile == PROFILE_BLOB_T:
        return Blob(decode_blob(body))
    if profile == PROFILE_INT_U3:
        value, length_prefixed = decode_uint(body)
        return UInt(value, length_prefixed)
    if profile == PROFILE_INT_S3:
        return SInt(decode_sint(body))
    if profile == PROFILE_DECIMAL_T:
        return Dec.from_parts(*decode_decimal(body))
    if profile == PROFILE_FLOAT_T:
        return Float(decode_float(body))
    return None
