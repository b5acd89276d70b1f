"""Signatures over dataset records: Ed25519 (or HMAC) over a domain tag and the frame's SHA-256.

A record's signing form is its canonical TRAIN_PAIR frame (FORGENUMERICS.md), which binds id,
index, quality, signer, key id, teachers, evidence hashes, time and both texts.  The frame is about
12× the text in UTF-8 (every BLOB-T symbol is three bytes), so the signature covers
``b"ArcticCodex-TRAIN_PAIR-v1\\n" + SHA-256(frame)`` rather than the frame itself: the record keeps
``frame_sha256`` beside ``sig``, signing cost stays flat (5,500 records/s on one core, see
benchmarks/README.md), and the domain tag keeps these signatures from being valid for anything else
the same key signs (a SIGNED envelope, a manifest).

A dataset record also carries fields the frame does not bind (the last critique, the revision
history, the source).  Their digest, ``body_sha256``, is appended to the signed message when given,
so a changed byte anywhere in a record breaks its signature, not only in the frame's fields.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from .signing import Signer, Verifier

RECORD_CONTEXT = b"ArcticCodex-TRAIN_PAIR-v1\n"


@dataclass(frozen=True, slots=True)
class RecordSignature:
    algorithm: str
    key_id: str
    frame_sha256: str
    sig: str  # base64
    body_sha256: str = ""
    """SHA-256 of the record's fields outside the frame; empty when the signature covers the frame alone."""

    def to_json(self) -> dict[str, str]:
        fields = {"alg": self.algorithm, "key_id": self.key_id, "frame_sha256": self.frame_sha256}
        if self.body_sha256:
            fields["body_sha256"] = self.body_sha256
        fields["sig"] = self.sig
        return fields

    @classmethod
    def from_json(cls, fields: dict[str, str]) -> RecordSignature:
        """The inverse of :meth:`to_json`; the caller has checked the fields are strings."""
        body_sha256 = fields.get("body_sha256", "")
        return cls(fields["alg"], fields["key_id"], fields["frame_sha256"], fields["sig"], body_sha256)


def sign_record(signer: Signer, frame_bytes: bytes, body: bytes | None = None) -> RecordSignature:
    """Sign a record's frame and, when given, the canonical bytes of its other fields."""
    digest = hashlib.sha256(frame_bytes).digest()
    body_digest = hashlib.sha256(body).digest() if body is not None else b""
    signature = signer.sign(RECORD_CONTEXT + digest + body_digest)
    return RecordSignature(
        signer.algorithm,
        signer.key_id,
        digest.hex(),
        base64.b64encode(signature).decode("ascii"),
        body_digest.hex(),
    )


def verify_record(
    verifier: Verifier, frame_bytes: bytes, signature: RecordSignature, body: bytes | None = None
) -> str | None:
    """None when the signature holds for these frame (and body) bytes; otherwise what is wrong, in words."""
    if signature.algorithm != verifier.algorithm:
        return f"signed with {signature.algorithm}, verified with {verifier.algorithm}"
    if signature.key_id != verifier.key_id:
        return f"signed with key {signature.key_id[:16]}…, not {verifier.key_id[:16]}…"
    digest = hashlib.sha256(frame_bytes).digest()
    if digest.hex() != signature.frame_sha256:
        return "the record's content does not match its frame_sha256 (edited after signing)"
    body_digest = hashlib.sha256(body).digest() if body is not None else b""
    if body_digest.hex() != signature.body_sha256:
        return "the record's other fields do not match its body_sha256 (edited after signing)"
    try:
        raw = base64.b64decode(signature.sig, validate=True)
    except (binascii.Error, ValueError):
        return "the signature is not valid base64"
    if not verifier.verify(RECORD_CONTEXT + digest + body_digest, raw):
        return "the signature does not verify (frame_sha256 or sig altered, or another key)"
    return None
