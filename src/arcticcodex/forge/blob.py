"""BLOB-T: bytes as four symbols per byte, table-driven in both directions.

Each byte becomes four symbols, most significant bit pair first: 00 ⊙, 01 ⊗, 10 Φ, 11 ⊛ (the layout
of the format's first version, kept so its files still read).  A 256-entry table of 4-symbol strings
does the encoding and a code-point lookup table the decoding, both vectorised with NumPy over the
UTF-16 form of the text, because every symbol lies in the BMP: a dataset's signatures are BLOB-T, so
this runs once per record.

Decoding is strict: a body whose length is not a multiple of four, or that holds any other symbol,
is an error at the exact position, never a byte dropped or zeroed (a signature must be read as written).  That
includes a lone surrogate (``\\ud800``, which JSON can spell and UTF-8 cannot hold): it is a bad
symbol like any other, on every path, never a ``UnicodeEncodeError``.  Text going *into* BLOB-T
passes through :func:`utf8_bytes`, which turns a lone surrogate into a located ``EncodeError``.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

import numpy as np

from ..errors import EncodeError
from . import codes
from .numbers import BodyError
from .symbols import BLOB_11, TRIT_0, TRIT_1, TRIT_2

SYMBOLS = TRIT_0 + TRIT_1 + TRIT_2 + BLOB_11  # index = value of the bit pair
_BYTE_TO_SYMBOLS = np.array(
    [[ord(SYMBOLS[(byte >> shift) & 3]) for shift in (6, 4, 2, 0)] for byte in range(256)], dtype="<u2"
).view("<u8")[:, 0]  # one 64-bit word = four UTF-16 code units per byte
_INVALID = 0xFF
_CODE_UNIT_TO_PAIR = np.full(1 << 16, _INVALID, dtype=np.uint8)
for _value, _symbol in enumerate(SYMBOLS):
    _CODE_UNIT_TO_PAIR[ord(_symbol)] = _value
_WEIGHTS = (np.uint8(6), np.uint8(4), np.uint8(2))
_SMALL = 64  # below this many bytes plain Python beats NumPy's call overhead
_CHUNK_LIMIT = 1 << 18
_LARGE = 1 << 20  # from this many bytes, encode into one preallocated buffer (no 12× temporaries)
_PREFIX_WORD = np.array([0, *map(ord, "≗Φ⊙")], dtype="<u2").view("<u8")[0]
_BYTE_STRINGS = ["".join(SYMBOLS[(byte >> shift) & 3] for shift in (6, 4, 2, 0)) for byte in range(256)]
_SYMBOL_VALUE = {symbol: value for value, symbol in enumerate(SYMBOLS)}
_RUN = re.compile(f"[{SYMBOLS}]*")


def encode_blob(data: bytes | bytearray | memoryview) -> str:
    """The BLOB-T body (without ``≗Φ⊙``) for ``data``."""
    if len(data) < _SMALL:
        return "".join([_BYTE_STRINGS[byte] for byte in bytes(data)])
    indices = np.frombuffer(data, dtype=np.uint8)
    return _BYTE_TO_SYMBOLS.take(indices).tobytes().decode("utf-16-le")


def encode_blob_token(data: bytes) -> str:
    """The whole token ``≗Φ⊙…``; large inputs are written straight into one buffer."""
    if len(data) < _LARGE:
        return "≗Φ⊙" + encode_blob(data)
    words = np.empty(len(data) + 1, dtype="<u8")
    words[0] = _PREFIX_WORD  # code units 1–3 of word 0 are the prefix; unit 0 is skipped below
    _BYTE_TO_SYMBOLS.take(np.frombuffer(data, dtype=np.uint8), out=words[1:])
    text: str = codecs.utf_16_le_decode(words.view(np.uint8)[2:].data)[0]
    return text


def utf8_bytes(text: str, what: str) -> bytes:
    """The UTF-8 of ``text`` for a BLOB-T; a lone surrogate is an EncodeError naming ``what`` and the spot.

    Python strings may hold lone surrogates (a JSON ``"\\ud800"`` escape becomes one) and UTF-8 cannot,
    so ``str.encode`` would raise a bare UnicodeEncodeError deep inside a writer.  Only the failing
    case costs more than the encode itself.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = ord(text[exc.start])
        # from None: the UnicodeEncodeError adds nothing the message does not already say
        raise EncodeError(
            codes.INVALID_ARGUMENT,
            f"{what} holds a lone surrogate U+{bad:04X} at index {exc.start:,}, which UTF-8 cannot encode",
            hint="replace it with U+FFFD (or mend the source that split a surrogate pair) and write it again",
            text=text,
            offset=exc.start,
        ) from None


def decode_blob(body: str) -> bytes:
    """Bytes of a BLOB-T body; :class:`BodyError` names the first bad symbol or the bad length."""
    return scan_blob(body, 0, ends_token=lambda _: False)[0]


def scan_blob(text: str, start: int, ends_token: Callable[[str], bool]) -> tuple[bytes, int]:
    """Decode the run of BLOB-T symbols at ``text[start:]``; return (bytes, index where it ends).

    The run may end at the end of the text or at a character for which ``ends_token`` is true (a
    separator or whitespace, in a frame); any other character is a bad symbol.  Scanning and
    decoding are one pass: long runs are read in growing chunks (4 K symbols, then ×4 up to 256 K,
    small enough that the temporaries stay in cache), each mapped through the lookup table and
    packed, so the work is proportional to the run's length and never to the rest of the text.
    Offsets in a BodyError are relative to ``start``.
    """
    probe = _RUN.match(text, start, start + _SMALL * 4)
    end = probe.end() if probe else start
    if end < min(len(text), start + _SMALL * 4) or end == len(text):
        _check_end(text, start, end, ends_token)
        return _decode_small(text[start:end]), end
    out = bytearray()
    position, chunk = start, 4096
    while True:
        piece = text[position : position + chunk]
        units = np.frombuffer(piece.encode("utf-16-le", "surrogatepass"), dtype="<u2")
        if len(units) != len(piece):  # an astral character cannot be a symbol: the run ends before it
            piece = piece[: next(i for i, ch in enumerate(piece) if ord(ch) > 0xFFFF)]
            units = np.frombuffer(piece.encode("utf-16-le", "surrogatepass"), dtype="<u2")
        pairs = _CODE_UNIT_TO_PAIR.take(units)
        invalid = pairs == _INVALID
        run = int(invalid.argmax()) if invalid.any() else len(pairs)
        whole = run - run % 4
        quads = pairs[:whole].reshape(-1, 4)
        out += (
            (quads[:, 0] << _WEIGHTS[0]) | (quads[:, 1] << _WEIGHTS[1]) | (quads[:, 2] << _WEIGHTS[2]) | quads[:, 3]
        ).tobytes()
        position += run
        if run < chunk:  # the run ended inside this piece (or the text did)
            break
        chunk = min(chunk * 4, _CHUNK_LIMIT)
    _check_end(text, start, position, ends_token)
    return bytes(out), position


def _check_end(text: str, start: int, end: int, ends_token: Callable[[str], bool]) -> None:
    if end < len(text) and not ends_token(text[end]):
        _raise_bad_symbol(text, end, start)
    if (end - start) % 4:
        length = end - start
        raise BodyError(
            codes.BLOB_LENGTH,
            f"BLOB-T body has {length} symbols, not a multiple of 4",
            length - length % 4,
            "every byte is exactly four symbols from ⊙ ⊗ Φ ⊛",
        )


def _decode_small(body: str) -> bytes:
    lookup = _SYMBOL_VALUE
    return bytes(
        lookup[body[i]] << 6 | lookup[body[i + 1]] << 4 | lookup[body[i + 2]] << 2 | lookup[body[i + 3]]
        for i in range(0, len(body), 4)
    )


def _raise_bad_symbol(text: str, index: int, start: int = 0) -> None:
    ch = text[index]
    raise BodyError(
        codes.INVALID_TRIT_SEQUENCE,
        f"BLOB-T body holds {ch!r} (U+{ord(ch):04X}), which is not one of ⊙ ⊗ Φ ⊛",
        index - start,
        "every byte is exactly four symbols from ⊙ ⊗ Φ ⊛",
    )
