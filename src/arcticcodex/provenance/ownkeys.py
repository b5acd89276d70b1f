"""Keys the user makes here: created and recorded as trusted in one step, or not at all.

Both ``arcticcodex keys new`` and ``arcticcodex init`` (which makes the default ``dataset`` key) go
through :func:`create_trusted_key`, so a key made by either verifies as the user's own.  A key that
exists but that nobody trusts would sign datasets that verify as a stranger's, so when trust cannot
be recorded the key's files are removed again.
"""

from __future__ import annotations

from .keystore import KeyInfo, KeyStore
from .signing import ED25519
from .trust import TrustedKey, TrustedKeys

__all__ = ["create_trusted_key", "free_trust_name"]


def create_trusted_key(
    store: KeyStore, name: str, *, algorithm: str = ED25519, origin: str, trusted: TrustedKeys | None = None
) -> tuple[KeyInfo, TrustedKey]:
    """Create the key ``name`` in ``store`` and trust it (``trusted``: default, the user's list).

    ``origin`` says which command made it, and where (shown by ``keys trusted``).
    """
    trusted = trusted or TrustedKeys.for_user()
    info = store.create(name, algorithm)
    try:
        entry = trusted.trust_key(
            store.verifier(info.name), name=free_trust_name(trusted, info.name, info.key_id), origin=origin
        )
    except BaseException:
        for path in (store.private_key_path(info.name), store.public_key_path(info.name), store.metadata_path(name)):
            path.unlink(missing_ok=True)
        raise
    return info, entry


def free_trust_name(trusted: TrustedKeys, name: str, key_id: str) -> str:
    """``name``, or ``name-<key id prefix>`` when another trusted key (another workspace's) has it."""
    taken = {key.name for key in trusted.list() if key.key_id != key_id}
    return name if name not in taken else f"{name}-{key_id[:8]}"
