"""Verifying a dataset folder: every record, every line, the manifest, all in one streaming pass.

Two verdicts, always both: **integrity** (``ok``: every byte is as it was signed, nothing added,
lost or moved) and **trust** (``trusted``: the signer is a key the user vouched for, see
:mod:`arcticcodex.provenance.trust`).  A folder re-signed by a stranger who ships their own public
key is intact and untrusted; the public key a folder ships is only ever used to check integrity.

What each check catches (the tamper matrix, DATASET.md):

- a changed byte in any field       → the record's signature (frame digest + body digest) fails
- a record signed with another key  → its ``key_id`` / signature fails; a wrong trusted key fails the manifest
- a deleted, inserted, reordered record → ``index`` out of sequence, counts, and the Merkle root
- a duplicated record               → the same ``id`` seen on an earlier line
- a truncated last line              → no final newline / unreadable JSON, and the file digest
- an edited manifest                → the manifest's own signature

- a record whose id is not its content id → the id is recomputed from instruction, completion, evidence

Per-record signatures alone cannot see deletion or reordering; the Merkle root and ``index`` can,
so both are checked.  Memory stays flat: the ids seen go to an :class:`~.id_ledger.IdLedger`
(24 bytes a record, spilled to temporary files), and the Merkle tree keeps O(log n) hashes.

The folder may be hostile: every file is opened without following symlinks and must be a plain
file (a FIFO would hang a reader, a link to ``/dev/zero`` would never end), the manifest and keys
have size limits, and anything unreadable becomes a located problem, never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DatasetError, KeyFileError, TrustError, UnsafeFileError
from ..fileio import read_plain_file
from ..layout import CARD_FILE, FORMAT, MANIFEST_FILE, REJECTED_FILE, TRAIN_FILE, VALIDATION_FILE
from ..provenance.merkle import MerkleAccumulator
from ..provenance.signing import ALGORITHMS, MAX_PUBLIC_KEY_BYTES, Ed25519Verifier, Verifier
from ..provenance.trust import KeyRing, TwoVerdicts
from .checking import check_file_lines
from .id_ledger import IdLedger
from .record import canonical_json
from .writer import MANIFEST_CONTEXT

__all__ = ["Problem", "VerificationReport", "read_manifest", "require_verified", "verify_dataset"]

MAX_PROBLEMS = 1000
MAX_MANIFEST_BYTES = 16 << 20
MAX_CARD_BYTES = 16 << 20
SLACK_BYTES = 64 << 20  # a record file may be read this far past the size its manifest signs
_KEY_ID = re.compile(r"[0-9a-f]{64}")
CUT_SHORT = "the last line is cut short (no newline): the file was truncated"


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
class VerificationReport(TwoVerdicts):
    """Both verdicts on a dataset folder (see :class:`~arcticcodex.provenance.trust.TwoVerdicts`): integrity
    covers every record, line, signature and the manifest."""

    directory: Path
    records: int = 0
    rejected: int = 0
    validation: int = 0
    key_id: str = ""
    algorithm: str = ""
    trusted_as: str | None = None
    trust_note: str = ""
    records_checked: bool = False  # False when verification stopped before the records (no usable key)
    problems: list[Problem] = field(default_factory=list)
    problems_not_listed: int = 0

    def add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.problems_not_listed += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "ok": self.ok,
            "trusted": self.trusted,
            "verdict": self.verdict,
            "key_id": self.key_id,
            "algorithm": self.algorithm,
            "trusted_as": self.trusted_as,
            "trust_note": self.trust_note,
            "records_checked": self.records_checked,
            "records": self.records,
            "validation": self.validation,
            "rejected": self.rejected,
            "problems": [
                {"file": p.file, "line": p.line, "record_id": p.record_id, "message": p.message} for p in self.problems
            ],
            "problems_not_listed": self.problems_not_listed,
        }


def verify_dataset(
    directory: str | Path,
    *,
    keyring: KeyRing | None = None,
    trusted: Verifier | None = None,
    workers: int = 1,
) -> VerificationReport:
    """Check everything in ``directory``; problems are collected, not raised.

    ``keyring`` decides which signers are trusted (:class:`~arcticcodex.provenance.trust.KeyRing`:
    the user's trusted keys, or exactly the keys given); ``trusted`` is the short form for one key
    (an HMAC secret, or an Ed25519 public key from a source you trust).  With neither, nothing is
    trusted: the report can still say the folder is intact, using the public key it ships.
    ``workers`` > 1 checks large files in that many processes (``dataset verify`` uses every core).
    Raises :class:`DatasetError` only when ``directory`` is not a dataset at all.
    """
    if keyring is None:
        keyring = KeyRing.only([(trusted, "the key given")] if trusted is not None else [])
    directory = Path(directory)
    report = VerificationReport(directory)
    manifest = read_manifest(directory)
    verifier = _choose_verifier(directory, manifest, keyring, report)
    if verifier is None:
        return report
    _check_manifest_signature(manifest, verifier, report)
    files = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    record_files = [(TRAIN_FILE, True), (REJECTED_FILE, False)]
    if (isinstance(files, dict) and VALIDATION_FILE in files) or os.path.lexists(directory / VALIDATION_FILE):
        record_files.insert(1, (VALIDATION_FILE, True))
    counts: dict[str, int] = {}
    for name, accepted in record_files:
        expected = files.get(name) if isinstance(files, dict) else None
        if not isinstance(expected, dict):
            report.add(Problem(MANIFEST_FILE, f"the manifest has no entry for {name}"))
            expected = {}
        counts[name] = _check_records(directory / name, accepted, expected, verifier, report, workers)
    report.records_checked = True
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


def require_verified(
    directory: str | Path, *, keyring: KeyRing | None = None, allow_untrusted: bool = False, workers: int = 1
) -> VerificationReport:
    """Verify ``directory`` before using it: :class:`DatasetError` if it is not intact, :class:`TrustError`
    if its signer is not trusted (unless ``allow_untrusted``).  What exports and the Studio call first."""
    report = verify_dataset(directory, keyring=keyring, workers=workers)
    if not report.ok:
        count = len(report.problems) + report.problems_not_listed
        raise DatasetError(
            f"the dataset in {directory} is NOT intact ({count} problem(s), the first: {report.problems[0]}); "
            "nothing was used from it: see `arcticcodex dataset verify` for every problem"
        )
    if not report.trusted and not allow_untrusted:
        raise TrustError(
            f"the dataset in {directory} is intact, but its signer is NOT trusted ({report.trust_note}); "
            "if you know the key is theirs, trust it with `arcticcodex keys trust FILE` (or "
            "`arcticcodex keys trust --key NAME` for a key of this workspace), or pass allow_untrusted to use "
            "it anyway",
            parameters=["allow_untrusted"],
        )
    return report


def read_manifest(directory: Path) -> dict[str, Any]:
    """The folder's ``manifest.json`` as JSON, read safely (a plain file, within its size bound), not yet checked."""
    path = directory / MANIFEST_FILE
    if not os.path.lexists(path):
        raise DatasetError(
            f"{directory} has no {MANIFEST_FILE}: it is not a dataset, or its writing never finished "
            "(run the distillation again, or `arcticcodex distill --resume RUN`)"
        )
    try:
        data = read_plain_file(path, limit=MAX_MANIFEST_BYTES, what="the manifest")
    except (OSError, UnsafeFileError) as exc:
        # from None: the OSError/UnsafeFileError adds nothing the message does not already say
        raise DatasetError(f"{exc}; a dataset's manifest.json is a plain JSON file") from None
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError covers bad JSON and Python's 4,300-digit limit on numbers; RecursionError a deep array
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        # from None: the UnicodeDecodeError/ValueError/RecursionError adds nothing the message does not already say
        raise DatasetError(f"{path} is not valid JSON ({reason}); the manifest was damaged") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetError(f"{path} is not an ArcticCodex dataset manifest (expected format {FORMAT!r})")
    return manifest


def _choose_verifier(
    directory: Path, manifest: dict[str, Any], keyring: KeyRing, report: VerificationReport
) -> Verifier | None:
    """The key to check integrity with, and the trust verdict on the signer, recorded in ``report``."""
    key_id, algorithm = manifest.get("key_id"), manifest.get("algorithm")
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id) or algorithm not in ALGORITHMS:
        report.add(
            Problem(MANIFEST_FILE, "key_id must be 64 lowercase hex digits and algorithm ed25519 or hmac-sha256")
        )
        return None
    report.key_id, report.algorithm = key_id, str(algorithm)
    signer = keyring.signer(key_id, str(algorithm))
    report.trusted_as, report.trust_note = signer.trusted_as, signer.note
    if signer.verifier is not None:
        return signer.verifier
    relative = manifest.get("public_key")
    if algorithm != "ed25519" or relative is None:
        holder = f"the {algorithm} key {key_id[:16]}…"
        report.add(
            Problem(
                MANIFEST_FILE,
                f"the dataset is signed with {holder}, whose secret is not in this workspace's keys: "
                "check the records with it (`arcticcodex dataset verify DIR --key NAME`)",
            )
        )
        return None
    if relative != f"keys/{key_id}.pub":
        report.add(Problem(MANIFEST_FILE, f"public_key must be keys/{key_id[:16]}….pub (the key_id's file)"))
        return None
    try:
        pem = read_plain_file(directory / relative, limit=MAX_PUBLIC_KEY_BYTES, what="the shipped public key")
        verifier = Ed25519Verifier.from_public_pem(pem, source=relative)
    except FileNotFoundError:
        report.add(Problem(relative, "the shipped public key is missing"))
        return None
    except UnsafeFileError as exc:
        report.add(Problem(relative, f"the shipped public key {exc.reason}"))
        return None
    except (OSError, KeyFileError) as exc:
        report.add(Problem(relative, f"cannot use the shipped public key: {exc}"))
        return None
    if verifier.key_id != key_id:
        report.add(Problem(relative, "this public key's fingerprint is not the manifest's key_id"))
    return verifier


def _check_manifest_signature(manifest: dict[str, Any], verifier: Verifier, report: VerificationReport) -> None:
    unsigned = {name: value for name, value in manifest.items() if name != "signature"}
    try:
        signature = base64.b64decode(str(manifest.get("signature", "")), validate=True)
        message = MANIFEST_CONTEXT + canonical_json(unsigned)
    except (binascii.Error, ValueError, TypeError):  # TypeError: orjson refuses integers past 64 bits
        signature, message = b"", b""
    if not signature or not verifier.verify(message, signature):
        report.add(Problem(MANIFEST_FILE, "the manifest's signature does not verify: it was edited, or another key"))


def _check_card(directory: Path, card: Any, report: VerificationReport) -> None:
    if card is None:
        return
    if not isinstance(card, dict) or card.get("file") != CARD_FILE:
        report.add(Problem(MANIFEST_FILE, f"'card' must name {CARD_FILE} and its sha256"))
        return
    try:
        text = read_plain_file(directory / CARD_FILE, limit=MAX_CARD_BYTES, what="the dataset card")
    except FileNotFoundError:
        report.add(Problem(CARD_FILE, "the dataset card is missing"))
        return
    except UnsafeFileError as exc:
        report.add(Problem(CARD_FILE, f"the dataset card {exc.reason}"))
        return
    except OSError as exc:
        report.add(Problem(CARD_FILE, f"the dataset card cannot be read: {exc.strerror}"))
        return
    if hashlib.sha256(text).hexdigest() != card.get("sha256"):
        report.add(Problem(CARD_FILE, "the dataset card was edited after the dataset was signed"))


def _check_records(
    path: Path, accepted: bool, expected: dict[str, Any], verifier: Verifier, report: VerificationReport, workers: int
) -> int:
    name = path.name
    if not os.path.lexists(path):
        report.add(Problem(name, "the file is missing"))
        return 0
    if not path.is_file() or path.is_symlink():
        report.add(Problem(name, "is not a plain file (a symbolic link, FIFO, device or folder); it was not read"))
        return 0
    tree = MerkleAccumulator()
    next_index = 0
    digest = hashlib.sha256()
    size = path.stat().st_size
    stated = expected.get("bytes")
    stop_at = None
    if isinstance(stated, int) and not isinstance(stated, bool) and size > stated + SLACK_BYTES:
        stop_at = stated + SLACK_BYTES  # far more than was signed: read what was signed and a little more
        report.add(Problem(name, f"is {size:,} bytes, far more than the {stated:,} signed; the rest was not read"))
    first_problem = len(report.problems)
    with IdLedger() as ids:
        for result in check_file_lines(path, verifier, workers=workers, digest=digest, stop_at=stop_at):
            line_number = result.line
            if result.cut_short:
                report.add(Problem(name, CUT_SHORT, line_number))
            if result.leaf is None or result.index is None:  # unreadable: it still took a place in the order
                for message in result.problems:
                    report.add(Problem(name, message, line_number, result.record_id))
                next_index += 1
                continue
            record_id = result.record_id or ""
            tree.add(result.leaf)
            ids.add(record_id, line_number)
            if result.index != next_index:
                moved = "deleted or reordered" if result.index > next_index else "inserted or moved"
                message = f"index {result.index} where {next_index} was expected: records were {moved}"
                report.add(Problem(name, message, line_number, record_id))
            next_index = result.index + 1
            if result.accepted is not accepted:
                message = f"accepted is {str(result.accepted).lower()} in {name}"
                report.add(Problem(name, message, line_number, record_id))
            for message in result.problems:
                report.add(Problem(name, message, line_number, record_id))
        _add_duplicates(report, name, ids, first_problem)
    count = tree.count
    if expected.get("records") != count:
        report.add(Problem(name, f"holds {count} readable records; the manifest says {expected.get('records')}"))
    if expected.get("merkle_root") != tree.root().hex():
        report.add(Problem(name, "the Merkle root of its records differs from the manifest's"))
    if expected.get("sha256") != digest.hexdigest() or expected.get("bytes") != size:
        report.add(Problem(name, f"its bytes differ from the manifest's record of the file ({size} bytes now)"))
    return count


def _add_duplicates(report: VerificationReport, name: str, ids: IdLedger, first_problem: int) -> None:
    """Name each record whose id an earlier line of ``name`` has, in line order among the file's problems.

    Duplicates are found at the end of the file (:class:`IdLedger`: bounded memory), so they are merged
    into the problems listed since ``first_problem``; each goes where it went when it was found on the
    way: after its line's "cut short", before the line's other problems.  The listing keeps the
    :data:`MAX_PROBLEMS` earliest; the rest are counted, as ever.
    """
    room = MAX_PROBLEMS - first_problem
    listed, count = ids.duplicates(room)
    if not count:
        return
    on_the_way = [(p.line or 0, 0 if p.message == CUT_SHORT else 1, p) for p in report.problems[first_problem:]]
    found = [(line, 0, Problem(name, f"duplicate of the record on line {earlier}", line, record_id))
             for line, earlier, record_id in listed]  # fmt: skip
    # sorted() is stable: a line's "cut short" (found first) stays before its duplicate
    merged = [problem for _, _, problem in sorted([*on_the_way, *found], key=lambda item: item[:2])]
    report.problems[first_problem:] = merged[:room]
    report.problems_not_listed += len(merged) - len(merged[:room]) + count - len(listed)
