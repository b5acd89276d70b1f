"""The compact id sets publishing keeps (issue 19, item 2): they answer as a set and a list would,
across merges of their sorted arrays, for content ids and any other ids, in ~16 bytes an id."""

from __future__ import annotations

import random
import tracemalloc

import pytest

from arcticcodex.dataset import id_set
from arcticcodex.dataset.id_set import IdSet, KeptIds


def content_id(rng: random.Random) -> str:
    return "tp-" + rng.randbytes(16).hex()


def test_membership_and_positions_agree_with_a_set_and_a_list_across_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(id_set, "RECENT", 500)  # many merges of the sorted array
    rng = random.Random(19)
    ids = [content_id(rng) for _ in range(5_000)]
    ids += ["tp-" + "00" * 16, "tp-" + "ab" * 15 + "00", "tp-0", "hand-made", "TP-" + "ab" * 16]  # edge keys
    seen, expected, kept, order = IdSet(), set(), KeptIds(), []
    for _ in range(20_000):
        record_id = rng.choice(ids)
        assert (record_id in seen) == (record_id in expected), record_id
        seen.add(record_id)
        expected.add(record_id)
        kept.append(record_id)
        order.append(record_id)
    assert len(seen) == len(expected)
    assert [kept[position] for position in range(len(order))] == order
    assert 42 not in seen  # not an id at all
    with pytest.raises(IndexError):
        kept[len(order)]


def test_ids_take_about_16_bytes_each_beyond_a_bounded_recent_set() -> None:
    rng = random.Random(7)
    tracemalloc.start()
    try:
        seen, kept = IdSet(), KeptIds()
        for _ in range(200_000):
            record_id = content_id(rng)
            seen.add(record_id)
            kept.append(record_id)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a set and a list of the strings held ~125 + ~90 bytes an id (43 MB here); these ~16 each (the
    # list's array by doubling), and at the peak a full recent set (65,536 bytes objects, ~6 MB) and
    # a merge's copies, whatever the count
    assert current < 200_000 * 40, f"{current / 1e6:.1f} MB held"
    assert peak < 200_000 * 40 + 12_000_000, f"{peak / 1e6:.1f} MB at the peak"
