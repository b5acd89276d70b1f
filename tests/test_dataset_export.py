"""Exports: each trainer's shape from accepted pairs; DPO from revisions; frames that match the signatures."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from arcticcodex.dataset import DatasetWriter, Revision, export_dataset, pair_id_for
from arcticcodex.dataset.citations import TrainingView
from arcticcodex.dataset.record import Turn
from arcticcodex.errors import DatasetError
from arcticcodex.forge import iter_document
from arcticcodex.forge.record_frames import read_train_pair
from arcticcodex.provenance import Ed25519Signer
from arcticcodex.provenance.trust import KeyRing, TrustedKeys
from conftest import Acx
from test_dataset_record import make_pair

SIGNER = Ed25519Signer.generate()
TRUSTED = KeyRing.only([(SIGNER.verifier(), "the test's key")])
IMPROVED, SLEEP, SINGLE = (
    make_pair().id,
    make_pair(instruction="Where do otters sleep?").id,
    make_pair(instruction="Single round?").id,
)


def build(out: Path) -> Path:
    improved = (Revision(1, "Fish.", 0.55), Revision(2, "Fish, crabs and sea urchins [c-1].", 0.92))
    barely = (Revision(1, "Mostly fish [c-1].", 0.88), Revision(2, "Fish, crabs and sea urchins [c-1].", 0.92))
    with DatasetWriter(out, SIGNER) as writer:
        writer.add(make_pair(revisions=improved))
        writer.add(make_pair(instruction="Where do otters sleep?", revisions=barely))
        writer.add(make_pair(instruction="Single round?", revisions=improved[1:]))
        writer.add(make_pair(instruction="Rejected?", accepted=False, quality=Decimal("0.3")))
    return out


def rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_chat_and_instruction_formats(tmp_path: Path) -> None:
    out = build(tmp_path / "ds")
    assert (
        export_dataset(out, tmp_path / "m.jsonl", "messages", keyring=TRUSTED) == 3
    )  # rejected pairs are not exported
    messages = rows(tmp_path / "m.jsonl")
    assert [row["id"] for row in messages] == [IMPROVED, SLEEP, SINGLE]
    assert messages[1]["messages"] == [
        {"role": "user", "content": "Where do otters sleep?"},
        {"role": "assistant", "content": "Fish, crabs and sea urchins [c-1]."},
    ]
    export_dataset(out, tmp_path / "o.jsonl", "openai", keyring=TRUSTED)
    assert all(set(row) == {"messages"} for row in rows(tmp_path / "o.jsonl"))
    export_dataset(out, tmp_path / "a.jsonl", "alpaca", keyring=TRUSTED)
    assert rows(tmp_path / "a.jsonl")[0] == {
        "instruction": "What do otters eat?",
        "input": "",
        "output": "Fish, crabs and sea urchins [c-1].",
    }
    export_dataset(out, tmp_path / "s.jsonl", "sharegpt", keyring=TRUSTED)
    assert rows(tmp_path / "s.jsonl")[0]["conversations"] == [
        {"from": "human", "value": "What do otters eat?"},
        {"from": "gpt", "value": "Fish, crabs and sea urchins [c-1]."},
    ]


def test_dpo_pairs_come_from_clear_improvements_only(tmp_path: Path) -> None:
    out = build(tmp_path / "ds")
    assert export_dataset(out, tmp_path / "d.jsonl", "dpo", keyring=TRUSTED) == 1
    (row,) = rows(tmp_path / "d.jsonl")
    assert row["id"] == IMPROVED
    assert row["prompt"] == [{"role": "user", "content": "What do otters eat?"}]
    assert row["chosen"] == [{"role": "assistant", "content": "Fish, crabs and sea urchins [c-1]."}]
    assert row["rejected"] == [{"role": "assistant", "content": "Fish."}]
    assert (
        export_dataset(out, tmp_path / "d2.jsonl", "dpo", dpo_margin=0.0, keyring=TRUSTED) == 2
    )  # SLEEP improved by 0.04


def test_fn_export_holds_exactly_the_signed_frames(tmp_path: Path) -> None:
    out = build(tmp_path / "ds")
    assert export_dataset(out, tmp_path / "frames.fn", "fn", keyring=TRUSTED) == 3
    text = (tmp_path / "frames.fn").read_text(encoding="utf-8")
    signed = [record["integrity"]["frame_sha256"] for record in rows(out / "train.jsonl")]
    lines = text.splitlines()
    assert [hashlib.sha256(line.encode()).hexdigest() for line in lines] == signed
    assert [read_train_pair(frame).pair_id for frame in iter_document(text)] == [IMPROVED, SLEEP, SINGLE]


def test_bad_requests_and_damaged_files_leave_no_output(tmp_path: Path) -> None:
    out = build(tmp_path / "ds")
    with pytest.raises(DatasetError, match="unknown export format 'csv'"):
        export_dataset(out, tmp_path / "x", "csv", keyring=TRUSTED)
    with (out / "train.jsonl").open("a") as handle:
        handle.write("{broken\n")
    before = sorted(path.name for path in tmp_path.iterdir())
    with pytest.raises(DatasetError, match=r"train\.jsonl:4: not valid JSON"):
        export_dataset(out, tmp_path / "m.jsonl", "messages", keyring=TRUSTED)
    assert sorted(path.name for path in tmp_path.iterdir()) == before  # no output, no temporary file of any name
    assert "m.jsonl" not in before


def test_cli_writes_beside_the_dataset_by_default(tmp_path: Path, acx: Acx) -> None:
    out = build(tmp_path / "ds")
    TrustedKeys.for_user().trust_key(SIGNER, name="tests", origin="the test")
    result = acx("dataset", "export", out, "--format", "sharegpt")
    assert f"Wrote 3 sharegpt rows to {out / 'export-sharegpt.jsonl'}" in result.output
    assert len(rows(out / "export-sharegpt.jsonl")) == 3


# -- issue 12, item 7: [n] markers leave the answers unless the evidence comes with them; earlier turns stay ----------

CITED = "Otters eat fish [1], crabs and sea urchins [1, 2]. Index `xs[1]` and list[3] are code, not citations."


def build_cited(out: Path) -> Path:
    """One pair whose answer cites its evidence as [1], after an earlier turn of its conversation."""
    context = (Turn("user", "Tell me about otters."), Turn("assistant", "Otters are mammals [1]."))
    base = make_pair(completion=CITED)
    pair = replace(base, context=context, id=pair_id_for(base.instruction, CITED, base.evidence, context))
    with DatasetWriter(out, SIGNER) as writer:
        writer.add(pair)
    return out


def test_citation_markers_are_removed_from_every_answer_by_default(tmp_path: Path) -> None:
    out = build_cited(tmp_path / "ds")
    export_dataset(out, tmp_path / "m.jsonl", "messages", keyring=TRUSTED)
    [row] = rows(tmp_path / "m.jsonl")
    assert row["messages"] == [
        {"role": "user", "content": "Tell me about otters."},
        {"role": "assistant", "content": "Otters are mammals."},
        {"role": "user", "content": "What do otters eat?"},
        # [1, 2] cites item 2, which this pair does not have: not a citation of it, so it stays; code stays too
        {
            "role": "assistant",
            "content": "Otters eat fish, crabs and sea urchins [1, 2]. Index `xs[1]` and list[3] "
            "are code, not citations.",
        },
    ]
    export_dataset(out, tmp_path / "s.jsonl", "sharegpt", keyring=TRUSTED)
    assert [turn["from"] for turn in rows(tmp_path / "s.jsonl")[0]["conversations"]] == ["human", "gpt", "human", "gpt"]
    export_dataset(out, tmp_path / "a.jsonl", "alpaca", keyring=TRUSTED)
    assert rows(tmp_path / "a.jsonl")[0]["input"] == "User: Tell me about otters.\n\nAssistant: Otters are mammals."
    assert "[1]" in (out / "train.jsonl").read_text()  # the signed record itself is unchanged


def test_with_the_evidence_the_markers_stay_and_a_system_message_holds_it(tmp_path: Path) -> None:
    out = build_cited(tmp_path / "ds")
    texts = {make_pair().evidence[0].sha256: "Otters eat fish, crabs and sea urchins."}
    view = TrainingView(evidence_texts=lambda ref: texts.get(ref.sha256), system_prompt="You answer about animals.")
    export_dataset(out, tmp_path / "rag.jsonl", "openai", keyring=TRUSTED, view=view)
    [row] = rows(tmp_path / "rag.jsonl")
    system, *turns = row["messages"]
    assert system == {
        "role": "system",
        "content": "You answer about animals.\n\nEVIDENCE:\n[1] (otters.md)\nOtters eat fish, crabs and sea urchins.",
    }
    assert turns[1]["content"] == "Otters are mammals [1]." and turns[3]["content"] == CITED

    export_dataset(out, tmp_path / "p.jsonl", "messages", keyring=TRUSTED, view=TrainingView(system_prompt="Be brief."))
    prompted = rows(tmp_path / "p.jsonl")[0]["messages"]
    assert prompted[0] == {"role": "system", "content": "Be brief."} and "[1]" not in prompted[2]["content"]

    lost = TrainingView(evidence_texts=lambda ref: None)
    with pytest.raises(DatasetError, match=r"train\.jsonl:1: the text of evidence \[1\] \(otters\.md, c-1\) is not in"):
        export_dataset(out, tmp_path / "lost.jsonl", "messages", keyring=TRUSTED, view=lost)
    assert not (tmp_path / "lost.jsonl").exists()
