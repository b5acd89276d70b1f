"""RFC 6962 Merkle trees: known answers, the streaming root equals the RFC's definition, audit paths."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from arcticcodex.provenance.merkle import (
    MerkleAccumulator,
    audit_path,
    leaf_hash,
    merkle_root,
    node_hash,
    reference_root,
    verify_audit_path,
)


def test_known_answers() -> None:
    assert merkle_root([]).hex() == hashlib.sha256(b"").hexdigest()
    assert merkle_root([]).hex().startswith("e3b0c442")
    assert merkle_root([b""]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"  # CT vector
    a, b, c = b"a", b"b", b"c"
    assert merkle_root([a, b]) == node_hash(leaf_hash(a), leaf_hash(b))
    assert merkle_root([a, b, c]) == node_hash(node_hash(leaf_hash(a), leaf_hash(b)), leaf_hash(c))


@given(st.lists(st.binary(max_size=8), max_size=70))
def test_streaming_root_is_the_rfc_definition(leaves: list[bytes]) -> None:
    accumulator = MerkleAccumulator()
    for leaf in leaves:
        accumulator.add(leaf)
    assert accumulator.count == len(leaves)
    assert accumulator.root() == reference_root(leaves) == merkle_root(leaves)


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40), st.data())
def test_audit_paths_prove_membership_and_nothing_else(leaves: list[bytes], data: st.DataObject) -> None:
    root = merkle_root(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    path = audit_path(leaves, index)
    assert verify_audit_path(leaves[index], index, len(leaves), path, root)
    assert not verify_audit_path(leaves[index] + b"x", index, len(leaves), path, root)
    if len(leaves) > 1:
        other = (index + 1) % len(leaves)
        if leaves[other] != leaves[index]:
            assert not verify_audit_path(leaves[index], other, len(leaves), path, root)


def test_order_and_count_change_the_root() -> None:
    records = [f"record {i}".encode() for i in range(10)]
    root = merkle_root(records)
    assert merkle_root(records[::-1]) != root
    assert merkle_root(records[:-1]) != root
    assert merkle_root([*records, records[-1]]) != root
