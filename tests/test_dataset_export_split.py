"""`dataset export --split train|validation|all`, and a DPO export that says why it wrote no rows (issue 12, item 9)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import Result

from arcticcodex.dataset import DatasetWriter, Revision
from arcticcodex.dataset.split import PlannedSplit
from arcticcodex.provenance import Ed25519Signer
from conftest import Acx
from test_dataset_record import make_pair

SIGNER = Ed25519Signer.generate()


def build(out: Path, *, held_out: int | None = 1, revisions: tuple[Revision, ...] | None = None) -> list[str]:
    """Four accepted pairs (the ``held_out``-th in validation.jsonl) and one rejected; their ids."""
    pairs = [
        make_pair(instruction=f"Question {n}?", **({"revisions": revisions} if revisions else {})) for n in range(4)
    ]
    split = PlannedSplit([pairs[held_out].id]) if held_out is not None else None
    with DatasetWriter(out, SIGNER, validation_fraction=0.25 if split else 0.0, split=split) as writer:
        writer.add_many([*pairs, make_pair(instruction="Rejected?", accepted=False)])
    return [pair.id for pair in pairs]


def export(acx: Acx, tmp_path: Path, directory: Path, *args: str | Path, code: int = 0) -> Result:
    """``acx dataset export DIRECTORY ARGS…``, trusting the signer by its public key."""
    key = tmp_path / "signer.pub"
    key.write_bytes(SIGNER.public_pem())
    return acx("dataset", "export", directory, "--public-key", key, *args, code=code)


def ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_each_split_exports_its_records(tmp_path: Path, acx: Acx) -> None:
    pair_ids = build(tmp_path / "ds")
    result = export(acx, tmp_path, tmp_path / "ds", "--format", "messages")
    assert f"Wrote 3 messages rows to {tmp_path / 'ds' / 'export-messages.jsonl'}" in result.output
    assert ids(tmp_path / "ds" / "export-messages.jsonl") == [pair_ids[0], pair_ids[2], pair_ids[3]]
    result = export(acx, tmp_path, tmp_path / "ds", "--format", "messages", "--split", "validation")
    target = tmp_path / "ds" / "export-messages-validation.jsonl"  # the train export is not overwritten
    assert f"Wrote 1 messages rows (validation split) to {target}" in result.output
    assert ids(target) == [pair_ids[1]]
    result = export(
        acx, tmp_path, tmp_path / "ds", "--format", "openai", "--split", "all", "-o", tmp_path / "all.jsonl"
    )
    assert "Wrote 4 openai rows (all split)" in result.output
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == 4


def test_a_validation_export_of_a_dataset_without_one_says_how_to_get_one(tmp_path: Path, acx: Acx) -> None:
    build(tmp_path / "ds", held_out=None)
    result = export(acx, tmp_path, tmp_path / "ds", "--format", "messages", "--split", "validation", code=1)
    assert "has no validation file (validation.jsonl)" in result.output and "--validation 0.1" in result.output
    assert "Export --split 'train'" in result.output
    assert not (tmp_path / "ds" / "export-messages-validation.jsonl").exists()
    assert (
        "Wrote 4 messages rows (all split)"
        in export(acx, tmp_path, tmp_path / "ds", "--format", "messages", "--split", "all").output
    )


def test_a_dpo_export_with_no_rows_says_why_and_what_to_change(tmp_path: Path, acx: Acx) -> None:
    build(tmp_path / "first-round", revisions=(Revision(1, "Fish, crabs and sea urchins [c-1].", 0.92),))
    result = export(acx, tmp_path, tmp_path / "first-round", "--format", "dpo")
    assert "Wrote 0 dpo rows" in result.output
    assert (
        "0 rows: no pair improved by the margin 0.1 across rounds: of 3 pairs, 3 accepted in their first round "
        "(no earlier draft to prefer against). Lower the margin, or run more rounds"
    ) in result.output
    assert "--max-rounds" in result.output

    build(tmp_path / "improved")  # make_pair's revisions: 0.55 → 0.92, a gain of 0.37
    result = export(acx, tmp_path, tmp_path / "improved", "--format", "dpo", "--dpo-margin", "0.5")
    assert "of 3 pairs, 3 that improved by less than 0.5 (the most was 0.37)" in result.output
    assert "Lower the margin (e.g. `arcticcodex dataset export … --dpo-margin 0.37`)" in result.output
    result = export(acx, tmp_path, tmp_path / "improved", "--format", "dpo", "--dpo-margin", "0.3")
    assert "Wrote 3 dpo rows" in result.output and "0 rows" not in result.output
