"""The dataset card's YAML: what the Hub reads (license, language, tasks, size, tags, teachers, key, root),
valid whatever the names hold, and signed with the rest of the dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from huggingface_hub import DatasetCard

from arcticcodex.dataset import DatasetWriter, verify_dataset
from arcticcodex.dataset.card import CardInfo, size_category
from arcticcodex.provenance import Ed25519Signer
from test_dataset_record import make_pair

SIGNER = Ed25519Signer.generate()


def write(out: Path, count: int = 3, info: CardInfo | None = None, teachers: tuple[str, ...] = ()) -> Path:
    with DatasetWriter(out, SIGNER, card_info=info) as writer:
        for number in range(count):
            changes: dict[str, Any] = {"teachers": teachers} if teachers else {}
            writer.add(make_pair(instruction=f"Question {number}?", **changes))
        writer.add(make_pair(instruction="Weak?", accepted=False))
    return out


def metadata(out: Path) -> dict[str, Any]:
    """The front matter as the Hub's own parser reads it, checked against a plain YAML parser."""
    text = (out / "README.md").read_text(encoding="utf-8")
    data = DatasetCard(text).data.to_dict()
    assert data == yaml.safe_load(text.split("---\n", 2)[1])
    return data


def test_the_card_tells_the_hub_what_the_dataset_is_and_how_to_check_it(tmp_path: Path) -> None:
    out = write(tmp_path / "otters")
    data = metadata(out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert data["license"] == "other"  # the documented default: the sources' and teachers' terms decide
    assert data["language"] == ["en"]
    assert data["task_categories"] == ["question-answering", "text-generation"]
    assert data["size_categories"] == ["n<1K"]
    assert data["pretty_name"] == "otters"
    assert {"arcticcodex", "distillation", "signed", "synthetic"} <= set(data["tags"])
    assert data["configs"][0]["data_files"] == [{"split": "train", "path": "train.jsonl"}]
    assert data["arcticcodex"] == {
        "signing_algorithm": "ed25519",
        "signing_key_id": SIGNER.key_id,
        "merkle_root": manifest["merkle_root"],
        "teachers": [{"name": "deepseek", "model": None}, {"name": "local-judge", "model": None}],
        "verify": "arcticcodex dataset verify DIR",
    }
    text = (out / "README.md").read_text(encoding="utf-8")
    verify = text.split("## How to verify", 1)[1]
    assert (
        f"key `{SIGNER.key_id}`" in verify and f"Merkle root of `train.jsonl` is `{manifest['merkle_root']}`" in verify
    )
    assert "arcticcodex dataset verify DIR" in verify
    assert "their providers' terms of use apply to their\noutputs" in text
    assert "No license was set when the dataset was written" in text


def test_license_languages_and_models_come_from_the_card_info(tmp_path: Path) -> None:
    info = CardInfo(license="cc-by-4.0", languages=("en", "de"), teacher_models={"deepseek": "deepseek-chat"})
    out = write(tmp_path / "ds", info=info)
    data = metadata(out)
    assert (data["license"], data["language"]) == ("cc-by-4.0", ["en", "de"])
    assert data["arcticcodex"]["teachers"] == [
        {"name": "deepseek", "model": "deepseek-chat"},
        {"name": "local-judge", "model": None},
    ]
    text = (out / "README.md").read_text(encoding="utf-8")
    assert "| deepseek | `deepseek-chat` |" in text and "No license was set" not in text


def test_names_that_look_like_yaml_cannot_break_or_inject_into_the_card(tmp_path: Path) -> None:
    hostile = 'evil: "x" # license: mit'  # a teacher id is one line (the frame refuses control characters)
    model = "m: {a: [1\n---\nlicense: mit\n---\n# not the card"  # a model name from the config may be anything
    info = CardInfo(teacher_models={hostile: model})
    out = write(tmp_path / "a: b # c", info=info, teachers=(hostile,))
    data = metadata(out)
    assert data["license"] == "other" and data["pretty_name"] == "a: b # c"
    assert {"name": hostile, "model": model} in data["arcticcodex"]["teachers"]
    table = (out / "README.md").read_text(encoding="utf-8").split("## Teachers", 1)[1]
    assert '| evil: "x" # license: mit | `m: {a: [1 --- license: mit --- # not the card` |' in table
    assert verify_dataset(out, trusted=SIGNER.verifier()).ok


@pytest.mark.parametrize(
    ("rows", "label"),
    [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (99_999, "10K<n<100K"), (10**6, "1M<n<10M"), (10**9, "n>1B")],
)
def test_the_size_category_is_the_hubs_for_the_count(rows: int, label: str) -> None:
    assert size_category(rows) == label


def test_the_size_category_counts_the_training_rows(tmp_path: Path) -> None:
    out = write(tmp_path / "big", count=1000)
    assert metadata(out)["size_categories"] == ["1K<n<10K"]


def test_the_card_and_its_metadata_are_signed(tmp_path: Path) -> None:
    out = write(tmp_path / "ds")
    card = out / "README.md"
    text = card.read_text(encoding="utf-8")
    relicensed = text.replace('license: "other"', 'license: "apache-2.0"')
    assert relicensed != text
    card.write_text(relicensed, encoding="utf-8")
    report = verify_dataset(out, trusted=SIGNER.verifier())
    assert [str(problem) for problem in report.problems] == [
        "README.md: the dataset card was edited after the dataset was signed"
    ]
