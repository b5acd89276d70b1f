"""The workspace's SSH key for reaching rented instances: made once, kept private.

An Ed25519 key in OpenSSH format, written with mode 0600 in a 0700 folder (``ssh`` refuses keys others
can read, and so do we); the public half is registered with the Vast account before each launch, so a
new instance accepts it.  Generated with ``cryptography`` rather than ``ssh-keygen`` so that a machine
without OpenSSH's tools can still search and launch (only the tunnel needs ``ssh``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import KeyFileError
from ..fileio import write_atomically


def ensure_ssh_key(path: Path, *, comment: str = "arcticcodex-gpu") -> Path:
    """Return ``path``, creating the key pair (``path`` and ``path.pub``) if it does not exist yet."""
    path.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # e.g. the workspace's gpu/ folder
    path.parent.mkdir(mode=0o700, exist_ok=True)
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise KeyFileError(
                f"the SSH key {path} can be read by other users (mode {mode:04o}); run `chmod 600 {path}`"
            )
        if not path.with_suffix(".pub").exists():
            raise KeyFileError(
                f"the SSH key {path} has no public half {path.with_suffix('.pub')}; remove both and retry"
            )
        return path
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    write_atomically(path.with_suffix(".pub"), public + f" {comment}\n".encode(), mode=0o600)
    write_atomically(path, private, mode=0o600)
    os.chmod(path, 0o600)
    return path
