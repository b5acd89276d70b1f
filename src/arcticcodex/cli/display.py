"""Document text on the terminal: controls escaped, rich markup never interpreted, JSON still JSON.

Anything a document, a file name or a model wrote reaches the terminal only through these, so a
document cannot retitle the window (``ESC ]0;…``), clear or repaint the screen (``ESC [2J``), hide what
follows (``ESC [8m``), overwrite a line with a bare ``CR``, or reorder it with bidirectional
overrides; ``--json`` output stays JSON that parses to exactly the stored text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from rich.text import Text

from ..terminal import escape_controls

__all__ = ["json_text", "shown", "shown_text"]

# What JSON leaves raw (it escapes only U+0000–U+001F) and a terminal may still act on: DEL, the C1
# controls (U+009B is a one-character CSI) and the bidirectional overrides.
_JSON_RAW_CONTROLS = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown(text: str) -> str:
    """``text`` safe to print: a CRLF line end is a newline, every other control is written as an escape."""
    return escape_controls(text.replace("\r\n", "\n"))


def shown_text(text: str, highlights: Sequence[tuple[int, int]] = (), style: str = "bold yellow") -> Text:
    """A rich ``Text`` (never markup) of ``shown(text)``, with ``highlights`` (spans of ``text``) styled."""
    result = Text()
    position = 0
    for start, end in sorted(highlights):
        if start < position:
            continue
        result.append(shown(text[position:start]))
        result.append(shown(text[start:end]), style=style)
        position = end
    result.append(shown(text[position:]))
    return result


def json_text(data: Any) -> str:
    """``data`` as indented JSON, with the controls JSON would leave raw written as ``\\uXXXX``."""
    return _JSON_RAW_CONTROLS.sub(
        lambda match: f"\\u{ord(match.group()):04x}", json.dumps(data, indent=2, ensure_ascii=False)
    )
