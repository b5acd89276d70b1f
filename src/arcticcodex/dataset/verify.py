"""Verifying a dataset folder: every record, every line, the manifest, all in one streaming pass.

What each check catches (the tamper matrix, DATASET.md):

- a changed byte in any field       → the record's signature (frame digest + body digest) fails
- a record signed with another key  → its ``key_id`` / signature fails; a wrong trusted key fails the manifest
- a deleted, inserted, reordered record → ``index`` out of sequence, counts, and the Merkle root
- a duplicated record               → the same ``id`` seen on an earlier line
- a truncated last line              → no final newline / unreadable JSON, and the file digest
- an edited manifest                → the manifest's own signature

Per-record signatures alone cannot see deletion or reordering; the Merkle root and ``index`` can,
so both are checked.  Memory stays flat except for the set of ids seen (a few MB per 100k records).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DatasetError, KeyFileError
from ..provenance.merkle import MerkleAccumulator
from ..provenance.signing import Ed25519Verifier, Verifier
from .checking import check_file_lines
from .record import canonical_json
from .writer import CARD_FILE, FORMAT, MANIFEST_CONTEXT, MANIFEST_FILE, REJECTED_FILE, TRAIN_FILE, VALIDATION_FILE

__all__ = ["Problem", "VerificationReport", "verify_dataset"]

MAX_PROBLEMS = 1000


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong, with its place: file, line (1-based, or None for the whole file) and record id."""

    file: str
    message: str
    line: int | None = None
    record_id: str | None = None

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line is not None else self.file
        record = f" (record {self.record_id})" if self.record_id else ""
        return f"{place}{record}: {self.message}"


@dataclass(slots=True)
class VerificationReport:
    directory: Path
    records: int = 0
    rejected: int = 0
    validation: int = 0
    key_id: str = ""
    problems: list[Problem] = field(default_factory=list)
    problems_not_listed: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.problems_not_listed += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "ok": self.ok,
            "records": self.records,
            "validation": self.validation,
            "rejected": self.rejected,
            "key_id": self.key_id,
            "problems": [
                {"file": p.file, "line": p.line, "record_id": p.record_id, "message": p.message} for p in self.problems
            ],
            "problems_not_listed": self.problems_not_listed,
        }


def verify_dataset(directory: str | Path, *, trusted: Verifier | None = None, workers: int = 1) -> VerificationReport:
    """Check everything in ``directory``; problems are collected, not raised.

    ``trusted`` is the key the dataset must be signed with (an HMAC secret, or an Ed25519 public
    key from a source you trust).  Without it, the Ed25519 public key shipped in ``keys/`` is used,
    which proves the dataset is intact and self-consistent, not who made it.
    ``workers`` > 1 checks large files in that many processes (``dataset verify`` uses every core).
    Raises :class:`DatasetError` only when ``directory`` is not a dataset at all.
    """
    directory = Path(directory)
    report = VerificationReport(directory)
    manifest = _read_manifest(directory)
    report.key_id = str(manifest.get("key_id", ""))
    verifier = _choose_verifier(directory, manifest, trusted, report)
    if verifier is None:
        return report
    _check_manifest_signature(manifest, verifier, report)
    files = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    record_files = [(TRAIN_FILE, True), (REJECTED_FILE, False)]
    if (isinstance(files, dict) and VALIDATION_FILE in files) or (directory / VALIDATION_FILE).exists():
        record_files.insert(1, (VALIDATION_FILE, True))
    counts: dict[str, int] = {}
    for name, accepted in record_files:
        expected = files.get(name) if isinstance(files, dict) else None
        if not isinstance(expected, dict):
            report.add(Problem(MANIFEST_FILE, f"the manifest has no entry for {name}"))
            expected = {}
        counts[name] = _check_records(directory / name, accepted, expected, verifier, report, workers)
    report.records = counts[TRAIN_FILE]
    report.validation = counts.get(VALIDATION_FILE, 0)
    report.rejected = counts[REJECTED_FILE]
    for field_name, name in (("record_count", TRAIN_FILE), ("validation_count", VALIDATION_FILE)):
        stated = manifest.get(field_name, 0 if field_name == "validation_count" else None)
        if stated != counts.get(name, 0):
            report.add(
                Problem(MANIFEST_FILE, f"{field_name} is {stated} but {name} holds {counts.get(name, 0)} records")
            )
    _check_card(directory, manifest.get("card"), report)
    return report


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise DatasetError(
            f"{directory} has no {MANIFEST_FILE}: it is not a dataset, or its writing never finished "
            "(run the distillation again, or `arcticcodex distill --resume RUN`)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path} is not valid JSON ({exc}); the manifest was damaged") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetError(f"{path} is not an ArcticCodex dataset manifest (expected format {FORMAT!r})")
    return manifest


def _choose_verifier(
    directory: Path, manifest: dict[str, Any], trusted: Verifier | None, report: VerificationReport
) -> Verifier | None:
    if trusted is not None:
        if manifest.get("key_id") != trusted.key_id or manifest.get("algorithm") != trusted.algorithm:
            report.add(
                Problem(
                    MANIFEST_FILE,
                    f"the dataset is signed with {manifest.get('algorithm')} key {str(manifest.get('key_id'))[:16]}…, "
                    f"not the trusted {trusted.algorithm} key {trusted.key_id[:16]}…",
                )
            )
        return trusted
    relative = manifest.get("public_key")
    if not isinstance(relative, str) or not relative.startswith("keys/") or ".." in relative:
        report.add(
            Problem(
                MANIFEST_FILE,
                "the dataset ships no public key (HMAC-signed); pass the secret with --key to verify it",
            )
        )
        return None
    try:
        verifier = Ed25519Verifier.from_public_pem((directory / relative).read_bytes(), source=relative)
    except (OSError, KeyFileError) as exc:
        report.add(Problem(relative, f"cannot read the shipped public key: {exc}"))
        return None
    if verifier.key_id != manifest.get("key_id"):
        report.add(Problem(relative, "this public key's fingerprint is not the manifest's key_id"))
    return verifier


def _check_manifest_signature(manifest: dict[str, Any], verifier: Verifier, report: VerificationReport) -> None:
    unsigned = {name: value for name, value in manifest.items() if name != "signature"}
    try:
        signature = base64.b64decode(str(manifest.get("signature", "")), validate=True)
        message = MANIFEST_CONTEXT + canonical_json(unsigned)
    except (binascii.Error, ValueError):
        signature, message = b"", b""
    if not signature or not verifier.verify(message, signature):
        report.add(Problem(MANIFEST_FILE, "the manifest's signature does not verify: it was edited, or another key"))


def _check_card(directory: Path, card: Any, report: VerificationReport) -> None:
    if card is None:
        return
    if not isinstance(card, dict) or card.get("file") != CARD_FILE:
        report.add(Problem(MANIFEST_FILE, f"'card' must name {CARD_FILE} and its sha256"))
        return
    path = directory / CARD_FILE
    if not path.is_file():
        report.add(Problem(CARD_FILE, "the dataset card is missing"))
    elif hashlib.sha256(path.read_bytes()).hexdigest() != card.get("sha256"):
        report.add(Problem(CARD_FILE, "the dataset card was edited after the dataset was signed"))


def _check_records(
    path: Path, accepted: bool, expected: dict[str, Any], verifier: Verifier, report: VerificationReport, workers: int
) -> int:
    name = path.name
    if not path.is_file():
        report.add(Problem(name, "the file is missing"))
        return 0
    tree = MerkleAccumulator()
    seen: dict[str, int] = {}
    next_index = 0
    digest = hashlib.sha256()
    size = path.stat().st_size
    for result in check_file_lines(path, verifier, workers=workers, digest=digest):
        line_number = result.line
        if result.cut_short:
            report.add(Problem(name, "the last line is cut short (no newline): the file was truncated", line_number))
        if result.leaf is None or result.index is None:  # unreadable: it still took a place in the order
            for message in result.problems:
                report.add(Problem(name, message, line_number, result.record_id))
            next_index += 1
            continue
        record_id = result.record_id or ""
        tree.add(result.leaf)
        if record_id in seen:
            report.add(Problem(name, f"duplicate of the record on line {seen[record_id]}", line_number, record_id))
        else:
            seen[record_id] = line_number
        if result.index != next_index:
            moved = "deleted or reordered" if result.index > next_index else "inserted or moved"
            message = f"index {result.index} where {next_index} was expected: records were {moved}"
            report.add(Problem(name, message, line_number, record_id))
        next_index = result.index + 1
        if result.accepted is not accepted:
            report.add(Problem(name, f"accepted is {str(result.accepted).lower()} in {name}", line_number, record_id))
        for message in result.problems:
            report.add(Problem(name, message, line_number, record_id))
    count = tree.count
    if expected.get("records") != count:
        report.add(Problem(name, f"holds {count} readable records; the manifest says {expected.get('records')}"))
    if expected.get("merkle_root") != tree.root().hex():
        report.add(Problem(name, "the Merkle root of its records differs from the manifest's"))
    if expected.get("sha256") != digest.hexdigest() or expected.get("bytes") != size:
        report.add(Problem(name, f"its bytes differ from the manifest's record of the file ({size} bytes now)"))
    return count
