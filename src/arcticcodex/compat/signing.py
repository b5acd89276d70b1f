"""``FrameVerifier(private_key=b"secret", signer_id=…)``: the first API's frame signer, on :class:`FrameSigner`.

``private_key=`` is an HMAC-SHA256 shared secret; ``signer=`` a key from the key store, as
:class:`~arcticcodex.provenance.FrameSigner` takes it.  Everything else — the envelope, what the
signature covers, the checks when opening — is the FrameSigner's, unchanged.
"""

from __future__ import annotations

from ..errors import ConfigError, KeyFileError
from ..provenance.frames import FrameSigner
from ..provenance.signing import HmacSigner, Signer, Verifier

__all__ = ["FrameVerifier"]


class FrameVerifier(FrameSigner):
    """A :class:`FrameSigner` built the first API's way: from an HMAC secret, or from ``signer=``."""

    __slots__ = ()

    def __init__(
        self,
        private_key: bytes | None = None,
        signer_id: str = "",
        *,
        signer: Signer | Verifier | None = None,
    ) -> None:
        if private_key is not None and signer is not None:
            raise ConfigError("pass FrameVerifier either private_key= (an HMAC secret) or signer=, not both")
        if not isinstance(signer_id, str) or not signer_id.strip():
            raise ConfigError('FrameVerifier needs a non-empty signer_id naming who signs, e.g. signer_id="teacher-01"')
        if private_key is not None:
            signer = HmacSigner(private_key)
        if signer is None:
            raise KeyFileError(
                "FrameVerifier needs key material and there is no default key; create one with "
                "`arcticcodex keys new NAME` and pass signer=KeyStore(workspace.keys_dir).signer(NAME)"
            )
        super().__init__(signer, signer_id)
