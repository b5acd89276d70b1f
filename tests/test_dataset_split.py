"""The held-out split (issue 12, item 9): by source document, as near to --validation as documents allow,
the same on every re-write, and never with near-identical pairs on both sides; the card's title is the
dataset's own name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from arcticcodex.dataset import DatasetWriter, TrainingPair, verify_dataset
from arcticcodex.dataset.split import PlannedSplit, RunningSplit, SplitPlanner, source_document
from arcticcodex.forge.record_frames import EvidenceRef
from arcticcodex.provenance import Ed25519Signer
from arcticcodex.vault import HashingBackend
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_dataset_record import make_pair
from test_distill_run import make_root, records, write_prompts


def pair_of(document: str, number: int, *, text: str | None = None) -> TrainingPair:
    """An accepted pair whose evidence comes from vault document ``document``."""
    digest = hashlib.sha256(f"{document}:{number}".encode()).hexdigest()
    evidence = (EvidenceRef(chunk_id=f"{document}:{number}", doc_id=document, sha256=digest),)
    instruction = text or f"Question {number} about {document}?"
    return make_pair(instruction=instruction, completion=text or f"Answer {number} from {document}.", evidence=evidence)


def held_out(pairs: list[TrainingPair], fraction: float, **options: Any) -> set[str]:
    planner = SplitPlanner(fraction, **options)
    for pair in pairs:
        planner.add(pair)
    return set(planner.plan().held_out)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 80), st.sampled_from([0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 0.9]))
def test_the_fraction_is_honoured_within_rounding(count: int, fraction: float) -> None:
    pairs = [pair_of(f"doc-{n}", n) for n in range(count)]
    assert len(held_out(pairs, fraction)) == round(fraction * count)


def test_small_sets_get_their_share_not_a_coin_toss() -> None:
    """8 documents at 0.3: the old per-pair hash held out anything from 0 to 5; now always 2."""
    for seed in range(20):
        pairs = [pair_of(f"doc-{seed}-{n}", n) for n in range(8)]
        assert len(held_out(pairs, 0.3)) == 2


def test_a_document_is_on_one_side_and_the_split_is_stable() -> None:
    pairs = [pair_of(f"doc-{d}", n) for d in range(10) for n in range(3)]  # 10 documents of 3 pairs
    held = held_out(pairs, 0.2)
    assert len(held) == 6  # 2 whole documents: exactly 20 %
    sides = {source_document(p): p.id in held for p in pairs}
    assert all((p.id in held) == sides[source_document(p)] for p in pairs)
    assert held_out(list(pairs), 0.2) == held  # the same pairs: the same split, on every re-write
    more = pairs + [pair_of("doc-new", n) for n in range(3)]
    again = held_out(more, 0.2)  # 33 pairs: round(6.6) = 7, as near as documents of 3 allow is 6
    assert len(again) == 6 and len(held ^ again) <= 6  # a few more pairs move at most one document


def test_unequal_documents_get_as_near_as_they_allow() -> None:
    pairs = [pair_of("doc-big", n) for n in range(12)] + [pair_of(f"doc-{n}", n) for n in range(8)]
    held = held_out(pairs, 0.25)  # 20 pairs: 5, which the 12-pair document cannot give
    assert len(held) == 5 and not any(p.id in held for p in pairs[:12])


def test_pairs_published_before_keep_their_side() -> None:
    pairs = [pair_of(f"doc-{n}", n) for n in range(10)]
    planner = SplitPlanner(0.2)
    for number, pair in enumerate(pairs):
        planner.add(pair, kept_side="validation" if number in (0, 1) else "train" if number < 5 else None)
    assert set(planner.plan().held_out) == {pairs[0].id, pairs[1].id}


def test_near_identical_pairs_never_sit_on_both_sides() -> None:
    """Twins: the same question and answer from two different documents (a copied page)."""
    embedder = HashingBackend(64)
    straddled = 0
    for seed in range(30):
        twins = [pair_of(f"doc-{seed}-{side}", 1, text=f"What colour is thing {seed}?") for side in "ab"]
        others = [pair_of(f"doc-{seed}-{n}", n, text=f"Unrelated subject {n} {'x' * n} {seed}") for n in range(8)]
        pairs = [twins[0], *others, twins[1]]
        plain = held_out(pairs, 0.3)
        straddled += (twins[0].id in plain) != (twins[1].id in plain)
        screened = held_out(pairs, 0.3, embedder=embedder, threshold=0.95)
        assert (twins[0].id in screened) == (twins[1].id in screened), seed
        assert abs(len(screened) - round(0.3 * len(pairs))) <= 1
    assert straddled, "the documents alone would have split some twins: the screen is what keeps them together"


def test_the_writer_decides_by_document_when_nobody_planned(tmp_path: Path) -> None:
    pairs = [pair_of(f"doc-{d}", n) for d in range(10) for n in range(2)]
    with DatasetWriter(tmp_path / "ds", Ed25519Signer.generate(), validation_fraction=0.3) as writer:
        writer.add_many(pairs)
    held = {r["id"] for r in records(tmp_path / "ds" / "validation.jsonl")}
    assert len(held) == 6 and {p.evidence[0].doc_id for p in pairs if p.id in held}.__len__() == 3
    split = RunningSplit(0.3)
    assert [split.holds_out(p) for p in pairs] == [p.id in held for p in pairs]  # deterministic in write order


def test_a_planned_split_is_written_as_planned(tmp_path: Path) -> None:
    pairs = [pair_of(f"doc-{n}", n) for n in range(5)]
    plan = PlannedSplit([pairs[3].id])
    with DatasetWriter(tmp_path / "ds", Ed25519Signer.generate(), validation_fraction=0.2, split=plan) as writer:
        writer.add_many(pairs)
    assert [r["id"] for r in records(tmp_path / "ds" / "validation.jsonl")] == [pairs[3].id]
    assert verify_dataset(tmp_path / "ds", trusted=None).ok


# --- through the command line ---------------------------------------------------------------------


LAKES = [f"Lake {name} is {depth} metres deep." for name, depth in zip("ABCDEFGHIJ", range(10, 110, 10), strict=True)]


def lake_prompts(lakes: list[str]) -> list[dict[str, str]]:
    """Two questions per lake fact: the fact is their document, so they must share a side."""
    return [
        {"instruction": question.format(lake=fact.split()[1]), "evidence": fact}
        for fact in lakes
        for question in ("How deep is Lake {lake}?", "What is the depth of Lake {lake} in metres?")
    ]


def test_distill_holds_out_whole_documents_names_the_card_and_keeps_sides_on_append(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    out = tmp_path / "lakes-v1"
    first = write_prompts(tmp_path / "first.jsonl", lake_prompts(LAKES[:8]))
    args = ["--teachers", "gpu", "--keep-near-duplicates", "--json"]
    summary = json.loads(
        acx("-w", root, "distill", "--prompts", first, "--out", out, "--validation", "0.25", *args).output
    )
    assert summary["written"] == 16 and summary["validation"] == 4  # round(0.25 × 16): two whole lakes
    train, validation = records(out / "train.jsonl"), records(out / "validation.jsonl")
    facts = lambda rows: {row["evidence"][0]["sha256"] for row in rows}  # noqa: E731
    assert len(facts(validation)) == 2 and not facts(train) & facts(validation)
    card = (out / "README.md").read_text()
    assert "\n# lakes-v1\n" in card and ".partial" not in card and "| validation.jsonl | 4 |" in card
    assert verify_dataset(out).ok

    more = write_prompts(tmp_path / "more.jsonl", lake_prompts(LAKES[8:]))
    acx("-w", root, "distill", "--prompts", more, "--out", out, "--append", "--validation", "0.25", *args)
    train2, validation2 = records(out / "train.jsonl"), records(out / "validation.jsonl")
    ids = lambda rows: {row["id"] for row in rows}  # noqa: E731
    assert ids(validation) <= ids(validation2) and ids(train) <= ids(train2)  # nothing changed sides
    assert len(validation2) == 4 and len(train2) + len(validation2) == 20  # round(5) is not reachable: 4 or 6
    assert not facts(train2) & facts(validation2)


def test_the_split_holds_near_identical_pairs_together_through_the_cli(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    lakes = LAKES[:6]
    prompts = [{"instruction": f"How deep is Lake {fact.split()[1]}?", "evidence": fact} for fact in lakes]
    copy = lakes[0].replace(".", "!")  # the same fact copied into another document
    prompts.append({"instruction": "How deep is Lake A?", "evidence": copy})
    path = write_prompts(tmp_path / "twins.jsonl", prompts)
    for fraction in ("0.15", "0.3", "0.45", "0.6"):
        out = tmp_path / f"twins-{fraction}"
        args = ["distill", "--prompts", str(path), "--out", str(out), "--validation", fraction]
        acx("-w", root, *args, "--teachers", "gpu", "--keep-near-duplicates", "--json")
        sides = {
            row["evidence"][0]["sha256"]: name
            for name in ("train", "validation")
            for row in records(out / f"{name}.jsonl")
            if row["instruction"] == "How deep is Lake A?"
        }
        assert sorted(sides) == sorted(hashlib.sha256(t.encode()).hexdigest() for t in (lakes[0], copy))
        assert len(set(sides.values())) == 1, f"--validation {fraction}: the twins were split {sides}"
