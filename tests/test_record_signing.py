"""Record signatures: over the frame's digest with a domain tag; every alteration is named."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from decimal import Decimal

from arcticcodex.forge.record_frames import TrainPairFrame
from arcticcodex.provenance import Ed25519Signer, HmacSigner
from arcticcodex.provenance.record_signing import RECORD_CONTEXT, sign_record, verify_record


def frame_bytes(signer: Ed25519Signer, completion: str = "Mostly fish.") -> bytes:
    return (
        TrainPairFrame(
            "pair-1",
            0,
            Decimal("0.9"),
            "teacher-01",
            signer.key_id,
            "2026-11-25T12:00:00Z",
            "What do otters eat?",
            completion,
        )
        .to_frame()
        .to_bytes()
    )


def test_sign_and_verify_and_name_each_failure() -> None:
    signer = Ed25519Signer.generate()
    data = frame_bytes(signer)
    signature = sign_record(signer, data)
    assert verify_record(signer.verifier(), data, signature) is None
    assert "edited" in (verify_record(signer.verifier(), frame_bytes(signer, "Fish."), signature) or "")
    other = Ed25519Signer.generate()
    assert "key" in (verify_record(other.verifier(), data, signature) or "")
    forged = replace(
        signature, sig=base64.b64encode(other.sign(RECORD_CONTEXT + bytes.fromhex(signature.frame_sha256))).decode()
    )
    assert "does not verify" in (verify_record(signer.verifier(), data, forged) or "")
    assert "base64" in (verify_record(signer.verifier(), data, replace(signature, sig="***")) or "")
    hmac = HmacSigner(b"secret")
    assert "hmac-sha256" in (verify_record(hmac, data, signature) or "")


def test_signature_is_domain_separated_from_plain_digest_signing() -> None:
    signer = Ed25519Signer.generate()
    data = frame_bytes(signer)
    signature = sign_record(signer, data)
    raw = base64.b64decode(signature.sig)
    assert not signer.verifier().verify(bytes.fromhex(signature.frame_sha256), raw)


def test_body_digest_binds_the_fields_outside_the_frame() -> None:
    signer = Ed25519Signer.generate()
    data = frame_bytes(signer)
    signature = sign_record(signer, data, body=b'{"feedback":"good"}')
    assert signature.to_json()["body_sha256"] == signature.body_sha256 != ""
    assert verify_record(signer.verifier(), data, signature, body=b'{"feedback":"good"}') is None
    assert "body_sha256" in (verify_record(signer.verifier(), data, signature, body=b'{"feedback":"bad"}') or "")
    assert "body_sha256" in (verify_record(signer.verifier(), data, signature) or "")
    # The digest is inside the signed message: swapping in the digest of another body is caught.
    other_body = b'{"feedback":"bad"}'
    swapped = replace(signature, body_sha256=hashlib.sha256(other_body).hexdigest())
    assert "does not verify" in (verify_record(signer.verifier(), data, swapped, body=other_body) or "")
