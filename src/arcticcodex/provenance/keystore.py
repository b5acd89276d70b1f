"""Named signing keys in a workspace's ``keys/`` folder.

::

    keys/                 mode 0700
      dataset.key         private key, mode 0600: PKCS8 PEM (Ed25519) or an ArcticCodex HMAC block
      dataset.pub         public key, SubjectPublicKeyInfo PEM (Ed25519 only), mode 0644
      dataset.json        metadata, no secret: name, algorithm, key_id, created_at

The ``.json`` file is what :meth:`KeyStore.list` reads, so listing keys never opens a secret.  A
private key file is written under a temporary name created with mode 0600 (``O_EXCL``) and then
hard-linked into place, so it is never readable by others for an instant, never seen half-written,
and never replaces an existing key (``os.replace`` would silently clobber a key made concurrently
under the same name).  Loading refuses a private key file that group or others may access, as ssh
does: a key that has been readable by others may already have leaked.

Key material never appears in an error message or a repr: messages name the file and the fix.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..errors import ConfigError, KeyFileError, UnsafeFileError
from ..fileio import atomic_write, read_plain_file
from .signing import ALGORITHMS, ED25519, HMAC_SHA256, Ed25519Signer, Ed25519Verifier, HmacSigner

NAME_RULE = "1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_KEY_ID_PREFIX_RE = re.compile(r"[0-9a-f]{8,64}")
MIN_KEY_ID_PREFIX = 8
MAX_KEY_FILE_BYTES = 64 << 10

HMAC_PEM_BEGIN = "-----BEGIN ARCTICCODEX HMAC-SHA256 KEY-----"
HMAC_PEM_END = "-----END ARCTICCODEX HMAC-SHA256 KEY-----"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What may be said about a key in public: everything but the secret."""

    name: str
    algorithm: str
    key_id: str
    created_at: str  # ISO-8601 UTC, e.g. 2025-12-20T10:00:00Z
    public_key_path: Path | None  # None for HMAC keys, which have no public half

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "algorithm": self.algorithm,
            "key_id": self.key_id,
            "created_at": self.created_at,
        }


class KeyStore:
    """The keys of one workspace: ``KeyStore(workspace.keys_dir)``."""

    def __init__(self, keys_dir: Path | str) -> None:
        self.keys_dir = Path(keys_dir)

    def __repr__(self) -> str:
        return f"KeyStore({str(self.keys_dir)!r})"

    # -- paths ---------------------------------------------------------------------------------------

    def private_key_path(self, name: str) -> Path:
        return self.keys_dir / f"{check_key_name(name)}.key"

    def public_key_path(self, name: str) -> Path:
        return self.keys_dir / f"{check_key_name(name)}.pub"

    def metadata_path(self, name: str) -> Path:
        return self.keys_dir / f"{check_key_name(name)}.json"

    # -- creating ------------------------------------------------------------------------------------

    def create(self, name: str, algorithm: str = ED25519) -> KeyInfo:
        """Generate a new key called ``name``; an existing name is an error (keys are never overwritten)."""
        check_key_name(name)
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown key algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
        paths = (self.private_key_path(name), self.public_key_path(name), self.metadata_path(name))
        for path in paths:
            if path.exists():
                raise KeyFileError(
                    f"a key named {name!r} already exists ({path}); keys are never overwritten: pick another "
                    "name, or move the old key's files out of the folder first"
                )
        self.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

        signer: Ed25519Signer | HmacSigner
        if algorithm == ED25519:
            signer = Ed25519Signer.generate()
            private = signer.private_pem()
            public: bytes | None = signer.public_pem()
        else:
            signer = HmacSigner.generate()
            private = _hmac_pem(signer.secret_bytes())
            public = None
        info = KeyInfo(
            name=name,
            algorithm=algorithm,
            key_id=signer.key_id,
            created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            public_key_path=paths[1] if public is not None else None,
        )
        metadata = (json.dumps(info.to_json(), indent=2) + "\n").encode("utf-8")
        written: list[Path] = []
        try:
            for path, data, mode in (
                (paths[0], private, 0o600),
                (paths[1], public, 0o644),
                (paths[2], metadata, 0o644),
            ):
                if data is not None:
                    write_new_file(path, data, mode)
                    written.append(path)
        except BaseException:
            for path in written:  # leave no key without its metadata (or the reverse) behind
                path.unlink(missing_ok=True)
            raise
        return info

    # -- reading -------------------------------------------------------------------------------------

    def list(self) -> list[KeyInfo]:
        """Every key in the folder, sorted by name (reads only the non-secret ``.json`` files)."""
        if not self.keys_dir.is_dir():
            return []
        infos = [self._read_metadata(path) for path in self.keys_dir.glob("*.json") if _NAME_RE.fullmatch(path.stem)]
        return sorted(infos, key=lambda info: info.name)

    def info(self, name_or_key_id: str) -> KeyInfo:
        """The key called ``name_or_key_id``, else the one whose key id starts with it (≥ 8 hex digits)."""
        if _NAME_RE.fullmatch(name_or_key_id) and self.metadata_path(name_or_key_id).is_file():
            return self._read_metadata(self.metadata_path(name_or_key_id))
        known = self.list()
        if _KEY_ID_PREFIX_RE.fullmatch(name_or_key_id):
            matches = [info for info in known if info.key_id.startswith(name_or_key_id)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                names = ", ".join(f"{info.name} ({info.key_id[:16]}…)" for info in matches)
                raise KeyFileError(
                    f"key id prefix {name_or_key_id} matches {len(matches)} keys: {names}; use a longer "
                    "prefix or the key's name"
                )
        have = ", ".join(info.name for info in known) if known else "none yet"
        raise KeyFileError(
            f"no key named {name_or_key_id!r} (or with a key id starting so) in {self.keys_dir}; keys there: "
            f"{have}; create one with `arcticcodex keys new {_suggest_name(name_or_key_id)}`"
        )

    def signer(self, name: str) -> Ed25519Signer | HmacSigner:
        """Load the private key of ``name`` (refused if its file is readable by others)."""
        info = self.info(name)
        path = self.private_key_path(info.name)
        data = _read_private_key_file(path)
        signer: Ed25519Signer | HmacSigner
        if info.algorithm == ED25519:
            signer = Ed25519Signer.from_private_pem(data, source=f"key file {path}")
        else:
            signer = HmacSigner(_parse_hmac_pem(data, path))
        _check_key_id(signer.key_id, info, path)
        return signer

    def verifier(self, name: str) -> Ed25519Verifier | HmacSigner:
        """What checks ``name``'s signatures: the public key for Ed25519, the secret itself for HMAC."""
        info = self.info(name)
        if info.algorithm == HMAC_SHA256:
            return self.signer(info.name).verifier()
        path = self.public_key_path(info.name)
        verifier = Ed25519Verifier.from_public_pem(_read_file(path), source=f"public key file {path}")
        _check_key_id(verifier.key_id, info, path)
        return verifier

    def public_pem(self, name: str) -> bytes:
        """The SubjectPublicKeyInfo PEM of an Ed25519 key (checked against its key id)."""
        info = self.info(name)
        if info.algorithm == HMAC_SHA256:
            raise KeyFileError(
                f"key {info.name!r} is an HMAC key: HMAC keys have no public part; share the secret out of "
                "band, or create an Ed25519 key (`arcticcodex keys new NAME`) for signatures others verify"
            )
        verifier = self.verifier(info.name)
        if not isinstance(verifier, Ed25519Verifier):  # pragma: no cover - guarded by the algorithm above
            raise KeyFileError(f"key {info.name!r} has no public key")
        return verifier.public_pem()

    def export_public(self, name: str, destination: Path | str) -> Path:
        """Write ``name``'s public key PEM to ``destination`` atomically (replacing what was there)."""
        destination = Path(destination)
        data = self.public_pem(name)
        try:
            with atomic_write(destination, mode=0o644) as handle:
                os.fchmod(handle.fileno(), 0o644)  # exact, whatever the umask: a public key is for others to read
                handle.write(data)
        except OSError as exc:
            # from None: the OSError adds nothing the message does not already say
            raise KeyFileError(f"cannot write {destination}: {exc.strerror}") from None
        return destination

    def _read_metadata(self, path: Path) -> KeyInfo:
        fix = f"restore it from a backup, or move the key's files out of {self.keys_dir} and create a new key"
        try:
            raw = json.loads(_read_file(path).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            # from None: the UnicodeDecodeError/JSONDecodeError adds nothing the message does not already say
            raise KeyFileError(f"key metadata file {path} is not valid JSON; {fix}") from None
        if not isinstance(raw, dict):
            raise KeyFileError(f"key metadata file {path} is not a JSON object; {fix}")
        fields = {key: raw.get(key) for key in ("name", "algorithm", "key_id", "created_at")}
        if not all(isinstance(value, str) and value for value in fields.values()):
            raise KeyFileError(f"key metadata file {path} lacks name, algorithm, key_id or created_at; {fix}")
        if fields["name"] != path.stem or fields["algorithm"] not in ALGORITHMS:
            raise KeyFileError(f"key metadata file {path} names another key or an unknown algorithm; {fix}")
        public = self.public_key_path(path.stem) if fields["algorithm"] == ED25519 else None
        return KeyInfo(
            name=path.stem,
            algorithm=str(fields["algorithm"]),
            key_id=str(fields["key_id"]),
            created_at=str(fields["created_at"]),
            public_key_path=public,
        )


def check_key_name(name: str) -> str:
    """``name`` if it is a valid key name, else ConfigError stating the rule."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ConfigError(f"{name!r} is not a valid key name: a key name is {NAME_RULE}, e.g. dataset")
    return name


def write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` holding ``data`` with ``mode``, all at once; FileExistsError → KeyFileError.

    The bytes go to a temporary file created with ``mode`` (never wider, whatever the umask), are
    flushed to disk, and the file is then hard-linked to ``path``, which fails if ``path`` exists.
    Not :func:`~arcticcodex.fileio.atomic_write`: its rename would replace a key made meanwhile.
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        _write_exclusive(temporary, data, mode)
        os.link(temporary, path)
    except FileExistsError:
        # from None: the FileExistsError adds nothing the message does not already say
        raise KeyFileError(f"{path} already exists; keys are never overwritten") from None
    finally:
        temporary.unlink(missing_ok=True)


def _write_exclusive(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0), mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed it; make the mode exact
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_file(path: Path) -> bytes:
    """A key or metadata file's bytes: a plain file of at most 64 KB (a cloned workspace's ``keys/`` may
    hold a FIFO or a link to ``/dev/zero`` where a key should be)."""
    try:
        return read_plain_file(path, limit=MAX_KEY_FILE_BYTES, what="key file")
    except UnsafeFileError as exc:
        # from None: the UnsafeFileError adds nothing the message does not already say
        raise KeyFileError(f"{exc}; restore the key from a backup or create a new one") from None
    except FileNotFoundError:
        # from None: the FileNotFoundError adds nothing the message does not already say
        raise KeyFileError(
            f"{path} is missing; restore it from a backup or create a new key with `arcticcodex keys new NAME`"
        ) from None
    except OSError as exc:
        # from None: the OSError adds nothing the message does not already say
        raise KeyFileError(f"cannot read {path}: {exc.strerror}") from None


def _read_private_key_file(path: Path) -> bytes:
    """The bytes of a private key file, refused when group or others may access it."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o600  # _read_file reports the missing file
    if os.name == "posix" and mode & 0o077:
        raise KeyFileError(f"Key file {path} is readable by others (mode {mode:04o}); run `chmod 600 {path}`")
    return _read_file(path)


def _hmac_pem(secret: bytes) -> bytes:
    body = base64.encodebytes(secret).decode("ascii")
    return f"{HMAC_PEM_BEGIN}\n{body}{HMAC_PEM_END}\n".encode("ascii")


def _parse_hmac_pem(data: bytes, path: Path) -> bytes:
    problem = (
        f"key file {path} is not an ArcticCodex HMAC-SHA256 key ({HMAC_PEM_BEGIN} … {HMAC_PEM_END} around "
        "base64); restore it from a backup or create a new key with `arcticcodex keys new NAME --algorithm "
        "hmac-sha256`"
    )
    try:
        lines = data.decode("ascii").strip().splitlines()
    except UnicodeDecodeError:
        # from None: the UnicodeDecodeError adds nothing the message does not already say
        raise KeyFileError(problem) from None
    if len(lines) < 3 or lines[0].strip() != HMAC_PEM_BEGIN or lines[-1].strip() != HMAC_PEM_END:
        raise KeyFileError(problem)
    try:
        secret = base64.b64decode("".join(line.strip() for line in lines[1:-1]), validate=True)
    except binascii.Error:
        # from None: the Error adds nothing the message does not already say
        raise KeyFileError(problem) from None
    if not secret:
        raise KeyFileError(problem)
    return secret


def _check_key_id(actual: str, info: KeyInfo, path: Path) -> None:
    if actual != info.key_id:
        raise KeyFileError(
            f"{path} does not hold key {info.name!r}: its key id is {actual}, the metadata says "
            f"{info.key_id}; the files of two keys were mixed up, restore them from a backup"
        )


def _suggest_name(text: str) -> str:
    return text if _NAME_RE.fullmatch(text) else "NAME"
