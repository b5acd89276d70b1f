"""RFC 6962 / RFC 9162 Merkle trees over a dataset's record hashes.

A signed manifest carries the root of this tree over the records' frame hashes, in order.  Per-record
signatures alone cannot see a deleted, inserted, duplicated or reordered record; the root (with the
record count, and each record's index inside its signed frame) can, and an audit path proves that
one record belongs to a dataset without shipping the rest.

* leaf hash  ``MTH({d}) = SHA-256(0x00 ‖ d)``
* node hash  ``SHA-256(0x01 ‖ left ‖ right)``, the split at the largest power of two below n
* empty tree ``SHA-256("")``

The tree is computed from a stream of leaves with O(log n) memory (a stack of complete subtrees),
so verifying a 100k-record dataset never holds its hashes in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

LEAF = b"\x00"
NODE = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE + left + right).digest()


class MerkleAccumulator:
    """Adds leaves one by one; :meth:`root` is the RFC 6962 root of everything added so far.

    The stack holds one complete subtree per set bit of the count (sizes strictly decreasing), so
    memory is logarithmic; the root folds them right to left, which is exactly the RFC's split rule.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (size, hash) of complete subtrees, largest first
        self.count = 0

    def add(self, data: bytes) -> None:
        size, digest = 1, leaf_hash(data)
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            size, digest = left_size + size, node_hash(left, digest)
        self._stack.append((size, digest))
        self.count += 1

    def root(self) -> bytes:
        if not self._stack:
            return hashlib.sha256(b"").digest()
        digest = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest


def merkle_root(leaves: Iterable[bytes]) -> bytes:
    """The RFC 6962 Merkle tree hash of ``leaves`` (in order)."""
    accumulator = MerkleAccumulator()
    for data in leaves:
        accumulator.add(data)
    return accumulator.root()


def reference_root(leaves: list[bytes]) -> bytes:
    """The RFC's recursive definition, word for word: for tests, quadratic, not for datasets."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    return node_hash(reference_root(leaves[:split]), reference_root(leaves[split:]))


def audit_path(leaves: list[bytes], index: int) -> list[bytes]:
    """The RFC 6962 audit path for leaf ``index`` (siblings from the leaf up)."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is outside a tree of {len(leaves)}")
    if len(leaves) == 1:
        return []
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    if index < split:
        return [*audit_path(leaves[:split], index), reference_root(leaves[split:])]
    return [*audit_path(leaves[split:], index - split), reference_root(leaves[:split])]


def verify_audit_path(data: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """Check that ``data`` is leaf ``index`` of a tree of ``size`` leaves with this ``root`` (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        return False
    node, last = index, size - 1
    digest = leaf_hash(data)
    for sibling in path:
        if last == 0:
            return False
        if node % 2 == 1 or node == last:
            digest = node_hash(sibling, digest)
            if node % 2 == 0:
                while node % 2 == 0 and node != 0:
                    node, last = node >> 1, last >> 1
        else:
            digest = node_hash(digest, sibling)
        node, last = node >> 1, last >> 1
    return last == 0 and digest == root
