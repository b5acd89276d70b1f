"""`dataset stats`: counts, quality histogram, teachers, signers, rounds, tokens and cost, from the files."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from arcticcodex.dataset import DatasetWriter, PairSource, Revision, dataset_statistics
from arcticcodex.errors import DatasetError
from arcticcodex.provenance import Ed25519Signer
from conftest import Acx
from test_dataset_record import make_pair


def build(out: Path) -> Path:
    one_round = (Revision(1, "x", 0.95, teachers=("deepseek",), tokens=100, cost_usd=0.001),)
    two_rounds = (
        Revision(1, "x", 0.6, tokens=100, cost_usd=0.001),
        Revision(2, "y", 0.85, tokens=200, cost_usd=0.002),
    )
    with DatasetWriter(out, Ed25519Signer.generate()) as writer:
        writer.add(make_pair(instruction="Question a?", quality=Decimal("0.95"), revisions=one_round))
        writer.add(
            make_pair(instruction="Question b?", quality=Decimal("0.85"), revisions=two_rounds, signer_id="teacher-02")
        )
        writer.add(
            make_pair(instruction="Question b?", quality=Decimal("0.85"), revisions=two_rounds)
        )  # the same content id: dropped
        writer.add(
            make_pair(
                instruction="Question c?",
                quality=Decimal("0.91"),
                revisions=one_round,
                teachers=("vllm",),
                source=PairSource("conversation", "conv-1:3"),
            )
        )
        writer.add(
            make_pair(
                instruction="Question d?", quality=Decimal("0.55"), revisions=two_rounds * 1 + one_round, accepted=False
            )
        )
    return out


def test_statistics_count_what_is_in_the_files(tmp_path: Path) -> None:
    summary = dataset_statistics(build(tmp_path / "ds"))
    assert (summary["accepted"], summary["rejected"], summary["duplicates_removed"]) == (3, 1, 1)
    assert summary["acceptance_rate"] == 0.75
    quality = summary["quality"]
    assert quality["mean"] == pytest.approx((0.95 + 0.85 + 0.91) / 3)
    assert (quality["min"], quality["max"]) == (0.85, 0.95)
    assert quality["accepted_histogram"] == {
        "0.0-0.5": 0, "0.5-0.6": 0, "0.6-0.7": 0, "0.7-0.8": 0, "0.8-0.9": 1, "0.9-1.0": 2
    }  # fmt: skip
    assert quality["rejected_histogram"]["0.5-0.6"] == 1
    assert summary["rounds"] == {"1": 2, "2": 1, "3": 1}
    assert summary["teachers"] == {"deepseek": 3, "local-judge": 3, "vllm": 1}
    assert summary["signers"] == {"teacher-01": 3, "teacher-02": 1}
    assert summary["sources"] == {"prompts": 3, "conversation": 1}
    assert summary["tokens"] == 100 + 300 + 100 + 400
    assert summary["cost_usd"] == pytest.approx(0.009)
    assert summary["cost_usd_per_accepted"] == pytest.approx(0.003)


def test_cli_prints_text_and_json(tmp_path: Path, acx: Acx) -> None:
    out = build(tmp_path / "ds")
    text = acx("dataset", "stats", out)
    assert "3 accepted, 1 rejected (75% accepted), 1 duplicates removed" in text.output
    assert "0.9-1.0  " + "█" * 30 + " 2" in text.output
    assert "teachers: deepseek 3, local-judge 3, vllm 1" in text.output
    as_json = acx("dataset", "stats", out, "--json")
    assert json.loads(as_json.stdout) == json.loads(json.dumps(dataset_statistics(out)))


def test_a_damaged_line_is_named(tmp_path: Path) -> None:
    out = build(tmp_path / "ds")
    with (out / "train.jsonl").open("a") as handle:
        handle.write('{"id": "x"\n')
    with pytest.raises(DatasetError, match=r"train\.jsonl:4: not valid JSON"):
        dataset_statistics(out)
    with pytest.raises(DatasetError, match="not a dataset folder"):
        dataset_statistics(tmp_path)
