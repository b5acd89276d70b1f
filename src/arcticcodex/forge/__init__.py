"""ForgeNumerics-S: the frame language every signed ArcticCodex artefact is written in.

The format is described in ``shared/design/FORGENUMERICS.md``; the layouts of each profile are in
:mod:`.numbers` and :mod:`.blob`, the grammar in :mod:`.scanner`.  Everyday use::

    from arcticcodex import forge

    frame = forge.Frame({"TYPE": "FACT", "CONFIDENCE": forge.Dec("0.9")}, ["SUBJ", "Fox"])
    text = frame.to_text()                 # canonical, one line
    forge.parse_frame(text) == frame       # True
    forge.canonicalize("⧆≛Z⦙≛1∴≛A⦙≛2∷≛x⧈")  # '⧆≛A⦙≛2∴≛Z⦙≛1∷≛x⧈'
"""

from __future__ import annotations

from ..errors import EncodeError, ForgeError, ParseError, ValidationError
from .frame import Frame, Item, token_to_json
from .scanner import iter_document, parse_document, parse_frame, parse_item, parse_token
from .tokens import Blob, Dec, Float, SInt, Text, Token, UInt, to_token


def canonicalize(text: str) -> str:
    """The canonical text of one frame (idempotent: canonicalizing it again changes nothing)."""
    return parse_frame(text).to_text()


def is_canonical(text: str) -> bool:
    """True when ``text`` is exactly the canonical text of a frame; False for anything else."""
    try:
        return canonicalize(text) == text
    except ParseError:
        return False


def encode(value: object) -> str:
    """Canonical text of a Python value, token or frame (see :func:`to_token` for the mapping)."""
    if isinstance(value, Frame):
        return value.to_text()
    return to_token(value).to_text()


def write_document(frames: list[Frame]) -> str:
    """A ``.fn`` document: one canonical frame per line."""
    return "".join(frame.to_text() + "\n" for frame in frames)


__all__ = [
    "Blob",
    "Dec",
    "EncodeError",
    "Float",
    "ForgeError",
    "Frame",
    "Item",
    "ParseError",
    "SInt",
    "Text",
    "Token",
    "UInt",
    "ValidationError",
    "canonicalize",
    "encode",
    "is_canonical",
    "iter_document",
    "parse_document",
    "parse_frame",
    "parse_item",
    "parse_token",
    "to_token",
    "token_to_json",
    "write_document",
]
