"""Frames: ``⧆ header ∷ payload ⧈``, always written in canonical form.

A :class:`Frame` has a header (key → token, keys unique) and a payload (tokens and nested frames).
There is exactly one way to write a frame: header fields sorted by key in code-point order (as the
original sorted them, so ``TYPE`` usually comes last), numbers in canonical form, strings as words
when they can be, no whitespace outside literals.  ``Frame.to_text()`` is therefore also the
canonical form, and the byte string that signatures cover (``to_bytes()``).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from ..errors import EncodeError
from . import codes
from .symbols import FIELD_SEP, FRAME_END, FRAME_START, HEADER_PAYLOAD_SEP, TOKEN_SEP, WORD_MODE
from .tokens import WORD_RE, Blob, Dec, Float, SInt, Text, Token, UInt, to_token

if TYPE_CHECKING:
    from typing import TypeAlias

Item: TypeAlias = Union[Token, "Frame"]  # noqa: UP007 - a forward reference needs Union


@dataclass(frozen=True, slots=True, eq=True)
class Frame:
    """One ForgeNumerics-S frame.  Plain Python values are converted with :func:`to_token`.

    >>> Frame({"TYPE": "FACT", "CONFIDENCE": Dec("0.95")}, ["SUBJ", "Einstein"]).to_text()
    '⧆≛CONFIDENCE⦙≗⊗⊗⊙◦Φ◽⊗⊙⊗⊗Φ∴≛TYPE⦙≛FACT∷≛SUBJ⦙≛Einstein⧈'
    """

    header: Mapping[str, Token] = field(default_factory=dict)
    payload: tuple[Item, ...] = ()

    def __init__(self, header: Mapping[str, object] | None = None, payload: Iterable[object] = ()) -> None:
        converted: dict[str, Token] = {}
        for key, value in (header or {}).items():
            if not isinstance(key, str) or not WORD_RE.fullmatch(key):
                raise EncodeError(
                    codes.INVALID_ARGUMENT,
                    f"header key {key!r} is not a word",
                    hint="keys are single words without spaces or ForgeNumerics symbols, e.g. SOURCE_ID",
                )
            if isinstance(value, Frame):
                raise EncodeError(
                    codes.INVALID_ARGUMENT,
                    f"header field {key} holds a frame; frames may only stand in the payload",
                )
            converted[key] = to_token(value)
        items = tuple(item if isinstance(item, Frame) else to_token(item) for item in payload)
        object.__setattr__(self, "header", converted)
        object.__setattr__(self, "payload", items)

    @classmethod
    def trusted(cls, header: dict[str, Token], payload: tuple[Item, ...]) -> Frame:
        """Build from already-checked parts (the parser's fast path: keys and tokens are valid)."""
        frame = object.__new__(cls)
        object.__setattr__(frame, "header", header)
        object.__setattr__(frame, "payload", payload)
        return frame

    # -- access -------------------------------------------------------------------------------------

    @property
    def type(self) -> str | None:
        """The TYPE header as a string, or None when absent or not text."""
        value = self.header.get("TYPE")
        return value.text if isinstance(value, Text) else None

    def get(self, key: str) -> Token | None:
        return self.header.get(key)

    def frames(self) -> Iterator[Frame]:
        """Nested frames in the payload, in order."""
        return (item for item in self.payload if isinstance(item, Frame))

    # -- text ---------------------------------------------------------------------------------------

    def to_text(self) -> str:
        """The canonical text of this frame (one line, no whitespace outside literals)."""
        parts: list[str] = [FRAME_START]
        parts.append(
            FIELD_SEP.join(
                WORD_MODE + key + TOKEN_SEP + self.header[key].to_text() for key in sorted(self.header)
            )
        )
        parts.append(HEADER_PAYLOAD_SEP)
        parts.append(TOKEN_SEP.join(item.to_text() for item in self.payload))
        parts.append(FRAME_END)
        return "".join(parts)

    def to_bytes(self) -> bytes:
        """UTF-8 of :meth:`to_text`: the exact bytes a signature over this frame covers."""
        return self.to_text().encode("utf-8")

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        header = ", ".join(f"{key}={value!r}" for key, value in self.header.items())
        return f"Frame({{{header}}}, payload={len(self.payload)} items)"

    # -- conversion ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        """JSON-ready view: ``{"header": {...}, "payload": [...]}`` with values decoded.

        Integers are numbers, decimals strings, floats numbers (``"nan"``, ``"inf"``, ``"-inf"`` as
        strings), blobs ``{"utf8": text}`` when valid UTF-8 else ``{"base64": ...}``.
        """
        return {
            "header": {key: token_to_json(value) for key, value in self.header.items()},
            "payload": [token_to_json(item) for item in self.payload],
        }


def token_to_json(item: Item) -> object:
    """The JSON value of one token or frame (see :meth:`Frame.to_json`)."""
    if isinstance(item, Frame):
        return item.to_json()
    if isinstance(item, Text):
        return item.text
    if isinstance(item, UInt | SInt):
        return item.value
    if isinstance(item, Dec):
        return str(item)
    if isinstance(item, Float):
        if math.isnan(item.value):
            return "nan"
        if math.isinf(item.value):
            return "inf" if item.value > 0 else "-inf"
        return item.value
    if isinstance(item, Blob):
        try:
            return {"utf8": item.data.decode("utf-8")}
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(item.data).decode("ascii")}
    raise TypeError(f"not a token: {item!r}")  # pragma: no cover - the union is closed
