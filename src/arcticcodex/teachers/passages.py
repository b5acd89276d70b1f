"""Evidence text as passages: its prose sentences and table rows, each under the heading it sits in.

The offline drafter builds answers from these passages and the offline local judge checks claims
against them, so both must read a chunk the same way.  Real documents are not tidy prose:

* a heading is often a bare line (HTML and PDF text, pydoc's ``NAME``/``DESCRIPTION``, a setext
  ``Title`` over ``=====``), and joined to the next line it becomes a sentence that starts with the
  heading ("Retries and failures Teacher calls are retried …"); such lines are recognised and kept
  apart, as the heading of the sentences that follow;
* a Markdown table holds facts in rows; each data row becomes one passage that names its columns
  ("Key: threshold; Default: 0.8; Meaning: accept at this quality."), so a row can be quoted as
  evidence and a claim taken from it can be found again;
* code blocks are not prose and give no passages.

:func:`stems` is the word matching both use: a light suffix stripper, so "password" finds
"passwords" and "retries" finds "retried", without a stemming library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Passage", "evidence_passages", "evidence_sentences", "sentences", "stem", "stems"]

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n{2,}")
_BULLET = re.compile(r"^(?:[*+\->]|\d+[.)])\s+")
_SETEXT = re.compile(r"(?:=+|-+)")
_TABLE_RULE = re.compile(r":?-{2,}:?")
_GRID_RULE = re.compile(r"\+[-=+:]{2,}\+")
_MARGIN = re.compile(r"^\s*\| ?")
_JOINERS = re.compile(r"[._\-/]+")
_WORD = re.compile(r"[A-Za-z0-9][\w\-.']*")
_FENCES = ("```", "~~~")
_HEADING_WORDS = 8
_HEADING_CHARS = 60
_ROW_WORDS = 80
STOP_WORDS = frozenset(
    "a an and are as at be been by can do for from has have in is it its of on or that the their this to was were"
    " which with will would".split()
)


@dataclass(frozen=True, slots=True)
class Passage:
    """One prose sentence or one table row of a text, with the heading of the section it is in."""

    text: str
    heading: str = ""
    kind: Literal["sentence", "row"] = "sentence"
    level: int = 0
    """The heading's level: 1 for a document title (``#``, or text over ``===``), 2 for ``##`` or
    ``---`` …, 0 for a bare heading line (or none)."""


def sentences(text: str) -> list[str]:
    """``text`` split where one sentence ends and the next begins (or at a blank line)."""
    return [part.strip() for part in _SENTENCE.split(text) if part and part.strip()]


def evidence_sentences(text: str) -> list[str]:
    """The passages of ``text`` as plain strings (see :func:`evidence_passages`)."""
    return [passage.text for passage in evidence_passages(text)]


def evidence_passages(text: str) -> list[Passage]:
    """Prose sentences and table rows of a piece of evidence, in order (see the module docstring).

    Paragraphs are read with their wrapped lines joined; a list item starts a new sentence; a
    sentence shorter than three words or longer than sixty (a run-on, not one claim) is left out.
    """
    return _Reader().read(text)


def stem(word: str) -> str:
    """A word's stem for matching: lower case, without plural, -ing, -ed, -ation, -ure or a final e; y → i."""
    word = word.lower().strip(".'’")
    word = word.removesuffix("'s").removesuffix("’s")
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, keep in (("ations", 4), ("ation", 4), ("ings", 3), ("ing", 3), ("ies", 2), ("ied", 2)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep:
            word = word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
            break
    else:
        if word.endswith(("sses", "shes", "ches", "xes")):
            word = word[:-2]
        elif word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
            word = word[:-1]
        elif word.endswith("ed") and len(word) > 5:
            word = word[:-2]
    if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "lsz":
        word = word[:-1]  # runn(ing) → run, stopp(ed) → stop
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]  # encode/encoded/encoding → encod
    if len(word) > 5 and word.endswith("ur"):
        word = word[:-2]  # failure/failing → fail, configure/configuration → config
    if len(word) > 3 and word.endswith("y"):
        word = word[:-1] + "i"  # retry/retries/retried → retri
    return word


def stems(text: str, *, ignore: frozenset[str] = STOP_WORDS) -> set[str]:
    """The stems of the content words of ``text`` (stop words in ``ignore`` left out); a dotted or
    joined name counts whole and by its parts (``zlib.compress``: also ``zlib`` and ``compress``)."""
    found: set[str] = set()
    for word in _WORD.findall(text):
        parts = [word, *_JOINERS.split(word)] if _JOINERS.search(word.strip(".")) else [word]
        found.update(stem(part) for part in parts if len(part) > 1 and part.lower() not in ignore)
    return found


class _Reader:
    """One pass over the lines of a text, tracking the heading, the paragraph, a table and code fences."""

    def __init__(self) -> None:
        self.found: list[Passage] = []
        self.heading = ""
        self.level = 0
        self.segments: list[str] = []
        self.table: list[list[str]] = []

    def read(self, text: str) -> list[Passage]:
        raw = _without_margin(text.expandtabs(4).splitlines())
        lines = [line.strip() for line in raw]
        indents = [len(line) - len(line.lstrip()) for line in raw]
        fence: str | None = None
        skip_next = False
        for index, line in enumerate(lines):
            if skip_next:
                skip_next = False
                continue
            if fence is not None:
                fence = None if line.startswith(fence) else fence
                continue
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if line.startswith(_FENCES):
                self._flush()
                fence = line[:3]
            elif not line:
                self._flush()
            elif _GRID_RULE.fullmatch(line):  # a reStructuredText grid table's border; "=" ends its header
                if "=" in line and len(self.table) == 1:
                    self.table.append(["---"] * len(self.table[0]))
            elif line.startswith("|"):
                self._flush_paragraph()
                self.table.append(_cells(line))
            elif line.startswith("#"):
                self._flush()
                self.heading, self.level = line.lstrip("#").strip(), len(line) - len(line.lstrip("#"))
            elif following and _SETEXT.fullmatch(following) and len(following) >= 3 and not self.segments:
                self._flush()
                self.heading, self.level, skip_next = line, 1 if following[0] == "=" else 2, True
            elif self._is_bare_heading(line, following) or self._is_term(line, following, index, indents):
                self._flush()
                self.heading, self.level = line.rstrip(":"), 0
            elif _BULLET.match(line) or not self.segments or self.table:
                self._flush_table()
                self.segments.append(_BULLET.sub("", line))  # a list item starts a new sentence
            else:
                self.segments[-1] += " " + line  # a wrapped line continues the current one
        self._flush()
        return self.found

    def _is_bare_heading(self, line: str, following: str) -> bool:
        """A short line without closing punctuation that starts a section rather than a sentence."""
        words = line.split()
        if len(words) > _HEADING_WORDS or len(line) > _HEADING_CHARS or line[-1] in ".!?,;:)" or not following:
            return False
        if _BULLET.match(line) or (self.segments and self.segments[-1][-1:] not in ".!?:"):
            return False  # inside a sentence that wraps onto this line
        letters = [char for char in line if char.isalpha()]
        if len(letters) >= 2 and all(char.isupper() for char in letters):
            return True  # NAME, DESCRIPTION (pydoc), an all-caps section title
        if not (following[0].isupper() or following[0].isdigit()):
            return False
        titled = all(word[0].isupper() or word.lower() in STOP_WORDS for word in words if word[0].isalpha())
        return titled or len(line) < 0.6 * len(following)

    def _is_term(self, line: str, following: str, index: int, indents: list[int]) -> bool:
        """A line whose next line is indented under it (pydoc's ``name(args)`` over its description)."""
        if not following or line[-1] in ".!?,;:" or _BULLET.match(line) or self.segments or " - " in line:
            return False  # "name - description" is a sentence, whatever its wrapped lines' indent
        return 2 <= indents[index + 1] - indents[index] <= 8  # more is a hanging indent, not a term's body

    def _flush(self) -> None:
        self._flush_paragraph()
        self._flush_table()

    def _flush_paragraph(self) -> None:
        for segment in self.segments:
            for sentence in sentences(segment):
                if 3 <= len(sentence.split()) <= 60:
                    self.found.append(Passage(sentence, self.heading, "sentence", self.level))
        self.segments = []

    def _flush_table(self) -> None:
        rows, header = self.table, None
        if len(rows) >= 2 and all(_TABLE_RULE.fullmatch(cell) or not cell for cell in rows[1]):
            header, rows = rows[0], rows[2:]
        for cells in rows:
            if all(_TABLE_RULE.fullmatch(cell) or not cell for cell in cells):
                continue
            if header is not None and len(header) == len(cells):
                parts = [f"{name}: {cell}" if name else cell for name, cell in zip(header, cells, strict=True) if cell]
            else:
                parts = [cell for cell in cells if cell]
            text = "; ".join(parts)
            if len(parts) >= 2 and 2 <= len(text.split()) <= _ROW_WORDS:
                self.found.append(Passage(text if text[-1] in ".!?" else text + ".", self.heading, "row", self.level))
        self.table = []


def _without_margin(lines: list[str]) -> list[str]:
    """pydoc's class pages put ``|  `` before every line: a margin, not a table, when most lines have it
    and few of them end with ``|`` (as a Markdown table's rows do)."""
    filled = [line.strip() for line in lines if line.strip()]
    margined = [line for line in filled if line.startswith("|")]
    if len(margined) < 0.6 * max(1, len(filled)) or sum(line.endswith("|") for line in margined) > len(margined) / 2:
        return lines
    return [_MARGIN.sub("", line, count=1) for line in lines]


def _cells(line: str) -> list[str]:
    inner = line.strip()[1:]
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", inner)]
