"""Which signing keys the user trusts: the answer to "who made this?", kept out of any dataset's reach.

Integrity and trust are separate verdicts.  A dataset re-signed by a stranger, with the stranger's
public key shipped beside it, is perfectly intact — and says nothing about who made it.  Trust comes
only from the user:

* keys created here (``arcticcodex keys new`` records them when it makes them);
* public keys the user vouched for with ``arcticcodex keys trust FILE``;
* for one verification, the keys given with ``--key`` / ``--public-key`` (and then only those).

A key shipped inside a dataset folder, or sitting in a cloned workspace's ``keys/``, is never trusted
by being there: the list lives in the user's config folder (:func:`~arcticcodex.config.user_config_dir`),
which no workspace or dataset can name, as ``trusted-keys.json`` (mode 0600, folder 0700)::

    {"version": 1, "keys": [{"name": "alice", "key_id": "3fa2…", "algorithm": "ed25519",
                             "public_key": "<base64 of the raw 32 bytes>", "added_at": "…", "origin": "…"}]}

Ed25519 entries carry the public key itself, so a trusted signature is checked against the key the
user vouched for, never against the one a folder ships.  HMAC entries hold the key id only (a secret
never leaves its 0600 key file); verifying needs the secret from the workspace's ``keys/``.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import user_config_dir
from ..errors import KeyFileError
from ..terminal import escape_controls
from ..trustfile import TrustFile
from .keystore import KeyStore
from .signing import ALGORITHMS, ED25519, HMAC_SHA256, Ed25519Signer, Ed25519Verifier, Verifier

__all__ = [
    "KeyRing",
    "SignerTrust",
    "TrustedKey",
    "TrustedKeys",
    "TwoVerdicts",
]

TRUSTED_KEYS_FILE = "trusted-keys.json"
_KEY_ID = re.compile(r"[0-9a-f]{64}")
_KEY_ID_PREFIX = re.compile(r"[0-9a-f]{8,64}")
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
MAX_ORIGIN = 2000
_ORIGIN = re.compile(rf"[^\x00-\x1f\x7f]{{1,{MAX_ORIGIN}}}")


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """One key the user vouched for, and how (``origin``: the command and place that recorded it)."""

    name: str
    key_id: str
    algorithm: str
    added_at: str
    origin: str
    public_key: bytes | None = None  # raw Ed25519 public key; None for HMAC

    def verifier(self) -> Ed25519Verifier | None:
        """The key that checks this signer's Ed25519 signatures; None for HMAC (the secret is elsewhere)."""
        return Ed25519Verifier.from_public_bytes(self.public_key) if self.public_key is not None else None

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "key_id": self.key_id,
            "algorithm": self.algorithm,
            "added_at": self.added_at,
            "origin": self.origin,
        }
        if self.public_key is not None:
            entry["public_key"] = base64.b64encode(self.public_key).decode("ascii")
        return entry


class TrustedKeys:
    """The user's list of trusted signing keys: ``TrustedKeys.for_user()``, or ``TrustedKeys(folder)``."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / TRUSTED_KEYS_FILE
        self._file = TrustFile(
            self.path, "keys", what="the trusted-keys list", fix="then trust your keys again with `keys trust`"
        )

    @classmethod
    def for_user(cls, environ: Mapping[str, str] | None = None) -> TrustedKeys:
        return cls(user_config_dir(environ))

    def __repr__(self) -> str:
        return f"TrustedKeys({str(self.folder)!r})"

    def list(self) -> builtins.list[TrustedKey]:
        """Every trusted key, in the order they were added."""
        return [self._entry(number, raw) for number, raw in enumerate(self._file.read(), 1)]

    def find(self, key_id: str) -> TrustedKey | None:
        return next((key for key in self.list() if key.key_id == key_id), None)

    def trust_public_pem(self, pem: bytes, *, name: str, origin: str) -> TrustedKey:
        """Trust the Ed25519 public key in ``pem`` under ``name``; trusting it again only renames it."""
        verifier = Ed25519Verifier.from_public_pem(pem, source=origin)
        return self.add(TrustedKey(name, verifier.key_id, ED25519, _now(), origin, public_key=verifier.public_bytes()))

    def trust_key(self, key: Verifier, *, name: str, origin: str) -> TrustedKey:
        """Trust a key this user holds (``keys new`` calls this): the public key for Ed25519, the id for HMAC."""
        public = key.public_bytes() if isinstance(key, Ed25519Verifier | Ed25519Signer) else None
        return self.add(TrustedKey(name, key.key_id, key.algorithm, _now(), origin, public_key=public))

    def add(self, key: TrustedKey) -> TrustedKey:
        # the origin names a command and a path, which may be long or hold any character: kept readable
        origin = escape_controls(key.origin)
        key = dataclasses.replace(key, origin=origin if len(origin) <= MAX_ORIGIN else origin[: MAX_ORIGIN - 1] + "…")
        _check_entry(key, str(self.path))

        def change(entries: builtins.list[dict[str, Any]]) -> builtins.list[dict[str, Any]]:
            for number, raw in enumerate(entries, 1):
                old = self._entry(number, raw)
                if old.name == key.name and old.key_id != key.key_id:
                    raise KeyFileError(
                        f"a different trusted key is already called {key.name!r} (key id {old.key_id[:16]}…); "
                        "pick another name, or `arcticcodex keys untrust` the old one first",
                        parameters=["name"],
                    )
            return [raw for raw in entries if raw.get("key_id") != key.key_id] + [key.to_json()]

        self._file.update(change)
        return key

    def remove(self, name_or_key_id: str) -> TrustedKey:
        """Stop trusting the key called ``name_or_key_id`` (or whose key id starts with it, ≥ 8 hex digits)."""
        removed: builtins.list[TrustedKey] = []

        def change(entries: builtins.list[dict[str, Any]]) -> builtins.list[dict[str, Any]]:
            keys = [self._entry(number, raw) for number, raw in enumerate(entries, 1)]
            matches = [k for k in keys if k.name == name_or_key_id]
            if not matches and _KEY_ID_PREFIX.fullmatch(name_or_key_id):
                matches = [k for k in keys if k.key_id.startswith(name_or_key_id)]
            if len(matches) != 1:
                known = ", ".join(f"{k.name} ({k.key_id[:16]}…)" for k in keys) or "none"
                problem = "matches several trusted keys" if matches else "is not a trusted key's name or key id"
                raise KeyFileError(
                    f"{name_or_key_id!r} {problem}; trusted keys: {known} (see `arcticcodex keys trusted`)"
                )
            removed.append(matches[0])
            return [raw for raw in entries if raw.get("key_id") != matches[0].key_id]

        self._file.update(change)
        return removed[0]

    def _entry(self, number: int, raw: dict[str, Any]) -> TrustedKey:
        where = f"{self.path}, entry {number}"
        fix = f"repair or delete {self.path}, then trust your keys again with `arcticcodex keys trust`"
        if not all(isinstance(raw.get(name), str) for name in ("name", "key_id", "algorithm", "added_at", "origin")):
            raise KeyFileError(f"{where}: needs the strings name, key_id, algorithm, added_at, origin; {fix}")
        public = None
        if raw.get("public_key") is not None:
            try:
                public = base64.b64decode(str(raw["public_key"]), validate=True)
            except binascii.Error:
                # from None: the Error adds nothing the message does not already say
                raise KeyFileError(f"{where}: public_key is not base64; {fix}") from None
        key = TrustedKey(raw["name"], raw["key_id"], raw["algorithm"], raw["added_at"], raw["origin"], public)
        _check_entry(key, where, fix)
        return key


@dataclass(frozen=True, slots=True)
class SignerTrust:
    """A dataset's signer as one verification sees it: the key to check with, and why it is trusted."""

    key_id: str
    algorithm: str
    verifier: Verifier | None  # None: we hold no copy of this key (use the one the folder ships, if any)
    trusted_as: str | None  # None: not trusted; else a label such as "trusted key 'alice'"
    note: str = ""  # why not trusted, in words ("" when trusted)


class KeyRing:
    """What one verification trusts, and the keys it can check with.

    ``KeyRing.only([(verifier, label)])`` trusts exactly the given keys (``--key``, ``--public-key``).
    ``KeyRing.for_user(keystore)`` trusts the user's list; the workspace's key store is consulted for
    key material only (an HMAC secret), never for trust.  ``KeyRing()`` trusts nothing.
    """

    def __init__(
        self,
        explicit: Sequence[tuple[Verifier, str]] | None = None,
        *,
        trusted: TrustedKeys | None = None,
        keystore: KeyStore | None = None,
    ) -> None:
        self.explicit = list(explicit) if explicit is not None else None
        self.trusted = trusted
        self.keystore = keystore

    @classmethod
    def only(cls, keys: Sequence[tuple[Verifier, str]]) -> KeyRing:
        return cls(keys)

    @classmethod
    def for_user(cls, keystore: KeyStore | None = None, environ: Mapping[str, str] | None = None) -> KeyRing:
        return cls(trusted=TrustedKeys.for_user(environ), keystore=keystore)

    def signer(self, key_id: str, algorithm: str) -> SignerTrust:
        """The signer ``key_id``: a verifier for it if one is held here, and whether (and why) it is trusted."""
        if self.explicit is not None:
            for verifier, label in self.explicit:
                if verifier.key_id == key_id and verifier.algorithm == algorithm:
                    return SignerTrust(key_id, algorithm, verifier, label)
        else:
            entry = self.trusted.find(key_id) if self.trusted is not None else None
            if entry is not None and entry.algorithm == algorithm:
                held = entry.verifier() or self._held(key_id, algorithm)
                return SignerTrust(key_id, algorithm, held, f"trusted key {entry.name!r}")
        note = f"signed by {algorithm} key {key_id}, which is not {self.describe()}"
        return SignerTrust(key_id, algorithm, self._held(key_id, algorithm), None, note)

    def describe(self) -> str:
        """Which keys this ring trusts, for a message that says how to change it."""
        if self.explicit is not None:
            return " or ".join(label for _, label in self.explicit) or "no key"
        return "one of the keys you trust (`arcticcodex keys trusted`)"

    def _held(self, key_id: str, algorithm: str) -> Verifier | None:
        """A copy of the key from the workspace's key store (HMAC needs the secret to check at all)."""
        if self.keystore is None:
            return None
        try:
            for info in self.keystore.list():
                if info.key_id == key_id and info.algorithm == algorithm:
                    return self.keystore.verifier(info.name)
        except KeyFileError:
            return None
        return None


def _check_entry(key: TrustedKey, where: str, fix: str = "") -> None:
    problem = None
    if not _NAME.fullmatch(key.name) or not _ORIGIN.fullmatch(key.origin):
        problem = f"name must be 1-200 printable characters, and origin 1-{MAX_ORIGIN}"
    elif not _KEY_ID.fullmatch(key.key_id):
        problem = "key_id must be 64 lowercase hex digits"
    elif key.algorithm not in ALGORITHMS:
        problem = f"algorithm must be one of {', '.join(ALGORITHMS)}"
    elif key.algorithm == HMAC_SHA256 and key.public_key is not None:
        problem = "an HMAC key has no public key"
    elif key.algorithm == ED25519:
        try:
            if key.public_key is None or Ed25519Verifier.from_public_bytes(key.public_key).key_id != key.key_id:
                problem = "public_key is missing or does not match key_id"
        except KeyFileError:
            problem = "public_key is not a 32-byte Ed25519 key"
    if problem:
        raise KeyFileError(f"{where}: {problem}" + (f"; {fix}" if fix else ""))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TwoVerdicts:
    """Integrity and trust, kept apart, for any report that has ``problems`` and ``trusted_as``.

    Integrity (``ok``): nothing is wrong with what was checked.  Trust (``trusted``): the signer is a key
    the user vouched for.  A stranger's key verifies a stranger's data perfectly, so neither verdict
    implies the other, and ``verdict`` says both in words.
    """

    __slots__ = ()
    problems: Sequence[object]
    trusted_as: str | None

    @property
    def ok(self) -> bool:
        """Integrity: nothing checked is wrong (says nothing about who signed)."""
        return not self.problems

    @property
    def trusted(self) -> bool:
        """Trust: the signer's key is one the user vouched for (or gave for this verification)."""
        return self.trusted_as is not None

    @property
    def verdict(self) -> str:
        """``intact, signer trusted`` / ``intact, signer NOT trusted`` / ``NOT intact``."""
        if not self.ok:
            return "NOT intact"
        return "intact, signer trusted" if self.trusted else "intact, signer NOT trusted"
