"""Text from documents, datasets and models, made safe to print on a terminal.

A document can hold terminal control sequences: ``ESC ]0;title BEL`` retitles the window,
``ESC [2J`` clears the screen, ``ESC [8m`` hides what follows, and a bare ``CR`` overwrites the start
of the line with what comes after — enough to make a report say the opposite of what it holds.  So
text that came from outside is printed with every control character written out as an escape
(``\\x1b``), keeping only newlines and tabs, which are layout.
"""

from __future__ import annotations

import re

__all__ = ["escape_controls"]

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides that reorder text
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """``text`` with control characters shown as ``\\xNN`` / ``\\uNNNN`` escapes (newline and tab kept)."""
    return _CONTROLS.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
