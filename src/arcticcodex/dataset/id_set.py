"""The record ids a writer or a screen has seen, in ~16 bytes an id rather than a Python set's ~125.

Publishing must know, for each pair, whether its id came before (an exact duplicate), and the
near-duplicate screen must name the kept pair a removed one repeats; both used a ``set`` (and a
``list``) of the id strings: ~250 bytes a pair between them, 250 MB at 1M pairs, the one part of a
run's memory besides the kept vectors that grew with the prompts (issue 19, item 2).

A content id (``tp-`` and 32 hex digits: what every pair a run writes has) *is* 16 bytes, so it is
kept as those bytes: the latest in a small set, the rest in a sorted NumPy array that the small set
is merged into when it fills (each merge moves the array once: :data:`RECENT` ids between merges,
so the total work is linear in the ids for any run a machine can hold).  Any other id (a hand-made
dataset, a test) is kept as text.  :class:`KeptIds` is the same idea for ids in the order they came,
looked up by position.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["RECENT", "IdSet", "KeptIds", "content_key"]

RECENT = 1 << 16
"""Ids held in the small set before it is merged into the sorted array (~5 MB at most)."""
_CONTENT_ID = re.compile(r"tp-([0-9a-f]{32})")
_KEY = np.dtype("S16")  # fixed 16 bytes, ordered as bytes


def content_key(record_id: str) -> bytes | None:
    """The 16 bytes a content id spells, or None for any other id."""
    match = _CONTENT_ID.fullmatch(record_id)
    return bytes.fromhex(match.group(1)) if match else None


class IdSet:
    """``id in ids`` and ``ids.add(id)`` for record ids, in ~16 bytes a content id."""

    def __init__(self) -> None:
        self._sorted = np.empty(0, dtype=_KEY)
        self._recent: set[bytes] = set()
        self._other: set[str] = set()

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent) + len(self._other)

    def __contains__(self, record_id: object) -> bool:
        if not isinstance(record_id, str):
            return False
        key = content_key(record_id)
        return record_id in self._other if key is None else self._has(key)

    def add(self, record_id: str) -> None:
        key = content_key(record_id)
        if key is None:
            self._other.add(record_id)
            return
        if self._has(key):
            return
        self._recent.add(key)
        if len(self._recent) >= RECENT:
            self._merge()

    def _has(self, key: bytes) -> bool:
        if key in self._recent:
            return True
        at = int(np.searchsorted(self._sorted, key))
        # NumPy hands back an S16 item without its trailing NUL bytes
        return at < len(self._sorted) and bytes(self._sorted[at]).ljust(16, b"\0") == key

    def _merge(self) -> None:
        recent = np.sort(np.fromiter(self._recent, dtype=_KEY, count=len(self._recent)))
        self._sorted = np.insert(self._sorted, np.searchsorted(self._sorted, recent), recent)
        self._recent.clear()


class KeptIds:
    """Ids in the order they were kept, by position: ``kept.append(id)``, ``kept[i]``; ~16 bytes an id."""

    def __init__(self) -> None:
        self._keys = np.empty(1024, dtype=_KEY)
        self._count = 0
        self._other: dict[int, str] = {}  # positions of ids that are not content ids

    def __len__(self) -> int:
        return self._count

    def append(self, record_id: str) -> None:
        if self._count == len(self._keys):
            self._keys = np.concatenate([self._keys, np.empty(len(self._keys), dtype=_KEY)])
        key = content_key(record_id)
        if key is None:
            self._other[self._count] = record_id
            key = b""
        self._keys[self._count] = key
        self._count += 1

    def __getitem__(self, position: int) -> str:
        if not 0 <= position < self._count:
            raise IndexError(position)
        if position in self._other:
            return self._other[position]
        return "tp-" + bytes(self._keys[position]).ljust(16, b"\0").hex()
