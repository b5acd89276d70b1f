"""`verify_dataset` and the tamper matrix: each kind of damage is detected and named by file, line and record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.dataset import DatasetWriter, verify_dataset
from arcticcodex.dataset.checking import check_file_lines
from arcticcodex.errors import DatasetError
from arcticcodex.provenance import Ed25519Signer, Ed25519Verifier, HmacSigner
from test_dataset_record import make_pair

SIGNER = Ed25519Signer.generate()


def build(out: Path, count: int = 6, signer: Ed25519Signer | HmacSigner = SIGNER) -> Path:
    with DatasetWriter(out, signer) as writer:
        for number in range(count):
            question = f"Question {number}?"
            writer.add(make_pair(instruction=question))
        writer.add(make_pair(instruction="Weak?", accepted=False, feedback="Unsupported."))
    return out


def edit_lines(path: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    path.write_bytes(b"".join(change(path.read_bytes().splitlines(keepends=True))))


def messages(report: object) -> list[str]:
    return [str(problem) for problem in report.problems]  # type: ignore[attr-defined]


def test_an_intact_dataset_verifies(tmp_path: Path) -> None:
    report = verify_dataset(build(tmp_path / "ds"))
    assert report.ok, messages(report)
    assert (report.records, report.rejected, report.key_id) == (6, 1, SIGNER.key_id)
    assert verify_dataset(tmp_path / "ds", trusted=SIGNER.verifier()).ok


def test_every_byte_of_every_record_is_covered(tmp_path: Path) -> None:
    """Flip each byte of one record in turn (skipping the JSON structure that reparses the same)."""
    out = build(tmp_path / "ds", count=2)
    original = (out / "train.jsonl").read_bytes()
    first_line_end = original.index(b"\n")
    undetected = []
    for position in range(first_line_end):
        flipped = bytearray(original)
        flipped[position] ^= 0x01
        (out / "train.jsonl").write_bytes(bytes(flipped))
        report = verify_dataset(out)
        if report.ok:
            undetected.append(position)
        else:
            assert any(p.file == "train.jsonl" for p in report.problems)
    (out / "train.jsonl").write_bytes(original)
    assert undetected == [], [original[p - 10 : p + 10] for p in undetected]


def _swap(lines: list[bytes]) -> list[bytes]:
    return [lines[1], lines[0], *lines[2:]]


def _insert_foreign(out: Path) -> Callable[[list[bytes]], list[bytes]]:
    foreign = build(out.parent / "foreign", count=3, signer=Ed25519Signer.generate())
    line = (foreign / "train.jsonl").read_bytes().splitlines(keepends=True)[2]
    return lambda lines: [*lines[:2], line, *lines[2:]]


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("delete", ["train.jsonl:3 (record tp-", "index 3 where 2 was expected: records were deleted"]),
        ("duplicate", ["train.jsonl:3 (record tp-", "duplicate of the record on line 2"]),
        ("reorder", ["train.jsonl:1 (record tp-", "index 1 where 0 was expected"]),
        ("insert", ["train.jsonl:3 (record tp-", "signed with key"]),
        ("truncate", ["train.jsonl:6", "cut short"]),
        ("manifest", ["manifest.json: the manifest's signature does not verify"]),
        ("count", ["manifest.json", "record_count is 7"]),
    ],
)
def test_structural_damage_is_named(tmp_path: Path, damage: str, expected: list[str]) -> None:
    out = build(tmp_path / "ds")
    train = out / "train.jsonl"
    if damage == "delete":
        edit_lines(train, lambda lines: lines[:2] + lines[3:])
    elif damage == "duplicate":
        edit_lines(train, lambda lines: [*lines[:2], lines[1], *lines[2:]])
    elif damage == "reorder":
        edit_lines(train, _swap)
    elif damage == "insert":
        edit_lines(train, _insert_foreign(out))
    elif damage == "truncate":
        train.write_bytes(train.read_bytes()[:-40])
    else:
        manifest = json.loads((out / "manifest.json").read_text())
        if damage == "manifest":
            manifest["recipe"] = {"threshold": 0.1}
        else:
            manifest["record_count"] = 7
        (out / "manifest.json").write_text(json.dumps(manifest))
    report = verify_dataset(out)
    assert not report.ok
    text = "\n".join(messages(report))
    for phrase in expected:
        assert phrase in text, text
    if damage in {"delete", "duplicate", "reorder", "insert", "truncate"}:
        assert "train.jsonl: the Merkle root of its records differs from the manifest's" in text


def test_a_key_other_than_the_trusted_one_is_intact_but_untrusted(tmp_path: Path) -> None:
    out = build(tmp_path / "ds")
    other = Ed25519Signer.generate()
    report = verify_dataset(out, trusted=other.verifier())
    assert report.ok and not report.trusted and report.verdict == "intact, signer NOT trusted"
    assert report.trust_note == f"signed by ed25519 key {SIGNER.key_id}, which is not the key given"
    trusted = verify_dataset(out, trusted=SIGNER.verifier())
    assert trusted.ok and trusted.trusted and trusted.verdict == "intact, signer trusted"
    assert not verify_dataset(out).trusted  # by default nothing is trusted, least of all the shipped key


def test_a_replaced_public_key_does_not_pass(tmp_path: Path) -> None:
    out = build(tmp_path / "ds")
    (out / f"keys/{SIGNER.key_id}.pub").write_bytes(Ed25519Signer.generate().public_pem())
    assert "fingerprint is not the manifest's key_id" in "\n".join(messages(verify_dataset(out)))


def test_hmac_datasets_need_the_secret(tmp_path: Path) -> None:
    secret = HmacSigner(b"k" * 32)
    out = build(tmp_path / "ds", signer=secret)
    assert (
        "whose secret is not in this workspace's keys: check the records with it "
        "(`arcticcodex dataset verify DIR --key NAME`)" in "\n".join(messages(verify_dataset(out)))
    )
    assert verify_dataset(out, trusted=secret).ok
    assert not verify_dataset(out, trusted=HmacSigner(b"j" * 32)).ok


def test_a_folder_that_is_not_a_dataset_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no manifest\.json"):
        verify_dataset(tmp_path)
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(DatasetError, match="not an ArcticCodex dataset manifest"):
        verify_dataset(tmp_path)


@pytest.mark.parametrize("signer", [SIGNER, HmacSigner.generate()], ids=["ed25519", "hmac"])
def test_parallel_line_checks_match_the_serial_ones_at_every_range_boundary(tmp_path: Path, signer: Any) -> None:
    out = build(tmp_path / "ds", count=120, signer=signer)
    train = out / "train.jsonl"

    def damage(lines: list[bytes]) -> list[bytes]:
        lines[3] = lines[3].replace(b"Question 3?", b"Question 8?")  # a changed byte
        lines[50] = b"{not json\n"
        lines[77], lines[78] = lines[78], lines[77]  # reordered
        return [*lines, lines[10], lines[11][:40]]  # a duplicate, then a cut-short last line

    edit_lines(train, damage)
    verifier = signer if isinstance(signer, HmacSigner) else Ed25519Verifier.from_public_pem(signer.public_pem())
    whole = hashlib.sha256(train.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    serial = list(check_file_lines(train, verifier, workers=1, digest=digest))
    assert digest.hexdigest() == whole
    for range_bytes in (1, 700, 5000):  # a range per line, ranges cut mid-line, a few large ranges
        digest = hashlib.sha256()
        parallel = check_file_lines(
            train, verifier, workers=2, parallel_from_bytes=0, range_bytes=range_bytes, digest=digest
        )
        assert list(parallel) == serial and digest.hexdigest() == whole
    assert [r.line for r in serial] == list(range(1, 123))
    assert serial[3].problems and serial[50].problems and serial[121].cut_short and not serial[0].problems
