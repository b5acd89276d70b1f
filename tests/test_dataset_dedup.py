"""Near-duplicate screening a batch at a time (issue 19, item 1): exact mode removes exactly what the
one-vector-at-a-time filter it replaced removes, the approximate mode finds at least 99 % of those
removals, and both decide the same however the pairs fall into batches (so a resumed publish writes
the same dataset).  Planted set: seeded random unit vectors, with paraphrases planted at cosines
0.90, 0.94, 0.96 and 0.99 against the 0.95 threshold, within a batch, across batches and in chains."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from arcticcodex.dataset import dedup, dedup_index
from arcticcodex.dataset.dedup import NearDuplicateFilter
from arcticcodex.dataset.record import PairSource, TrainingPair
from arcticcodex.errors import UserError

DIMENSIONS = 128
THRESHOLD = 0.95


class ReferenceFilter:
    """The filter as it was before issue 19 (one kept-matrix product per pair), kept as the reference."""

    BATCH = 256

    def __init__(self, embedder: Any, threshold: float = 0.95) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self.removed: list[tuple[str, str]] = []
        self._kept = np.zeros((0, embedder.dimensions), dtype=np.float16)
        self._kept_ids: list[str] = []
        self._count = 0
        self._ids: set[str] = set()

    def filter(self, pairs: Sequence[TrainingPair]) -> Iterator[TrainingPair]:
        batch: list[TrainingPair] = []
        for pair in pairs:
            batch.append(pair)
            if len(batch) == self.BATCH:
                yield from self._screen(batch)
                batch = []
        yield from self._screen(batch)

    def _screen(self, batch: list[TrainingPair]) -> Iterator[TrainingPair]:
        fresh = [pair for pair in batch if pair.accepted and pair.id not in self._ids]
        texts = [f"{pair.instruction}\n{pair.completion}" for pair in fresh]
        vectors = self._unit(self.embedder.embed(texts)) if texts else np.zeros((0, self._kept.shape[1]), np.float32)
        row = 0
        for pair in batch:
            if not pair.accepted or pair.id in self._ids:
                yield pair
                continue
            vector = vectors[row]
            row += 1
            if self._count:
                similarities = self._kept[: self._count].astype(np.float32) @ vector
                best = int(np.argmax(similarities))
                if similarities[best] >= self.threshold:
                    self.removed.append((pair.id, self._kept_ids[best]))
                    continue
            self._keep(pair.id, vector)
            yield pair

    def _keep(self, pair_id: str, vector: np.ndarray) -> None:
        if self._count == len(self._kept):
            grown = np.zeros((max(64, 2 * len(self._kept)), self._kept.shape[1]), dtype=np.float16)
            grown[: self._count] = self._kept[: self._count]
            self._kept = grown
        self._kept[self._count] = vector
        self._count += 1
        self._kept_ids.append(pair_id)
        self._ids.add(pair_id)

    @staticmethod
    def _unit(vectors: np.ndarray) -> np.ndarray:
        matrix = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0, 1.0, norms)


class GivenVectors:
    """An embedder that returns the vector given for each text (the pair's instruction names it)."""

    name = "given-vectors"

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self.dimensions = vectors.shape[1]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [int(text.split("\n", 1)[0].removeprefix("question ")) for text in texts]
        return self.vectors[rows].astype(np.float32)


def pair(row: int, *, pair_id: str | None = None, accepted: bool = True) -> TrainingPair:
    return TrainingPair(
        id=pair_id or f"tp-{row}",
        index=row,
        instruction=f"question {row}",
        completion="an answer",
        quality=Decimal("0.9"),
        signer_id="teacher",
        created_at="2026-12-04T12:00:00Z",
        source=PairSource("prompts", f"prompts.jsonl:{row + 1}"),
        accepted=accepted,
    )


def paraphrase(rng: np.random.Generator, source: np.ndarray, cosine: float) -> np.ndarray:
    """A unit vector at exactly ``cosine`` to the unit vector ``source``."""
    noise = rng.standard_normal(source.shape[0])
    noise -= (noise @ source) * source
    noise /= np.linalg.norm(noise)
    result: np.ndarray = cosine * source + np.sqrt(1.0 - cosine * cosine) * noise
    return result


def planted_set(count: int, seed: int = 19, *, dense: bool = False) -> tuple[np.ndarray, dict[int, int]]:
    """Random unit vectors, one in eight replaced by a planted paraphrase; also the planted rows that
    the threshold must remove, each with the row it must name (its kept source).  ``dense``: the
    vectors crowd in a narrow cone (a mean cosine of about 0.67 between any two, as pairs made from
    one template are), where hashing cannot tell a near duplicate from the crowd."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, DIMENSIONS))
    if dense:
        vectors = vectors * 0.7 / np.sqrt(DIMENSIONS) + np.eye(DIMENSIONS)[0]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    planted: set[int] = set()
    expected: dict[int, int] = {}
    cosines = (0.90, 0.94, 0.96, 0.99)
    for row in range(300, count - 1, 8):
        kind = (row // 8) % 6
        cosine = cosines[(row // 48) % 4]
        if kind == 0:  # across batches: a source at least a batch back
            source = int(rng.integers(0, row - 256))
        elif kind == 1:  # within a batch: a source earlier in the same batch of 256
            start = row - row % 256
            source = int(rng.integers(start, row)) if row > start else row - 1
        elif kind == 2:  # a chain a → b → c: b 0.99 to a (removed), c 0.97 to b (≈ 0.96 to a: removed, naming a)
            source = int(rng.integers(0, row - 1))
            while source in planted:
                source -= 1
            vectors[row] = paraphrase(rng, vectors[source], 0.99)
            vectors[row + 1] = paraphrase(rng, vectors[row], 0.97)
            planted |= {row, row + 1}
            expected |= {row: source, row + 1: source}
            continue
        elif kind == 3:  # a chain: b 0.94 to a (kept), c 0.96 to b (removed, naming b)
            source = int(rng.integers(0, row - 1))
            while source in planted:
                source -= 1
            vectors[row] = paraphrase(rng, vectors[source], 0.94)
            vectors[row + 1] = paraphrase(rng, vectors[row], 0.96)
            planted |= {row, row + 1}
            expected[row + 1] = row
            continue
        elif kind == 4:  # a chain: b 0.96 to a (removed), c 0.96 to b (≈ 0.92 to a: kept)
            source = int(rng.integers(0, row - 1))
            while source in planted:
                source -= 1
            vectors[row] = paraphrase(rng, vectors[source], 0.96)
            vectors[row + 1] = paraphrase(rng, vectors[row], 0.96)
            planted |= {row, row + 1}
            expected[row] = source
            continue
        else:
            continue
        while source in planted:
            source -= 1
        vectors[row] = paraphrase(rng, vectors[source], cosine)
        planted.add(row)
        if cosine >= THRESHOLD:
            expected[row] = source
    return vectors.astype(np.float32), expected


def run(screen: Any, count: int) -> tuple[list[str], list[tuple[str, str]]]:
    passed = [kept.id for kept in screen.filter([pair(row) for row in range(count)])]
    return passed, list(screen.removed)


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, dict[int, int]]:
    return planted_set(3_000)


def test_exact_mode_removes_exactly_what_the_reference_removes(planted: tuple[np.ndarray, dict[int, int]]) -> None:
    vectors, expected = planted
    embedder = GivenVectors(vectors)
    reference = run(ReferenceFilter(embedder, THRESHOLD), len(vectors))
    screen = NearDuplicateFilter(embedder, THRESHOLD, mode="exact")
    assert run(screen, len(vectors)) == reference
    passed, removed = reference
    assert not screen.approximate
    # the planted set does what it says: every paraphrase at 0.96/0.99 removed naming its kept source
    # (c of a → b → c naming a when b was removed but c is still close to a), those at 0.90/0.94 kept
    removed_rows = {int(pair_id[3:]): int(kept[3:]) for pair_id, kept in removed}
    assert removed_rows == expected and len(expected) > 250
    chains = sum(row - 1 in expected and expected[row - 1] == source for row, source in expected.items())
    assert chains > 25
    within = sum(source // 256 == row // 256 for row, source in removed_rows.items())
    assert within > 50 and len(removed_rows) - within > 150
    assert len(passed) + len(removed) == len(vectors)


def test_ties_go_to_the_earliest_kept_pair_before_the_batch_within_it_and_across_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a and b are kept (cosine 0.9216 < 0.95); q bisects them (0.98 to both, the same float either way)
    a, b, q = np.zeros((3, DIMENSIONS), np.float32)
    a[:2], b[[0, 2]], q[:3] = (0.96, 0.28), (0.96, 0.28), (1.0, 0.146, 0.146)
    filler = planted_set(300, seed=1)[0]  # random rows (none planted below row 300): close to none of a, b, q
    monkeypatch.setattr(dedup, "CHUNK", 4)  # the pre-batch best spans chunks
    for layout in ("a b | q", "a | b q", "a b q", "a filler b | q"):
        rows = {"a": a, "b": b, "q": q}
        order: list[np.ndarray] = []
        for name in layout.split():
            if name == "filler":
                order.extend(filler[:9])
            elif name == "|":  # pad to the batch boundary
                order.extend(filler[10 : 10 + dedup.BATCH - len(order)])
            else:
                order.append(rows[name])
        vectors = np.stack(order)
        assert ("|" not in layout) == (len(vectors) <= dedup.BATCH)  # q falls in the next batch where asked
        embedder = GivenVectors(vectors)
        found = run(NearDuplicateFilter(embedder, THRESHOLD, mode="exact"), len(vectors))
        reference = run(ReferenceFilter(embedder, THRESHOLD), len(vectors))
        first_a = next(row for row, vector in enumerate(vectors) if np.array_equal(vector, a))
        assert found == reference and found[1] == [(f"tp-{len(vectors) - 1}", f"tp-{first_a}")], layout


def test_decisions_do_not_depend_on_batch_boundaries(
    planted: tuple[np.ndarray, dict[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors, _ = planted
    embedder = GivenVectors(vectors)
    whole = run(NearDuplicateFilter(embedder, THRESHOLD, mode="exact"), len(vectors))
    monkeypatch.setattr(dedup, "BATCH", 37)
    monkeypatch.setattr(dedup, "CHUNK", 500)
    assert run(NearDuplicateFilter(embedder, THRESHOLD, mode="exact"), len(vectors)) == whole


def test_approximate_mode_finds_at_least_99_percent_of_the_exact_removals(
    planted: tuple[np.ndarray, dict[int, int]],
) -> None:
    vectors, _ = planted
    embedder = GivenVectors(vectors)
    exact = run(NearDuplicateFilter(embedder, THRESHOLD, mode="exact"), len(vectors))[1]
    screen = NearDuplicateFilter(embedder, THRESHOLD, mode="approximate")
    approximate = run(screen, len(vectors))[1]
    assert screen.approximate
    agreed = set(approximate) & set(exact)
    assert len(agreed) >= 0.99 * len(exact), f"{len(agreed)} of {len(exact)} exact removals"
    # a removal is only ever made for a real match: re-scored exactly, never the index's guess
    for removed_id, kept_id in approximate:
        cosine = vectors[int(removed_id[3:])] @ vectors[int(kept_id[3:])].astype(np.float16).astype(np.float32)
        assert cosine >= THRESHOLD - 1e-3
    again = NearDuplicateFilter(embedder, THRESHOLD, mode="approximate")
    assert run(again, len(vectors))[1] == approximate  # deterministic: a resumed publish writes the same


def test_dense_vectors_are_screened_through_the_graph_and_it_finds_at_least_99_percent() -> None:
    vectors, expected = planted_set(6_000, seed=7, dense=True)
    spread = planted_set(3_000)[0]
    dense_codes = dedup_index.KeptIndex(DIMENSIONS).keys(vectors[:2_000])
    spread_codes = dedup_index.KeptIndex(DIMENSIONS).keys(spread[:2_000])
    # what a multi-hash query would scan: a crowd in the cone, a few in 10,000 when spread out
    assert dedup_index.slice_collisions(dense_codes) > 50 * dedup_index.slice_collisions(spread_codes)
    assert (
        dedup_index.slice_collisions(spread_codes) < dedup_index.DENSE_FROM <= dedup_index.slice_collisions(dense_codes)
    )
    embedder = GivenVectors(vectors)
    exact = run(NearDuplicateFilter(embedder, THRESHOLD, mode="exact"), len(vectors))[1]
    assert {int(a[3:]): int(b[3:]) for a, b in exact} == expected  # the cone made no duplicates of its own
    screen = NearDuplicateFilter(embedder, THRESHOLD, mode="approximate")
    approximate = run(screen, len(vectors))[1]
    assert isinstance(screen._index, dedup_index.GraphIndex)  # chosen again once 1,024 pairs were kept
    agreed = set(approximate) & set(exact)
    assert len(agreed) >= 0.99 * len(exact), f"{len(agreed)} of {len(exact)} exact removals"
    assert set(approximate) <= set(exact)  # re-scored exactly: never a removal the exact mode would not make
    again = NearDuplicateFilter(embedder, THRESHOLD, mode="approximate")
    assert run(again, len(vectors))[1] == approximate  # deterministic: a resumed publish writes the same
    spread_screen = NearDuplicateFilter(GivenVectors(spread), THRESHOLD, mode="approximate")
    run(spread_screen, len(spread))
    assert type(spread_screen._index) is dedup_index.KeptIndex  # spread out: the multi-hash index


def test_auto_mode_is_exact_below_its_threshold_and_approximate_past_it(
    planted: tuple[np.ndarray, dict[int, int]],
) -> None:
    vectors, _ = planted
    embedder = GivenVectors(vectors)
    exact = run(NearDuplicateFilter(embedder, THRESHOLD, mode="exact"), len(vectors))
    below = NearDuplicateFilter(embedder, THRESHOLD)  # the default: auto, switching at APPROXIMATE_FROM kept
    assert run(below, len(vectors)) == exact and not below.approximate
    past = NearDuplicateFilter(embedder, THRESHOLD, approximate_from=1_500)
    removed = run(past, len(vectors))[1]
    assert past.approximate and len(set(removed) & set(exact[1])) >= 0.99 * len(exact[1])


def test_a_pair_after_an_exact_duplicate_in_its_batch_is_screened_with_its_own_vector() -> None:
    # the reference lost step here: after a repeated id it screened each later pair with the vector
    # of the pair before it, so a distinct pair after "a, a" was removed as a duplicate of a
    vectors = planted_set(3, seed=2)[0]
    embedder = GivenVectors(vectors)
    pairs = [pair(0), pair(0), pair(1), pair(2)]
    screen = NearDuplicateFilter(embedder, THRESHOLD)
    assert [kept.id for kept in screen.filter(pairs)] == ["tp-0", "tp-0", "tp-1", "tp-2"]
    assert screen.removed == []  # the repeated id is the writer's to drop, as before
    reference = ReferenceFilter(embedder, THRESHOLD)
    assert [kept.id for kept in reference.filter(pairs)] == ["tp-0", "tp-0", "tp-2"]  # the old mistake


def test_rejected_pairs_pass_through_unscreened(planted: tuple[np.ndarray, dict[int, int]]) -> None:
    vectors, _ = planted
    embedder = GivenVectors(vectors[:400])
    pairs = [pair(row, accepted=row % 3 != 0) for row in range(400)]
    screen = NearDuplicateFilter(embedder, THRESHOLD, mode="exact")
    reference = ReferenceFilter(embedder, THRESHOLD)
    assert [p.id for p in screen.filter(pairs)] == [p.id for p in reference.filter(pairs)]
    assert screen.removed == reference.removed


@pytest.mark.parametrize(
    ("arguments", "parameter", "words"),
    [
        ({"threshold": 1.5}, "threshold", "threshold must be in (0, 1]"),
        ({"mode": "fast"}, "mode", "mode must be one of auto, exact, approximate, not 'fast'"),
        ({"approximate_from": -1}, "approximate_from", "approximate_from must not be negative"),
    ],
)
def test_bad_settings_name_the_parameter(arguments: dict[str, Any], parameter: str, words: str) -> None:
    with pytest.raises(UserError) as caught:
        NearDuplicateFilter(GivenVectors(np.eye(4, dtype=np.float32)), **arguments)
    assert words in str(caught.value) and caught.value.parameters == (parameter,)


class SeededVectors:
    """An embedder whose vector for ``question N`` is made from N alone: no table of 50k vectors held."""

    name = "seeded-vectors"
    dimensions = 384

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [int(text.split("\n", 1)[0].removeprefix("question ")) for text in texts]
        return np.stack([np.random.default_rng(row).standard_normal(self.dimensions) for row in rows]).astype(
            np.float32
        )


@pytest.mark.slow
def test_memory_at_50k_pairs_is_the_kept_vectors_and_a_bounded_rest() -> None:
    import tracemalloc

    count = 50_000
    vectors_size = count * SeededVectors.dimensions * 2  # the kept float16 vectors: 38.4 MB
    screen = NearDuplicateFilter(SeededVectors(), THRESHOLD)
    tracemalloc.start()
    try:
        passed = sum(1 for _ in screen.filter(pair(row) for row in range(count)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert passed == count and screen.approximate
    # the kept matrix doubles as it grows (65,536 rows at 50k, and the 32,768 it outgrew while copying:
    # 1.95 × the vectors), the ids (~150 bytes a pair) and a batch's buffers; a float32 vector or a
    # pair kept per pair (1.5 KB and more) would be another 77 MB
    assert peak < 2.3 * vectors_size + 16_000_000, (
        f"peak {peak / 1e6:.1f} MB for {vectors_size / 1e6:.1f} MB of vectors"
    )
