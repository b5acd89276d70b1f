"""Signers and verifiers over bytes: Ed25519 (the default) and HMAC-SHA256 (shared secrets).

Two algorithms, one shape.  Every signer and verifier has ``algorithm``, ``key_id`` and
``verify(message, signature) -> bool``; signers add ``sign(message) -> bytes``.  Code that only needs
to check signatures accepts a :class:`Verifier`, code that signs accepts a :class:`Signer`, and neither
cares which algorithm is behind it.

Why two: Ed25519 is what a third party can verify (the public key ships with a dataset and cannot
forge anything).  HMAC is symmetric — whoever can verify can also sign — so it suits local integrity
and shared secrets (``arcticcodex.compat.FrameVerifier(private_key=b"secret")``), never published
provenance.

Key ids name a key without revealing it:

* Ed25519: lowercase hex SHA-256 of the raw 32-byte public key (the fingerprint a dataset records);
* HMAC: hex HMAC-SHA256(secret, ``b"arcticcodex key id v1"``).  A plain hash of a short secret could
  be brute-forced from the id; a MAC keyed with the secret gives nothing away without it.

The Ed25519 arithmetic runs in libsodium (PyNaCl): the signatures are the same RFC 8032 bytes as
OpenSSL's, made in 26 µs instead of 38 and checked in 60 µs instead of 123 on this project's
machines, which decides how many records a second ``dataset verify`` gets through.  Keys are still
loaded and stored as PEM by ``cryptography``; libsodium also refuses non-canonical signatures and
small-order keys, which OpenSSL accepts.

There is no default key anywhere: a key in the source is a key everyone has, and a dataset signed
with it could be forged by anyone who read the source.  Constructing a signer without key
material raises :class:`~arcticcodex.errors.KeyFileError` pointing at ``arcticcodex keys new``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Protocol, runtime_checkable

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from ..errors import KeyFileError

ED25519 = "ed25519"
HMAC_SHA256 = "hmac-sha256"
#: Every algorithm a key can have, default first.
ALGORITHMS = (ED25519, HMAC_SHA256)

MAX_PUBLIC_KEY_BYTES = 64 << 10  # a PEM public key is ~113 bytes; a "key" file larger than this is not one
HMAC_KEY_ID_MESSAGE = b"arcticcodex key id v1"
HMAC_SECRET_BYTES = 32
_NO_KEY_HINT = "create a key with `arcticcodex keys new NAME` and load it with KeyStore.signer(NAME)"


@runtime_checkable
class Verifier(Protocol):
    """Anything that checks signatures made by one key."""

    @property
    def algorithm(self) -> str: ...

    @property
    def key_id(self) -> str: ...

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's signature of ``message``; False otherwise, never raising."""
        ...


@runtime_checkable
class Signer(Verifier, Protocol):
    """A verifier that also holds the secret half, so it can sign."""

    def sign(self, message: bytes) -> bytes: ...


def ed25519_key_id(public_key: bytes) -> str:
    """The key id of an Ed25519 key: hex SHA-256 of its raw 32-byte public key."""
    return hashlib.sha256(_require_bytes(public_key, "public_key")).hexdigest()


def hmac_key_id(secret: bytes) -> str:
    """The key id of an HMAC secret: hex HMAC-SHA256(secret, b"arcticcodex key id v1")."""
    return hmac.new(_require_bytes(secret, "secret"), HMAC_KEY_ID_MESSAGE, hashlib.sha256).hexdigest()


class Ed25519Verifier:
    """The public half of an Ed25519 key: verifies, cannot sign."""

    __slots__ = ("_fast", "_key", "_key_id")

    algorithm = ED25519

    def __init__(self, public_key: Ed25519PublicKey) -> None:
        if not isinstance(public_key, Ed25519PublicKey):
            raise TypeError(f"Ed25519Verifier needs an Ed25519PublicKey, not {type(public_key).__name__}")
        self._key = public_key
        self._key_id = ed25519_key_id(self.public_bytes())
        self._fast = VerifyKey(self.public_bytes())

    @classmethod
    def from_public_bytes(cls, raw: bytes) -> Ed25519Verifier:
        """From the raw 32-byte public key."""
        try:
            return cls(Ed25519PublicKey.from_public_bytes(_require_bytes(raw, "raw")))
        except ValueError:
            # from None: the ValueError adds nothing the message does not already say
            raise KeyFileError(
                f"an Ed25519 public key is 32 raw bytes, not {len(raw)}; export it with "
                "`arcticcodex keys export-public NAME`"
            ) from None

    @classmethod
    def from_public_pem(cls, pem: bytes, *, source: str = "the public key") -> Ed25519Verifier:
        """From a SubjectPublicKeyInfo PEM (``-----BEGIN PUBLIC KEY-----``); ``source`` names it in errors."""
        try:
            key = serialization.load_pem_public_key(_require_bytes(pem, "pem"))
        except (ValueError, UnsupportedAlgorithm):
            # from None: the ValueError/UnsupportedAlgorithm adds nothing the message does not already say
            raise KeyFileError(
                f"{source} is not a PEM public key; export it again with `arcticcodex keys export-public NAME`"
            ) from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{source} is a {type(key).__name__}, not an Ed25519 public key")
        return cls(key)

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_bytes(self) -> bytes:
        return self._key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def public_pem(self) -> bytes:
        return self._key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def verify(self, message: bytes, signature: bytes) -> bool:
        message = _require_bytes(message, "message")
        signature = _require_bytes(signature, "signature")
        if len(signature) != 64:
            return False
        try:
            self._fast.verify(message, signature)
        except BadSignatureError:
            return False
        return True

    def __repr__(self) -> str:
        return f"Ed25519Verifier(key_id={self._key_id!r})"


class Ed25519Signer:
    """An Ed25519 private key.  Signatures are deterministic (same key + message → same bytes)."""

    __slots__ = ("_fast", "_key", "_verifier")

    algorithm = ED25519

    def __init__(self, private_key: Ed25519PrivateKey | None = None) -> None:
        if private_key is None:
            raise KeyFileError(f"an Ed25519 signer needs a private key and there is no default; {_NO_KEY_HINT}")
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError(f"Ed25519Signer needs an Ed25519PrivateKey, not {type(private_key).__name__}")
        self._key = private_key
        self._verifier = Ed25519Verifier(private_key.public_key())
        seed = private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        self._fast = SigningKey(seed)

    @classmethod
    def generate(cls) -> Ed25519Signer:
        """A fresh random key (from the operating system's CSPRNG)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> Ed25519Signer:
        """From the raw 32-byte private key (seed)."""
        raw = _require_bytes(raw, "raw")
        try:
            return cls(Ed25519PrivateKey.from_private_bytes(raw))
        except ValueError:
            # from None: the ValueError adds nothing the message does not already say
            raise KeyFileError(f"an Ed25519 private key is 32 raw bytes, not {len(raw)}; {_NO_KEY_HINT}") from None

    @classmethod
    def from_private_pem(cls, pem: bytes, *, source: str = "the private key") -> Ed25519Signer:
        """From an unencrypted PKCS8 PEM; ``source`` names it in errors (the bytes never appear in one)."""
        try:
            key = serialization.load_pem_private_key(_require_bytes(pem, "pem"), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            # from None: the ValueError/TypeError/UnsupportedAlgorithm adds nothing the message does not already say
            raise KeyFileError(
                f"{source} is not an unencrypted PEM (PKCS8) private key; restore it from a backup or "
                "create a new key with `arcticcodex keys new NAME`"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{source} holds a {type(key).__name__}, not an Ed25519 private key")
        return cls(key)

    @property
    def key_id(self) -> str:
        return self._verifier.key_id

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS8 PEM: secret, for writing a 0600 key file only."""
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_pem(self) -> bytes:
        return self._verifier.public_pem()

    def public_bytes(self) -> bytes:
        return self._verifier.public_bytes()

    def verifier(self) -> Ed25519Verifier:
        """The public half, safe to hand to anyone."""
        return self._verifier

    def sign(self, message: bytes) -> bytes:
        signature: bytes = self._fast.sign(_require_bytes(message, "message")).signature
        return signature

    def verify(self, message: bytes, signature: bytes) -> bool:
        return self._verifier.verify(message, signature)

    def __repr__(self) -> str:
        return f"Ed25519Signer(key_id={self.key_id!r})"


class HmacSigner:
    """HMAC-SHA256 over a shared secret; the same object signs and verifies.

    Secrets shorter than 16 bytes are accepted without a warning only because the first API's example
    signs with ``b"secret"`` (``arcticcodex.compat.FrameVerifier(private_key=b"secret")``) and must keep
    working.  Real keys come from :meth:`generate` (32 random bytes) or ``arcticcodex keys new NAME
    --algorithm hmac-sha256``.
    """

    __slots__ = ("_key_id", "_secret")

    algorithm = HMAC_SHA256

    def __init__(self, secret: bytes | None = None) -> None:
        if secret is not None:
            secret = _require_bytes(secret, "secret")
        if not secret:
            raise KeyFileError(f"an HMAC signer needs a non-empty secret and there is no default; {_NO_KEY_HINT}")
        self._secret = secret
        self._key_id = hmac_key_id(self._secret)

    @classmethod
    def generate(cls) -> HmacSigner:
        """A fresh secret of 32 random bytes from :mod:`secrets`."""
        return cls(secrets.token_bytes(HMAC_SECRET_BYTES))

    @property
    def key_id(self) -> str:
        return self._key_id

    def secret_bytes(self) -> bytes:
        """The shared secret itself: for writing a 0600 key file only, never for a log or a message."""
        return self._secret

    def verifier(self) -> HmacSigner:
        """Itself: with HMAC, verifying needs the secret too."""
        return self

    def sign(self, message: bytes) -> bytes:
        return hmac.digest(self._secret, _require_bytes(message, "message"), "sha256")

    def verify(self, message: bytes, signature: bytes) -> bool:
        expected = self.sign(message)
        return hmac.compare_digest(expected, _require_bytes(signature, "signature"))

    def __repr__(self) -> str:
        return f"HmacSigner(key_id={self._key_id!r})"


def _require_bytes(value: object, name: str) -> bytes:
    """``value`` as bytes; TypeError for anything else (a str must be encoded by the caller, explicitly)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    hint = "; encode text first, e.g. text.encode('utf-8')" if isinstance(value, str) else ""
    raise TypeError(f"{name} must be bytes, not {type(value).__name__}{hint}")
