"""Keys, signatures and verification.

* :mod:`.signing`   Ed25519 and HMAC-SHA256 signers and verifiers over bytes, with key ids;
* :mod:`.keystore`  named keys in a workspace's ``keys/`` folder (private files mode 0600);
* :mod:`.frames`    signed ForgeNumerics-S frames (a ``SIGNED`` envelope whose signature covers
                    the frame, the signer id, the timestamp, the key id and the algorithm);
* :mod:`.trust`     which signers the user trusts (kept in the user's config folder), and the
                    key ring a verification trusts;
* :mod:`.ownkeys`   keys made here (``keys new``, ``init``): created and trusted in one step.
* :mod:`.record_signing`  the signature over a dataset record (its TRAIN_PAIR frame's digest and body).

Everyday use::

    from arcticcodex.provenance import FrameSigner, KeyStore

    store = KeyStore(workspace.keys_dir)
    store.create("dataset")                                  # Ed25519 by default
    signer = FrameSigner(store.signer("dataset"), signer_id="teacher-01")
    signed = signer.sign_frame(frame)
    signer.open_frame(signed).frame == frame                 # SignatureError if anything was altered
"""

from __future__ import annotations

from .frames import SIGNED_TYPE, FrameSigner, SignedFrame
from .keystore import KeyInfo, KeyStore, check_key_name
from .merkle import MerkleAccumulator, merkle_root
from .record_signing import RecordSignature, sign_record, verify_record
from .signing import (
    ALGORITHMS,
    ED25519,
    HMAC_SHA256,
    Ed25519Signer,
    Ed25519Verifier,
    HmacSigner,
    Signer,
    Verifier,
    ed25519_key_id,
    hmac_key_id,
)
from .trust import KeyRing, TrustedKey, TrustedKeys

__all__ = [
    "ALGORITHMS",
    "ED25519",
    "HMAC_SHA256",
    "SIGNED_TYPE",
    "Ed25519Signer",
    "Ed25519Verifier",
    "FrameSigner",
    "HmacSigner",
    "KeyInfo",
    "KeyRing",
    "KeyStore",
    "MerkleAccumulator",
    "RecordSignature",
    "SignedFrame",
    "Signer",
    "TrustedKey",
    "TrustedKeys",
    "Verifier",
    "check_key_name",
    "ed25519_key_id",
    "hmac_key_id",
    "merkle_root",
    "sign_record",
    "verify_record",
]
