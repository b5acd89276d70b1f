"""Turn an imported file's bytes into the text the vault stores, chunks and cites.

Chunk offsets index the *stored text* (``LoadedDocument.text``), and the integrity check re-derives
chunks from it, so each loader's job is to produce that text deterministically from the bytes alone.
Plain text, Markdown and reStructuredText are stored exactly as decoded (no newline or BOM handling; a
BOM stays as U+FEFF), so for UTF-8 files the stored text's UTF-8 bytes *are* the file's bytes and a
citation's byte range can be checked against the original file; their underlined section titles are
found here (:mod:`.section_titles`) and handed to the chunker with the text.  HTML, PDF and JSONL are
rendered to text first; their offsets point into that rendering.

A text, Markdown or HTML file (with no declared charset) that is not UTF-8 is usually a Windows or
old Unix file: when its bytes hold no UTF-8 sequence at all, no NUL and few control characters, it is
decoded as **cp1252** (if it uses that code page's printable 0x80–0x9F: curly quotes, dashes, €) or
**latin-1**, and ``LoadedDocument.encoding`` says which, for the import report.  A file that mixes
UTF-8 with stray bytes, or looks binary, is still refused with the byte, the line and the fix.

A PDF's metadata title is often a placeholder its tool left (``about:blank`` from a browser's print,
``Untitled``, ``Microsoft Word - x.docx``): those fall back to the file's name.

Every problem a user can cause (wrong encoding, a broken or encrypted PDF, a bad JSONL line, an
unsupported suffix) becomes a :class:`~arcticcodex.errors.UserError` naming the file, the place and the
fix; nothing from :mod:`pypdf` or :mod:`json` escapes.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import UserError
from .chunker import iter_headings
from .html_text import page_text
from .section_titles import TITLE_STYLE_OF, section_titles

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Conversation",
    "LoadedDocument",
    "Message",
    "load_document",
    "media_type_of",
    "stem_title",
    "undecodable",
]

ROLES = ("system", "user", "assistant", "tool")
_SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}
_MEDIA_TYPES = {
    ".txt": "text/plain", ".text": "text/plain", ".md": "text/markdown", ".markdown": "text/markdown",
    ".rst": "text/x-rst",
    ".html": "text/html", ".htm": "text/html", ".pdf": "application/pdf", ".jsonl": "application/x-ndjson",
}  # fmt: skip
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_MEDIA_TYPES)
_SURROGATES = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of an imported conversation; ``citations`` are chunk ids the source recorded."""

    role: str
    content: str
    citations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Conversation:
    """An imported conversation; ``external_id`` is the source's own id, if it had one."""

    title: str
    messages: tuple[Message, ...]
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    """A file rendered for the vault: ``text`` is what chunk offsets index."""

    title: str
    text: str
    media_type: str
    conversations: tuple[Conversation, ...] = ()
    encoding: str = "utf-8"
    """How the bytes were decoded: utf-8, or cp1252/latin-1 when detected (see the module docstring)."""
    headings: list[tuple[int, int, str, int]] | None = None
    """``(start, end, title, level)`` of the section titles in ``text`` when the chunker cannot find them by
    their ``#`` marks alone: an HTML page's headings, underlined titles (:mod:`.section_titles`); None: it can."""


def load_document(path: Path, data: bytes) -> LoadedDocument:
    """Render ``data`` (the bytes of ``path``) by the path's suffix; raise ``UserError`` if it can't be."""
    suffix = path.suffix.lower()
    media_type = media_type_of(path)
    if media_type is None:
        raise UserError(
            f"{path}: cannot import files ending in {suffix or '(no suffix)'!r}; "
            f"supported suffixes are {' '.join(sorted(SUPPORTED_SUFFIXES))}."
        )
    if media_type == "text/html":
        return _load_html(path, data)
    if media_type == "application/pdf":
        return _load_pdf(path, data)
    if media_type == "application/x-ndjson":
        return _load_jsonl(path, _decode(path, data))  # JSON Lines are UTF-8 by definition
    text, encoding = decode_text(path, data)
    headings = section_titles(text, TITLE_STYLE_OF[media_type])
    title = stem_title(path)
    if headings:
        title = headings[0][2] if media_type != "text/plain" else title
    elif media_type == "text/markdown":
        title = next((heading for _, _, heading in iter_headings(text)), title)
    return LoadedDocument(title=title, text=text, media_type=media_type, encoding=encoding, headings=headings)


def media_type_of(path: Path) -> str | None:
    """The media type a file is imported as (by its suffix), or None when it cannot be imported."""
    return _MEDIA_TYPES.get(path.suffix.lower())


_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xef][\x80-\xbf]{2}|\xf0[\x90-\xbf][\x80-\xbf]{2}"
    rb"|[\xf1-\xf4][\x80-\xbf]{3}"
)
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")  # not tab, newlines, form feed, escape
_CP1252_ONLY = re.compile(rb"[\x80-\x9f]")  # printable in cp1252, C1 controls in latin-1
_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")


def decode_text(path: Path, data: bytes) -> tuple[str, str]:
    """``data`` as text and the encoding it was read as: UTF-8, else a detected cp1252 or latin-1."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        mixed = _UTF8_SEQUENCE.search(data) is not None  # real UTF-8 next to stray bytes: a damaged file
        utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))  # not an 8-bit text at all
        binary = b"\x00" in data or len(_CONTROL_BYTES.findall(data[:65536])) > 8
        if mixed or utf16 or binary:
            line = data.count(b"\n", 0, exc.start) + 1
            raise undecodable(path, "utf-8", exc.start, data[exc.start], line) from exc
    if _CP1252_ONLY.search(data) and not _CP1252_UNDEFINED.intersection(data):
        return data.decode("cp1252"), "cp1252"
    return data.decode("latin-1"), "latin-1"


def _decode(path: Path, data: bytes, encoding: str = "utf-8") -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise undecodable(path, encoding, exc.start, data[exc.start], line) from exc


def undecodable(path: Path, encoding: str, offset: int, value: int, line: int) -> UserError:
    """The error for the byte at ``offset`` (on ``line``) of ``path`` that is not valid ``encoding``."""
    return UserError(
        f"{path} is not valid {encoding}: byte {offset} (0x{value:02x}, line {line}) "
        f"cannot be decoded. Convert it to UTF-8, e.g. iconv -f latin1 -t utf-8 "
        f"'{path.name}' > '{path.stem}.utf8{path.suffix}', and import the converted file."
    )


def stem_title(path: Path) -> str:
    """A title made of the file name, for documents that carry none."""
    return " ".join(path.stem.replace("-", " ").replace("_", " ").split()) or path.name


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- HTML ------------------------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)


def _charset(label: str) -> str:
    """The codec for a <meta> charset label; unknown or non-text codecs fall back to UTF-8."""
    try:
        name = codecs.lookup(label).name
        b"a".decode(name)  # rejects bytes-to-bytes codecs (rot13, zlib) and ASCII-incompatible UTF-16/32
    except (LookupError, UnicodeError):
        return "utf-8"  # browsers ignore a charset they do not know; <meta> UTF-16 also means UTF-8
    return "utf-8" if any(word in name for word in ("escape", "idna", "punycode")) else name


def _load_html(path: Path, data: bytes) -> LoadedDocument:
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
        text = _decode(path, data, encoding)
    elif declared := _META_CHARSET.search(data[:4096]):
        encoding = _charset(declared.group(1).decode("ascii"))
        text = _decode(path, data, encoding)
    else:  # no BOM, no charset: UTF-8, or what a browser would guess for an old page
        text, encoding = decode_text(path, data)
    page = page_text(path, text)
    title = _title(page.title) or _one_line(page.first_h1) or stem_title(path)
    headings: list[tuple[int, int, str, int]] = []
    offset = 0
    for index, paragraph in enumerate(page.paragraphs):
        level = page.heading_levels.get(index)
        if level is not None:
            headings.append((offset, offset + len(paragraph), _one_line(paragraph), level))
        offset += len(paragraph) + 2
    return LoadedDocument(
        title=title,
        text="\n\n".join(page.paragraphs),
        media_type="text/html",
        encoding=encoding.removesuffix("-sig"),
        headings=headings,
    )


# --- PDF -------------------------------------------------------------------------------------------


def _load_pdf(path: Path, data: bytes) -> LoadedDocument:
    from pypdf import PdfReader  # imported here: only PDF imports pay for it

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UserError(
                f"{path} is encrypted with a password. Save an unencrypted copy (e.g. qpdf --decrypt "
                f"--password=… '{path.name}' decrypted.pdf) and import that."
            )
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        metadata = reader.metadata
        raw_title = metadata.title if metadata is not None else None
    except UserError:
        raise
    except Exception as exc:  # pypdf raises many built-in types on malformed input, not only PyPdfError
        raise UserError(
            f"{path} could not be read as a PDF ({type(exc).__name__}: {exc}). The file may be damaged "
            "or not a PDF; re-export or repair it (e.g. qpdf in.pdf repaired.pdf) and import it again."
        ) from exc
    text = _clean("\n\n".join(page for page in pages if page))
    if not pages:
        raise UserError(f"{path} has no pages; it may be damaged. Re-export it and import it again.")
    if not text.strip():
        raise UserError(
            f"{path} has no extractable text ({len(pages)} page(s)); it is probably scanned images. "
            "Run OCR first (e.g. ocrmypdf in.pdf out.pdf) and import the result."
        )
    title = _title(_clean(raw_title)) if isinstance(raw_title, str) else ""
    return LoadedDocument(title=title or stem_title(path), text=text, media_type="application/pdf")


_PLACEHOLDER_TITLE = re.compile(
    r"(about:\S*|untitled(?: document)?(?:[ -]?\d+)?|document ?\d*|no title|none|null|\(null\)|title|"
    r"\(?anonymous\)?|unknown|[-_.\s]*|[\w .-]+\.(?:docx?|odt|rtf|pages|pptx?|xlsx?|html?|tex|txt)|"
    r"(?:https?|file)://\S*)",
    re.IGNORECASE,
)
_TOOL_PREFIX = re.compile(r"^(?:microsoft (?:word|powerpoint|excel) - )", re.IGNORECASE)


def _title(raw: str) -> str:
    """A metadata title worth showing, or "" for a placeholder a tool left (see the module docstring)."""
    title = _one_line(_TOOL_PREFIX.sub("", _one_line(raw)))
    return "" if _PLACEHOLDER_TITLE.fullmatch(title) else title


# --- JSONL conversations ---------------------------------------------------------------------------


def _load_jsonl(path: Path, text: str) -> LoadedDocument:
    loose: list[Message] = []  # one message per line: the whole file is one conversation
    found: list[tuple[str, tuple[Message, ...], str | None]] = []  # one conversation per line
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        if not line.strip():
            continue
        fail = partial(_line_error, path, number)
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, too-long ints, deep nesting
            raise fail(f"not valid JSON ({exc})") from exc
        if not isinstance(record, dict):
            raise fail(f"expected a JSON object, found {type(record).__name__}")
        if "messages" in record or "conversations" in record:
            found.append(_conversation(record, fail))
        else:
            loose.append(_message(record, fail))
        if loose and found:
            raise fail("a file holds either one message per line or one conversation per line, not both")
    if loose:
        found.append(("", tuple(loose), None))
    if not found:
        raise UserError(f"{path} contains no messages; add one JSON object per line.")
    stem = stem_title(path)
    conversations = tuple(
        Conversation(title or _derived_title(messages) or (f"{stem} {i}" if len(found) > 1 else stem), messages, id_)
        for i, (title, messages, id_) in enumerate(found, start=1)
    )
    return LoadedDocument(
        title=conversations[0].title,
        text="\n\n".join(_render(c) for c in conversations),
        media_type="application/x-ndjson",
        conversations=conversations,
    )


def _line_error(path: Path, number: int, problem: str) -> UserError:
    return UserError(f"{path}, line {number}: {problem}.")


def _conversation(
    record: dict[str, Any], fail: Callable[[str], UserError]
) -> tuple[str, tuple[Message, ...], str | None]:
    """Read a conversation line: ``{"messages": [...]}`` or ShareGPT ``{"conversations": [...]}``."""
    sharegpt = "messages" not in record
    turns = record["conversations" if sharegpt else "messages"]
    if not isinstance(turns, list) or not turns:
        raise fail(f"{'conversations' if sharegpt else 'messages'!r} must be a non-empty list of messages")
    external_id, title = record.get("id"), record.get("title", "")
    if external_id is not None and (isinstance(external_id, bool) or not isinstance(external_id, str | int)):
        raise fail("'id' must be a string or a number")
    if not isinstance(title, str):
        raise fail("'title' must be a string")
    messages = tuple(_message(turn, fail, sharegpt=sharegpt) for turn in turns)
    return _one_line(_clean(title)), messages, None if external_id is None else str(external_id)


def _message(record: Any, fail: Callable[[str], UserError], *, sharegpt: bool = False) -> Message:
    """Read one message: ``{"role", "content"}``, or ShareGPT's ``{"from", "value"}``."""
    if not isinstance(record, dict):
        raise fail(f"a message must be a JSON object, found {type(record).__name__}")
    role_key, content_key = ("from", "value") if sharegpt else ("role", "content")
    roles = _SHAREGPT_ROLES if sharegpt else {role: role for role in ROLES}
    if role_key not in record or content_key not in record:
        raise fail(f"a message needs both {role_key!r} and {content_key!r}")
    role, content = record[role_key], record[content_key]
    if not isinstance(role, str) or role not in roles:
        raise fail(f"unknown {role_key} {role!r}; expected one of {', '.join(roles)}")
    if not isinstance(content, str):
        raise fail(f"{content_key!r} must be a string, found {type(content).__name__}")
    key = "citations" if "citations" in record else "evidence"
    citations = record.get(key, [])
    if not isinstance(citations, list) or not all(isinstance(c, str) for c in citations):
        raise fail(f"{key!r} must be a list of chunk id strings")
    return Message(roles[role], _clean(content), tuple(_clean(c) for c in citations))


def _clean(text: str) -> str:
    """Replace lone surrogates (JSON can spell them, UTF-8 cannot hold them) with U+FFFD."""
    return _SURROGATES.sub("\ufffd", text)


def _derived_title(messages: tuple[Message, ...]) -> str:
    first = next((_one_line(m.content) for m in messages if m.role == "user" and m.content.strip()), "")
    return first if len(first) <= 60 else first[:59].rstrip() + "…"


def _render(conversation: Conversation) -> str:
    """A conversation as paragraphs: a ``# title`` heading (which chunks inherit), then each turn."""
    turns = (f"{m.role.capitalize()}: {m.content.strip()}".rstrip() for m in conversation.messages)
    return "\n\n".join([f"# {conversation.title}", *turns])
