"""`arcticcodex merge` (issue 14, item 5): mergekit as a subprocess, every candidate scored, the best kept,
and a receipt naming the parents — on two tiny students trained in the test (one full, one LoRA adapter)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("trl")

from conftest import Acx
from test_train import FAST, chatml_base, root, train  # noqa: F401 - fixtures

STEPS = ("--max-steps", "3")


@pytest.fixture
def parents(root: Path, tmp_path: Path, chatml_base: Path, acx: Acx) -> tuple[Path, Path]:  # noqa: F811
    full = tmp_path / "full"
    train(acx, root, tmp_path / "ds", "--base", chatml_base, "--out", full, *STEPS, *FAST[2:], "--full")
    adapter = tmp_path / "adapter"
    train(acx, root, tmp_path / "ds", "--base", chatml_base, "--out", adapter, *STEPS, *FAST)
    return full, adapter


def config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "merge.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_every_method_is_scored_the_best_kept_and_the_receipt_names_the_parents(
    root: Path,  # noqa: F811
    tmp_path: Path,
    parents: tuple[Path, Path],
    acx: Acx,
) -> None:
    full, adapter = parents
    plan = config(
        tmp_path, f'models = ["{full}", "{adapter}"]\nmethods = ["linear", "ties", "slerp"]\nheldout = "ds"\n'
    )
    result = json.loads(acx("-w", root, "merge", plan, "--out", tmp_path / "merged", "--json").stdout)
    scores = result["scores"]
    assert set(scores) == {"linear", "ties", "slerp", f"parent:{full}", f"parent:{adapter}"}
    assert result["best"] == min(("linear", "ties", "slerp"), key=scores.__getitem__)
    assert (tmp_path / "merged" / "model" / "model.safetensors").is_file()
    assert not (tmp_path / "merged" / "work").exists()  # the other candidates are not kept
    receipt = json.loads((tmp_path / "merged" / "receipt.json").read_text())["receipt"]
    assert [parent["receipt_sha256"] for parent in receipt["parents"]] == [
        hashlib.sha256((folder / "receipt.json").read_bytes()).hexdigest() for folder in (full, adapter)
    ]
    assert receipt["config"]["chosen"] == result["best"] and receipt["libraries"]["mergekit"]
    checked = acx("-w", root, "receipt", "verify", tmp_path / "merged", "--dataset", tmp_path / "ds")
    assert "OK: intact, signer trusted" in checked.stdout


def test_a_parent_whose_receipt_fails_is_never_merged(
    root: Path,  # noqa: F811
    tmp_path: Path,
    parents: tuple[Path, Path],
    acx: Acx,
) -> None:
    full, adapter = parents
    weights = adapter / "model" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + bytes(4))
    plan = config(tmp_path, f'models = ["{full}", "{adapter}"]\nmethods = ["linear"]\nheldout = "ds"\n')
    refused = acx("-w", root, "merge", plan, "--out", tmp_path / "merged", code=1)
    assert f"{adapter}: its receipt does not verify (model/adapter_model.safetensors: changed" in refused.output
    assert not (tmp_path / "merged").exists()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('models = ["a"]\nheldout = "ds"\n', "merge.toml: models: List should have at least 2 items"),
        ('models = ["a", "b"]\nheldout = "ds"\nmethods = ["soup"]\n', "merge.toml: methods.0: Input should be"),
        ('models = ["a", "b", "c"]\nheldout = "ds"\nmethods = ["slerp"]\n', "slerp merges exactly two models, not 3"),
        ('models = ["a", "b"]\nheldout = "ds"\nweights = [1.0]\n', "weights has 1 numbers for 2 models"),
        ('models = ["a", "b"]\nheldout = "ds"\nmodel = "x"\n', "merge.toml: model: Extra inputs are not permitted"),
    ],
)
def test_a_bad_merge_config_is_refused_with_its_file_and_setting(
    root: Path,  # noqa: F811
    tmp_path: Path,
    acx: Acx,
    body: str,
    expected: str,
) -> None:
    refused = acx("-w", root, "merge", config(tmp_path, body), "--out", tmp_path / "merged", code=1)
    assert expected in refused.output
