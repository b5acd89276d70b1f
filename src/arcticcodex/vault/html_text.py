"""The visible text of an HTML page, read in one forward pass: time linear in the input, always.

Python's :class:`html.parser.HTMLParser` was the reader until it met hostile pages.  On Python 3.11
it re-scans the rest of the document at every unterminated construct, so ``<a `` repeated 20,000
times took 30 seconds and ``<!--`` or ``<![CDATA[`` repeated are as bad; and the extractor above it
searched its stack of open hidden elements on every tag, so 40,000 nested ``<noscript>`` took a
minute.  This module is its own tokenizer instead, built so that every character is looked at a
bounded number of times:

* each construct is found with ``str.find`` or a possessive regular expression from where the last
  one ended, and a construct the document never closes (a tag, a comment, a quoted attribute value)
  swallows the rest of the document, as in a browser, instead of being retried at the next ``<``;
* ``script``, ``style``, ``noscript`` (as with scripting on), ``iframe``, ``noembed`` and ``noframes`` are
  raw text, skipped up to their end tag in one search, so they cannot nest at all; ``title`` is read
  up to ``</title`` the same way;
* the elements whose nesting changes the text (``template``, whose content is hidden, and ``pre``,
  whose whitespace is kept) are counted per name, so an end tag with nothing to close costs O(1).

What a reader of the page's *content* does not need is left out too: navigation and site banners —
``<nav>``, a ``<header>`` or ``<footer>`` that is the page's own (not an article's or a section's),
and any element with ``role="navigation"``, ``"banner"`` or ``"contentinfo"`` — so menus and
copyright lines do not become chunks that every search finds.  Such an element is skipped up to its
end tag, counting only elements of its own name; one the page never closes (a broken page) is kept,
so a missing ``</nav>`` cannot swallow the rest of the page.  ``<br>`` breaks a line, not a paragraph
(two in a row, an empty line, do end one), and non-breaking spaces are spaces.

Nesting those elements deeper than :data:`MAX_NESTING` is refused with a
:class:`~arcticcodex.errors.UserError` naming the file, the depth and the cap — no page needs it, and
importing part of such a document would hide that it was cut.  Ordinary nesting (``div`` in ``div``)
keeps no state here and is not limited.  Character references are decoded as :func:`html.unescape`
does, except that a decimal reference too long to be a code point becomes U+FFFD instead of
overflowing ``int`` (Python refuses to parse more than 4,300 digits).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from ..errors import UserError

__all__ = ["MAX_NESTING", "PageText", "page_text"]

MAX_NESTING = 256
_RAW_TEXT = frozenset({"script", "style", "noscript", "iframe", "noembed", "noframes"})
_TRACKED = frozenset({"template", "pre"})
_HEAD_CONTENT = frozenset({"title", "meta", "link", "base", "style", "script", "noscript", "template"})
_BLOCK_NAMES = (
    "address article aside blockquote body caption dd details dialog div dl dt fieldset figcaption "
    "figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr html li main nav ol p pre section summary "
    "table tbody tfoot thead tr ul"
)
_BLOCKS = frozenset(_BLOCK_NAMES.split())
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_HTML_SPACE = re.compile(r"[ \t\n\r\f\xa0]+")  # with U+00A0: a non-breaking space is a space to a reader
_SECTIONING = frozenset({"article", "aside", "main", "section"})  # a header or footer inside is content
_BOILERPLATE_ROLES = frozenset({"navigation", "banner", "contentinfo"})
_VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())
_ROLE = re.compile(r"""[\t\n\f\r /]role[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:"([^"]*+)"|'([^']*+)'|([^\t\n\f\r >]++))""", re.I)
_TAG_NAME = re.compile(r"[a-zA-Z][^\t\n\f\r />\x00]*+")
# What follows a tag name up to its '>': attributes, with quoted values that may hold '>'.  The three
# alternatives start with different characters and are possessive, and an unclosed quote runs to the
# end, so a tag is matched in one pass and never re-tried.
_TAG_REST = re.compile(r"""(?:[^>"'=]++|=[\t\n\f\r ]*+(?:"[^"]*+(?:"|\Z)|'[^']*+(?:'|\Z))?|["'])*+""")
_LONG_DECIMAL_REFERENCE = re.compile(r"&#([0-9]{9,})(;?)")
_RAW_END: dict[str, re.Pattern[str]] = {}


class PageText:
    """What an HTML page shows: ``title`` (the first non-empty ``<title>``), ``first_h1``, ``paragraphs``."""

    def __init__(self) -> None:
        self.paragraphs: list[str] = []
        self.heading_levels: dict[int, int] = {}  # index in paragraphs -> 1..6, for <h1>..<h6> paragraphs
        self._heading_level = 0  # the level of the <hN> element open now, else 0
        self.title = ""
        self._h1: list[str] = []
        self._buffer: list[str] = []
        self._lines: list[str] = []  # the paragraph's lines before its last <br>
        self._skip: tuple[str, int] | None = None  # the boilerplate element being skipped, and its depth
        self._skipped: list[str] = []  # its paragraphs, kept in case the page never closes it
        self._sections = 0  # open article/aside/main/section elements
        self._open: list[str] = []  # open template and pre elements, innermost last
        self._counts = dict.fromkeys(_TRACKED, 0)
        self._head_depth: int | None = None  # len(_open) when <head> opened, while it is open
        self._in_h1 = self._h1_done = self._h1_has_text = False
        self.deepest = 0
        self.first_too_deep: int | None = None  # offset of the first element past MAX_NESTING

    @property
    def first_h1(self) -> str:
        return "".join(self._h1)

    def read(self, text: str) -> None:
        """Tokenize ``text`` (the whole page) and collect its visible text."""
        position, length = 0, len(text)
        while position < length:
            opening = text.find("<", position)
            if opening < 0:
                self._data(text[position:])
                break
            if opening > position:
                self._data(text[position:opening])
            position = self._markup(text, opening)
        self._flush()
        self._keep_skipped()

    def _markup(self, text: str, opening: int) -> int:
        """Handle the markup at ``text[opening] == '<'``; return where the text after it starts."""
        after = text[opening + 1 : opening + 2]
        if after.isascii() and after.isalpha():
            name_match = _TAG_NAME.match(text, opening + 1)
            if name_match is None:  # pragma: no cover - a letter always starts a name
                return opening + 1
            close = _after_attributes(text, name_match.end())
            if close >= len(text):
                return len(text)  # a tag the file never closes: the rest of it is inside the tag
            name = name_match.group().lower()
            self._start(name, opening, _role(text, name_match.end(), close) if name not in _VOID else "")
            if name in _RAW_TEXT or name == "title":  # "<script/>" starts a script too, as in a browser
                return self._raw_text(text, name, close + 1)
            if close > name_match.end() and text[close - 1] == "/" and name not in _VOID:
                self._end(name)
            return close + 1
        if after == "/":
            name_match = _TAG_NAME.match(text, opening + 2)
            if name_match is not None:
                close = _after_attributes(text, name_match.end())
                if close < len(text):
                    self._end(name_match.group().lower())
                return close + 1
            if text.startswith(">", opening + 2):
                return opening + 3  # "</>" is nothing
            return self._bogus_comment(text, opening + 2)
        if after == "!":
            if text.startswith("<!--", opening):
                if text.startswith(">", opening + 4):
                    return opening + 5  # "<!-->"
                if text.startswith("->", opening + 4):
                    return opening + 6  # "<!--->"
                close = text.find("-->", opening + 4)
                return len(text) if close < 0 else close + 3
            return self._bogus_comment(text, opening + 2)
        if after == "?":
            return self._bogus_comment(text, opening + 2)
        self._data("<")
        return opening + 1

    @staticmethod
    def _bogus_comment(text: str, start: int) -> int:
        """A declaration, processing instruction or malformed end tag: skipped through its '>'."""
        close = text.find(">", start)
        return len(text) if close < 0 else close + 1

    def _raw_text(self, text: str, name: str, start: int) -> int:
        """Skip (or, for the title, take) an element's raw content, up to its end tag, in one search."""
        pattern = _RAW_END.get(name)
        if pattern is None:
            pattern = _RAW_END[name] = re.compile(rf"</{name}(?=[\t\n\f\r />])", re.IGNORECASE)
        found = pattern.search(text, start)
        end = found.start() if found is not None else len(text)
        if name == "title":
            if not self.title:
                self.title = _unescape(text[start:end])
            else:
                self._data(text[start:end])
        return end

    def _start(self, tag: str, offset: int, role: str = "") -> None:
        if self._skip is not None:
            if tag == self._skip[0]:
                self._skip = (tag, self._skip[1] + 1)
        elif tag == "nav" or role in _BOILERPLATE_ROLES or (tag in ("header", "footer") and not self._sections):
            self._flush()
            self._skip = (tag, 1)
        if tag in _SECTIONING:
            self._sections += 1
        if tag == "br":
            self._line_break()
        if self._head_depth is not None and tag not in _HEAD_CONTENT:
            self._head_depth = None  # </head> is optional: body content closes it
        if tag in ("td", "th"):
            self._buffer.append(" ")
        if tag in _BLOCKS:
            self._flush()  # before a <pre> opens: the text before it is not preformatted
        if tag in _HEADINGS:
            self._heading_level = int(tag[1])
        if tag == "head":
            if self._head_depth is None:
                self._head_depth = len(self._open)
        elif tag in _TRACKED:
            self._open.append(tag)
            self._counts[tag] += 1
            if len(self._open) > self.deepest:
                self.deepest = len(self._open)
                if self.deepest > MAX_NESTING and self.first_too_deep is None:
                    self.first_too_deep = offset
        elif tag == "h1" and not self._h1_done:
            self._in_h1 = True

    def _end(self, tag: str) -> None:
        if tag == "br":  # "</br>" is a <br> to a browser
            self._line_break()
        if tag in _SECTIONING and self._sections:
            self._sections -= 1
        if tag in _BLOCKS:
            self._flush()  # before a </pre> closes: its text is preformatted
        if tag in _HEADINGS:
            self._heading_level = 0
        if tag == "head" and self._head_depth is not None:
            self._close_down_to(self._head_depth)
            self._head_depth = None
        elif tag in _TRACKED and self._counts[tag]:
            while self._open:
                closed = self._open.pop()
                self._counts[closed] -= 1
                if closed == tag:
                    break
        elif tag == "h1" and self._in_h1:
            self._in_h1 = False
            self._h1_done = self._h1_has_text  # an empty <h1> does not end the search for the first one
        if self._skip is not None and tag == self._skip[0]:
            depth = self._skip[1] - 1
            if not depth:
                self._flush()
                self._skipped.clear()  # closed: it was boilerplate indeed
            self._skip = (tag, depth) if depth else None
        elif tag in ("body", "html"):
            self._keep_skipped()

    def _keep_skipped(self) -> None:
        """The page ended with a boilerplate element still open: keep its text rather than lose the page."""
        if self._skip is not None:
            self._flush()
            self.paragraphs.extend(self._skipped)
            self._skipped.clear()
            self._skip = None

    def _line_break(self) -> None:
        if self._counts["pre"]:
            self._buffer.append("\n")
        elif self._lines and not "".join(self._buffer).strip():
            self._flush()  # <br><br>: an empty line ends the paragraph
        else:
            self._lines.append("".join(self._buffer))
            self._buffer.clear()

    def _close_down_to(self, depth: int) -> None:
        while len(self._open) > depth:
            self._counts[self._open.pop()] -= 1

    def _data(self, raw: str) -> None:
        if self._head_depth is None and not self._counts["template"]:
            text = _unescape(raw)
            self._buffer.append(text)
            if self._in_h1:
                self._h1.append(text)
                self._h1_has_text = self._h1_has_text or not text.isspace()

    def _flush(self) -> None:
        text = "".join(self._buffer)
        self._buffer.clear()
        if self._counts["pre"]:
            text = text.replace("\xa0", " ").strip("\r\n").rstrip()
        else:
            lines = (_HTML_SPACE.sub(" ", line).strip(" ") for line in (*self._lines, text))
            text = "\n".join(line for line in lines if line)
        self._lines.clear()
        if text.strip():
            if self._skip is not None:
                self._skipped.append(text)
                return
            if self._heading_level:
                self.heading_levels[len(self.paragraphs)] = self._heading_level
            self.paragraphs.append(text)


def page_text(path: Path, text: str) -> PageText:
    """Read the page ``text`` of the file ``path``; raise ``UserError`` if it nests past :data:`MAX_NESTING`."""
    page = PageText()
    page.read(text)
    if page.first_too_deep is not None:
        line = text.count("\n", 0, page.first_too_deep) + 1
        raise UserError(
            f"{path} nests <template>/<pre> elements {page.deepest:,} deep (past the cap of {MAX_NESTING} "
            f"from line {line} on); no real page nests them like that, so the file is generated or hostile. "
            "It was not imported: remove the nesting (or save the page's text as .txt) and import it again."
        )
    return page


def _role(text: str, start: int, close: int) -> str:
    """The ``role`` attribute of the tag whose attributes are ``text[start:close]`` (lower case), or ""."""
    found = _ROLE.search(text, start, close)
    words = (found.group(1) or found.group(2) or found.group(3) or "").split() if found else []
    return words[0].lower() if words else ""  # a list of roles: the first one a browser knows wins


def _after_attributes(text: str, start: int) -> int:
    """Where the tag whose attributes start at ``start`` closes (its '>'), or ``len(text)`` if it never does."""
    rest = _TAG_REST.match(text, start)
    return rest.end() if rest is not None else start  # the pattern can match empty: never None


def _unescape(text: str) -> str:
    """:func:`html.unescape`, safe from decimal references too long for ``int``."""
    if "&" not in text:
        return text
    if "&#" in text:
        text = _LONG_DECIMAL_REFERENCE.sub(_shorten_reference, text)
    return html.unescape(text)


def _shorten_reference(match: re.Match[str]) -> str:
    digits = match.group(1).lstrip("0")
    if len(digits) > 7:  # over 9,999,999: past U+10FFFF, which html.unescape also turns into U+FFFD
        return "\ufffd"
    return f"&#{digits or '0'}{match.group(2)}"
