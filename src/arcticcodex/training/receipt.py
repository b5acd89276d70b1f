"""The training receipt: which data, which base, which settings made a model — signed, and checked.

A model is only as trustworthy as what it learned from.  The receipt binds the artifacts (the
adapter or weights, by SHA-256 of every file) to the dataset (its Merkle root and the digest of its
signed manifest), the base model (the digest of every file it was loaded from), the full settings,
the library versions and the metrics — and signs all of it with a workspace key, domain-tagged so a
receipt signature can never pass for a dataset's.

Checking it gives two verdicts, as for datasets: *integrity* (the receipt is unaltered, every file it
names is there with its digest and no weight file is unaccounted for; with ``dataset`` or ``base``
given, they are the ones it names) and *trust* (the signer is a key the user trusts).  An Ed25519
receipt carries its public key, so anyone can check its integrity; carrying a key never makes it
trusted — anyone can re-sign a receipt and ship their own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..dataset.record import canonical_json
from ..errors import ArcticCodexError, DatasetError
from ..fileio import atomic_write
from ..layout import MANIFEST_FILE
from ..provenance.signing import Ed25519Signer, Ed25519Verifier, Signer
from ..provenance.trust import KeyRing, TwoVerdicts

__all__ = ["RECEIPT_CONTEXT", "RECEIPT_FILE", "ReceiptReport", "dataset_identity", "file_digests", "sign_receipt"]

RECEIPT_FILE = "receipt.json"
RECEIPT_CONTEXT = b"arcticcodex.training-receipt.v1\x00"
MAX_RECEIPT_BYTES = 16 << 20
_CHUNK = 1 << 20
# files that hold what a model computes with: one the receipt does not name is an unaccounted-for swap
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt")


def file_digests(folder: Path, *, skip: Iterable[str] = ()) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` by its relative path (sorted; hidden and ``skip`` left out)."""
    skipped = set(skip)
    digests: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink() or not path.is_file() or relative.split("/")[0] in skipped:
            continue
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        digests[relative] = _sha256(path)
    return digests


def dataset_identity(dataset: Path) -> dict[str, Any]:
    """What names a dataset for good: its Merkle root, the digest of its signed manifest, its signer."""
    manifest_path = dataset / MANIFEST_FILE
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise DatasetError(f"{manifest_path}: not JSON ({exc}); verify the dataset first") from exc
    return {
        "path": str(dataset),
        "merkle_root": manifest.get("merkle_root"),
        "manifest_sha256": hashlib.sha256(raw).hexdigest(),
        "key_id": manifest.get("key_id"),
        "records": manifest.get("records"),
    }


def sign_receipt(folder: Path, body: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """Sign ``body`` and write it as ``folder/receipt.json`` (atomically); return what was written."""
    signature = signer.sign(RECEIPT_CONTEXT + canonical_json(body))
    block = {"key_id": signer.key_id, "algorithm": signer.algorithm, "value": base64.b64encode(signature).decode()}
    if isinstance(signer, Ed25519Signer):  # anyone can check integrity; trusting the key is a separate verdict
        block["public_key_pem"] = signer.public_pem().decode("ascii")
    receipt = {"receipt": body, "signature": block}
    with atomic_write(folder / RECEIPT_FILE) as handle:
        handle.write(json.dumps(receipt, indent=2, ensure_ascii=False).encode("utf-8") + b"\n")
    return receipt


@dataclass(slots=True)
class ReceiptReport(TwoVerdicts):
    """Both verdicts on a receipt, with every problem in words."""

    directory: Path
    receipt: dict[str, Any] = field(default_factory=dict)
    key_id: str = ""
    trusted_as: str | None = None
    trust_note: str = ""
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "ok": self.ok,
            "trusted": self.trusted,
            "verdict": self.verdict,
            "key_id": self.key_id,
            "trusted_as": self.trusted_as,
            "trust_note": self.trust_note,
            "problems": self.problems,
            "dataset": self.receipt.get("dataset"),
            "base_model": {"name": self.receipt.get("base_model", {}).get("name")},
            "method": self.receipt.get("config", {}).get("method"),
            "metrics": self.receipt.get("metrics"),
        }

    @classmethod
    def check(
        cls, folder: str | Path, *, keyring: KeyRing, dataset: Path | None = None, base: Path | None = None
    ) -> ReceiptReport:
        """Verify the receipt in ``folder`` (see the module docstring for what each verdict covers)."""
        report = cls(Path(folder))
        body, signature = _read(report)
        if body is None:
            return report
        report.receipt = body
        report.key_id = str(signature.get("key_id", ""))
        signer = keyring.signer(report.key_id, str(signature.get("algorithm", "")))
        report.trusted_as, report.trust_note = signer.trusted_as, signer.note
        verifier = signer.verifier or _shipped_key(signature, report.key_id)
        if verifier is None:
            report.problems.append(
                f"{RECEIPT_FILE}: signed with key {report.key_id[:16]}…, which is not held here, so the signature "
                "cannot be checked; trust the signer's public key (`arcticcodex keys trust FILE`)"
            )
        elif not _signature_holds(body, signature, verifier):
            report.problems.append(f"{RECEIPT_FILE}: the signature does not verify: the receipt was edited")
        _check_artifacts(report, body)
        if dataset is not None:
            _check_dataset(report, body, dataset)
        if base is not None:
            _check_base(report, body, base)
        return report


def _read(report: ReceiptReport) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    path = report.directory / RECEIPT_FILE
    if not path.is_file() or path.is_symlink():
        report.problems.append(f"{path}: no receipt here; `arcticcodex train` writes one beside every model")
        return None, {}
    if path.stat().st_size > MAX_RECEIPT_BYTES:
        report.problems.append(f"{path}: larger than {MAX_RECEIPT_BYTES >> 20} MiB; not a receipt")
        return None, {}
    try:
        data = json.loads(path.read_bytes())
    except ValueError as exc:
        report.problems.append(f"{path}: not JSON ({exc})")
        return None, {}
    body, signature = (data.get("receipt"), data.get("signature")) if isinstance(data, dict) else (None, None)
    if not isinstance(body, dict) or not isinstance(signature, dict):
        report.problems.append(f"{path}: has no receipt and signature objects")
        return None, {}
    return body, signature


def _shipped_key(signature: dict[str, Any], key_id: str) -> Ed25519Verifier | None:
    """The public key the receipt carries, when it is the key its signature names (never trusted for that)."""
    pem = signature.get("public_key_pem")
    if not isinstance(pem, str):
        return None
    try:
        verifier = Ed25519Verifier.from_public_pem(pem.encode("ascii"), source=RECEIPT_FILE)
    except (ArcticCodexError, UnicodeError):
        return None
    return verifier if verifier.key_id == key_id else None


def _signature_holds(body: dict[str, Any], signature: dict[str, Any], verifier: Any) -> bool:
    try:
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
        message = RECEIPT_CONTEXT + canonical_json(body)
    except (binascii.Error, ValueError, TypeError):
        return False
    return bool(value) and bool(verifier.verify(message, value))


def _check_artifacts(report: ReceiptReport, body: dict[str, Any]) -> None:
    listed = body.get("artifacts")
    if not isinstance(listed, dict) or not listed:
        report.problems.append(f"{RECEIPT_FILE}: names no artifacts")
        return
    for name, digest in sorted(listed.items()):
        path = report.directory / name
        if not path.is_file() or path.is_symlink():
            report.problems.append(f"{name}: named by the receipt, but missing")
        elif _sha256(path) != digest:
            report.problems.append(f"{name}: changed since training (its SHA-256 is not the receipt's)")
    actual = file_digests(report.directory, skip=_NOT_ARTIFACTS)
    for name in sorted(set(actual) - set(listed)):
        if name.endswith(WEIGHT_SUFFIXES):
            report.problems.append(f"{name}: a weight file the receipt does not name (swapped in after training?)")


def _check_dataset(report: ReceiptReport, body: dict[str, Any], dataset: Path) -> None:
    named = body.get("dataset", {})
    try:
        actual = dataset_identity(dataset)
    except (OSError, DatasetError) as exc:
        report.problems.append(f"{dataset}: cannot be read as a dataset ({exc})")
        return
    for field_name in ("merkle_root", "manifest_sha256"):
        if named.get(field_name) != actual[field_name]:
            report.problems.append(
                f"{dataset}: is not the dataset this model was trained on (its {field_name} is "
                f"{str(actual[field_name])[:16]}…, the receipt's {str(named.get(field_name))[:16]}…)"
            )
            return


def _check_base(report: ReceiptReport, body: dict[str, Any], base: Path) -> None:
    named = body.get("base_model", {}).get("files", {})
    actual = file_digests(base)
    if named != actual:
        changed = sorted(name for name in set(named) | set(actual) if named.get(name) != actual.get(name))
        report.problems.append(f"{base}: is not the base model of the receipt (differs in {', '.join(changed[:5])})")


_NOT_ARTIFACTS = ("checkpoints", "data", RECEIPT_FILE, "logs")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
