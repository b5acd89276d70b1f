"""The dataset writer: complete-or-absent folders, sequential indexes, a signed manifest whose numbers recompute."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.dataset import DatasetWriter, canonical_json, verify_dataset
from arcticcodex.dataset.writer import MANIFEST_CONTEXT
from arcticcodex.errors import DatasetError
from arcticcodex.provenance import Ed25519Signer, Ed25519Verifier, HmacSigner
from arcticcodex.provenance.merkle import reference_root
from test_dataset_record import make_pair


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_writes_a_complete_signed_dataset(tmp_path: Path) -> None:
    signer = Ed25519Signer.generate()
    out = tmp_path / "ds"
    with DatasetWriter(out, signer, recipe={"threshold": 0.8, "max_rounds": 3}) as writer:
        for number in range(5):
            written = writer.add(make_pair(instruction=f"Question {number}?", index=99))
            assert written is not None and written.index == number  # indexes are the writer's, in write order
        writer.add(make_pair(instruction="Weak?", accepted=False, feedback="Unsupported claim."))

    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "keys", "manifest.json", "rejected.jsonl", "train.jsonl"]
    train, rejected = _lines(out / "train.jsonl"), _lines(out / "rejected.jsonl")
    assert [record["index"] for record in train] == [0, 1, 2, 3, 4]
    assert [record["instruction"] for record in train] == [f"Question {n}?" for n in range(5)]
    assert rejected[0]["accepted"] is False and rejected[0]["feedback"] == "Unsupported claim."

    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["record_count"], manifest["rejected_count"]) == (5, 1)
    assert (manifest["algorithm"], manifest["key_id"]) == ("ed25519", signer.key_id)
    assert manifest["recipe"] == {"threshold": 0.8, "max_rounds": 3}
    leaves = [
        bytes.fromhex(r["integrity"]["frame_sha256"]) + bytes.fromhex(r["integrity"]["body_sha256"]) for r in train
    ]
    assert manifest["merkle_root"] == reference_root(leaves).hex()
    train_bytes = (out / "train.jsonl").read_bytes()
    assert manifest["files"]["train.jsonl"] == {
        "records": 5,
        "merkle_root": manifest["merkle_root"],
        "sha256": hashlib.sha256(train_bytes).hexdigest(),
        "bytes": len(train_bytes),
    }
    # The manifest's signature holds under the shipped public key, and only for these exact contents.
    verifier = Ed25519Verifier.from_public_pem((out / manifest["public_key"]).read_bytes())
    assert verifier.key_id == signer.key_id
    unsigned = {name: value for name, value in manifest.items() if name != "signature"}
    signature = base64.b64decode(manifest["signature"])
    assert verifier.verify(MANIFEST_CONTEXT + canonical_json(unsigned), signature)
    assert not verifier.verify(MANIFEST_CONTEXT + canonical_json({**unsigned, "record_count": 4}), signature)


def test_hmac_datasets_ship_no_key(tmp_path: Path) -> None:
    secret = b"s" * 32
    with DatasetWriter(tmp_path / "ds", HmacSigner(secret)) as writer:
        writer.add(make_pair())
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["public_key"] is None and not (tmp_path / "ds" / "keys").exists()
    for path in (tmp_path / "ds").rglob("*"):
        assert secret not in path.read_bytes()


def test_a_failure_inside_the_block_leaves_no_dataset_behind(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    with pytest.raises(RuntimeError), DatasetWriter(out, Ed25519Signer.generate()) as writer:
        writer.add(make_pair())
        raise RuntimeError("teacher pool died")
    assert list(out.iterdir()) == []


def test_until_closed_only_partial_files_exist(tmp_path: Path) -> None:
    writer = DatasetWriter(tmp_path / "ds", Ed25519Signer.generate())
    writer.add(make_pair())
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["rejected.jsonl.partial", "train.jsonl.partial"]
    writer.close()
    assert not list((tmp_path / "ds").glob("*.partial")) and not list((tmp_path / "ds").rglob("*.tmp"))
    with pytest.raises(DatasetError, match="already closed"):
        writer.add(make_pair())


def test_a_folder_with_content_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        DatasetWriter(tmp_path, Ed25519Signer.generate())
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_records_written_match_what_add_returned(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path / "ds", Ed25519Signer.generate()) as writer:
        returned = writer.add(make_pair())
    assert returned is not None
    (record,) = _lines(tmp_path / "ds" / "train.jsonl")
    assert record["id"] == returned.id and record["index"] == returned.index == 0
    assert {name: value for name, value in record.items() if name != "integrity"} == json.loads(
        json.dumps(returned.body())
    )


def test_exact_duplicates_are_written_once_and_counted(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path / "ds", Ed25519Signer.generate()) as writer:
        first = writer.add(make_pair())
        assert writer.add(make_pair(feedback="said again")) is None  # same id: same question, answer, evidence
        other = writer.add(make_pair(instruction="Another?"))
        assert other is not None
    assert first is not None
    assert [r["id"] for r in _lines(tmp_path / "ds" / "train.jsonl")] == [first.id, other.id]
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert (manifest["record_count"], manifest["duplicates_removed"]) == (2, 1)


@pytest.mark.parametrize("signer", [Ed25519Signer.generate(), HmacSigner.generate()], ids=["ed25519", "hmac"])
def test_add_many_in_worker_processes_writes_the_same_bytes_as_add(tmp_path: Path, signer: Any) -> None:
    pairs = [make_pair(instruction=f"Q{n}?", accepted=n % 7 != 0) for n in range(700)]
    pairs.insert(300, pairs[5])  # an exact duplicate, placed among the parallel batches
    with DatasetWriter(tmp_path / "serial", signer, validation_fraction=0.2) as serial:
        for pair in pairs:
            serial.add(pair)
    with DatasetWriter(tmp_path / "parallel", signer, validation_fraction=0.2) as parallel:
        written = parallel.add_many(pairs, workers=2, parallel_from=100)
    assert written == 700 and parallel.duplicates_removed == serial.duplicates_removed == 1
    for name in ("train.jsonl", "validation.jsonl", "rejected.jsonl"):
        assert (tmp_path / "parallel" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes()
    trusted = signer if isinstance(signer, HmacSigner) else None
    assert verify_dataset(tmp_path / "parallel", trusted=trusted).ok


def test_a_pair_without_its_content_id_is_refused(tmp_path: Path) -> None:
    writer = DatasetWriter(tmp_path / "ds", Ed25519Signer.generate())
    with pytest.raises(DatasetError, match=r"'tp-made-up' .* does not carry its content id tp-[0-9a-f]{32}"):
        writer.add(make_pair(id="tp-made-up"))
    writer.abort()
