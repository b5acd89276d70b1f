"""Signing records in worker processes: the parallel half of :meth:`DatasetWriter.add_many`.

A record costs ~170 µs to sign on one core (its 30 KB TRAIN_PAIR frame, two SHA-256, Ed25519), so
one process tops out below 5,000 records a second.  Workers turn batches of pairs into finished
JSONL lines and Merkle leaves; the writer keeps everything that depends on order — ids, indexes, the
split, the file digests, the Merkle trees — and appends the lines in the order the pairs came.

The signing key reaches each worker once, through the pool's initializer over a pipe to a process of
our own; it is never written anywhere.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..provenance.signing import Ed25519Signer, HmacSigner, Signer
from .record import json_line, sign_body

__all__ = ["SignerSpec", "sign_batch", "signed_line", "signer_spec", "start_worker"]

SignerSpec = tuple[str, bytes]
_signer: Signer | None = None


def signer_spec(signer: Signer) -> SignerSpec | None:
    """What a worker needs to rebuild ``signer``; None for a signer that cannot be rebuilt (stay serial)."""
    if isinstance(signer, Ed25519Signer):
        return "ed25519", signer.private_pem()
    if isinstance(signer, HmacSigner):
        return "hmac", signer.secret_bytes()
    return None


def start_worker(spec: SignerSpec) -> None:
    global _signer
    kind, material = spec
    _signer = Ed25519Signer.from_private_pem(material) if kind == "ed25519" else HmacSigner(material)


def sign_batch(bodies: list[bytes]) -> list[tuple[bytes, bytes]]:
    """Each record body's JSONL line and Merkle leaf, in order (bodies as :meth:`TrainingPair.body` JSON)."""
    if _signer is None:
        raise RuntimeError("sign_batch runs in a worker started with start_worker")
    return [signed_line(orjson.loads(body), _signer) for body in bodies]


def signed_line(body: dict[str, Any], signer: Signer) -> tuple[bytes, bytes]:
    record, signature = sign_body(body, signer)
    return json_line(record), bytes.fromhex(signature.frame_sha256) + bytes.fromhex(signature.body_sha256)
