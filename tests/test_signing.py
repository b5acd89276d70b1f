"""Signers and verifiers over bytes: Ed25519 and HMAC-SHA256, key ids, and the no-default-key rule."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from arcticcodex.errors import KeyFileError
from arcticcodex.provenance import (
    Ed25519Signer,
    Ed25519Verifier,
    HmacSigner,
    Signer,
    Verifier,
    ed25519_key_id,
    hmac_key_id,
)

MESSAGE = b"the quick brown fox"

# From the original ArcticCodex (shared/reference/original-arcticcodex.md §2.4): key test_secret_key_v1
# over this frame gives this HMAC-SHA256.
KNOWN_KEY = b"test_secret_key_v1"
KNOWN_FRAME = "⧆≛TYPE⦙≛FACT∷≛SUBJ⦙≛a⧈"
KNOWN_MAC = "b6da24b072e2d76d2824094d53c4b987719c2cdb249e8f1f7a123c751ab69c0f"


def test_ed25519_sign_verify_and_tamper() -> None:
    signer = Ed25519Signer.generate()
    signature = signer.sign(MESSAGE)
    assert len(signature) == 64
    assert signer.verify(MESSAGE, signature)
    assert signer.verifier().verify(MESSAGE, signature)
    assert not signer.verify(MESSAGE + b"!", signature)
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    assert not signer.verify(MESSAGE, tampered)
    assert not signer.verify(MESSAGE, b"short")
    assert not Ed25519Signer.generate().verify(MESSAGE, signature)


def test_ed25519_signatures_are_deterministic() -> None:
    signer = Ed25519Signer.generate()
    assert signer.sign(MESSAGE) == signer.sign(MESSAGE)
    again = Ed25519Signer.from_private_pem(signer.private_pem())
    assert again.sign(MESSAGE) == signer.sign(MESSAGE)


def test_ed25519_key_id_is_sha256_of_the_raw_public_key() -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    expected = hashlib.sha256(raw).hexdigest()
    signer = Ed25519Signer(key)
    assert signer.key_id == expected
    assert signer.verifier().key_id == expected
    assert ed25519_key_id(raw) == expected
    assert signer.key_id == signer.key_id.lower() and len(signer.key_id) == 64


def test_ed25519_from_raw_bytes_and_pems() -> None:
    key = Ed25519PrivateKey.generate()
    raw_private = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    signer = Ed25519Signer.from_private_bytes(raw_private)
    assert signer.key_id == Ed25519Signer(key).key_id
    verifier = Ed25519Verifier.from_public_pem(signer.public_pem())
    assert verifier.key_id == signer.key_id
    assert Ed25519Verifier.from_public_bytes(signer.public_bytes()).key_id == signer.key_id
    assert verifier.verify(MESSAGE, signer.sign(MESSAGE))
    assert b"PRIVATE KEY" in signer.private_pem()
    assert signer.public_pem().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_ed25519_bad_key_material_is_a_key_file_error() -> None:
    with pytest.raises(KeyFileError, match="32 raw bytes"):
        Ed25519Signer.from_private_bytes(b"too short")
    with pytest.raises(KeyFileError, match="32 raw bytes"):
        Ed25519Verifier.from_public_bytes(b"too short")
    with pytest.raises(KeyFileError, match="not an unencrypted PEM"):
        Ed25519Signer.from_private_pem(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        Ed25519Verifier.from_public_pem(b"garbage")


def test_hmac_known_answer_from_the_original() -> None:
    signer = HmacSigner(KNOWN_KEY)
    mac = signer.sign(KNOWN_FRAME.encode("utf-8"))
    assert mac.hex() == KNOWN_MAC
    assert signer.verify(KNOWN_FRAME.encode("utf-8"), bytes.fromhex(KNOWN_MAC))
    assert not signer.verify(KNOWN_FRAME.encode("utf-8") + b" ", bytes.fromhex(KNOWN_MAC))
    assert not HmacSigner(b"other key").verify(KNOWN_FRAME.encode("utf-8"), bytes.fromhex(KNOWN_MAC))


def test_hmac_key_id_hides_the_secret() -> None:
    secret = b"secret"
    signer = HmacSigner(secret)
    expected = hmac.new(secret, b"arcticcodex key id v1", hashlib.sha256).hexdigest()
    assert signer.key_id == expected == hmac_key_id(secret)
    assert signer.key_id != hashlib.sha256(secret).hexdigest()
    assert secret.hex() not in repr(signer) and "secret" not in repr(signer)


def test_hmac_generate_makes_32_random_bytes_and_verifies_itself() -> None:
    first, second = HmacSigner.generate(), HmacSigner.generate()
    assert len(first.secret_bytes()) == 32
    assert first.key_id != second.key_id
    assert first.verifier() is first
    assert first.verify(MESSAGE, first.sign(MESSAGE))
    assert not second.verify(MESSAGE, first.sign(MESSAGE))


def test_short_hmac_secrets_are_allowed_for_the_seed_api() -> None:
    assert HmacSigner(b"x").verify(MESSAGE, HmacSigner(b"x").sign(MESSAGE))


@pytest.mark.parametrize("make", [lambda: Ed25519Signer(), lambda: HmacSigner(), lambda: HmacSigner(b"")])
def test_there_is_no_default_key(make: Callable[[], object]) -> None:
    with pytest.raises(KeyFileError, match="arcticcodex keys new"):
        make()


@pytest.mark.parametrize("signer", [Ed25519Signer.generate(), HmacSigner.generate()], ids=["ed25519", "hmac"])
def test_non_bytes_are_type_errors(signer: Ed25519Signer | HmacSigner) -> None:
    with pytest.raises(TypeError, match="encode text first"):
        signer.sign("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        signer.verify("text", b"sig")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        signer.verify(MESSAGE, None)  # type: ignore[arg-type]
    assert signer.verify(bytearray(MESSAGE), signer.sign(MESSAGE))  # type: ignore[arg-type]  # bytes-like is accepted


def test_protocols_and_algorithms() -> None:
    ed, mac = Ed25519Signer.generate(), HmacSigner.generate()
    assert (ed.algorithm, ed.verifier().algorithm, mac.algorithm) == ("ed25519", "ed25519", "hmac-sha256")
    assert isinstance(ed, Signer) and isinstance(mac, Signer)
    assert isinstance(ed.verifier(), Verifier) and not isinstance(ed.verifier(), Signer)


def test_reprs_hold_no_key_material() -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    signer = Ed25519Signer(key)
    assert raw.hex() not in repr(signer)
    assert repr(signer) == f"Ed25519Signer(key_id={signer.key_id!r})"


def test_ed25519_matches_rfc_8032_and_openssl() -> None:
    """libsodium signs; the bytes are RFC 8032's (test 1) and OpenSSL's, and OpenSSL verifies them both ways."""
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    signer = Ed25519Signer.from_private_bytes(seed)
    assert signer.public_bytes().hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    expected = (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"  # RFC 8032 §7.1, test 1
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert signer.sign(b"").hex() == expected
    openssl = Ed25519PrivateKey.from_private_bytes(seed)
    message = b"ArcticCodex-TRAIN_PAIR-v1\n" + bytes(64)
    assert signer.sign(message) == openssl.sign(message)
    assert signer.verifier().verify(message, openssl.sign(message))
    assert not signer.verifier().verify(message, openssl.sign(message)[:63])
    openssl.public_key().verify(signer.sign(message), message)  # raises if they disagreed
