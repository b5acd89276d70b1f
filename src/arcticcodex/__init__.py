"""ArcticCodex: teacher-verified, evidence-grounded, signed fine-tuning datasets.

The public API is what this module exports; submodules (``arcticcodex.forge``,
``arcticcodex.provenance`` …) hold the rest::

    from arcticcodex import FrameVerifier, KeyStore, Workspace, forge

    workspace = Workspace.discover()                     # --workspace, ARCTICCODEX_WORKSPACE, or upwards
    frame = forge.Frame({"TYPE": "FACT", "FACT_ID": "f-1", "CONFIDENCE": forge.Dec("0.9")},
                        ["SUBJ", "Fox", "PRED", "is_a", "OBJ", "canine"])
    verifier = FrameVerifier(signer=KeyStore(workspace.keys_dir).signer("dataset"), signer_id="me")
    signed = verifier.sign_frame(frame)
"""

from __future__ import annotations

from . import errors, forge
from .dataset import DatasetWriter, TrainingPair, verify_dataset
from .dataset.collection import DistillationDatasetWriter
from .distill import Distiller, RunSettings
from .errors import (
    ArcticCodexError,
    ConfigError,
    EncodeError,
    ForgeError,
    GpuError,
    KeyFileError,
    MigrationError,
    ParseError,
    RecordNotFoundError,
    SignatureError,
    StoreError,
    TrustError,
    UserError,
    ValidationError,
    WorkspaceNotFoundError,
)
from .gpu import VastInstanceManager, VastProvisioner
from .migrations import Migrations
from .provenance import Ed25519Signer, Ed25519Verifier, FrameVerifier, HmacSigner, KeyStore, SignedFrame
from .vault import Searcher, Vault
from .workspace import Workspace, register_migrations

__version__ = "0.1.0"

__all__ = [
    "ArcticCodexError",
    "ConfigError",
    "DatasetWriter",
    "DistillationDatasetWriter",
    "Distiller",
    "Ed25519Signer",
    "Ed25519Verifier",
    "EncodeError",
    "ForgeError",
    "FrameVerifier",
    "GpuError",
    "HmacSigner",
    "KeyFileError",
    "KeyStore",
    "MigrationError",
    "Migrations",
    "ParseError",
    "RecordNotFoundError",
    "RunSettings",
    "Searcher",
    "SignatureError",
    "SignedFrame",
    "StoreError",
    "TrainingPair",
    "TrustError",
    "UserError",
    "ValidationError",
    "VastInstanceManager",
    "VastProvisioner",
    "Vault",
    "Workspace",
    "WorkspaceNotFoundError",
    "__version__",
    "errors",
    "forge",
    "register_migrations",
    "verify_dataset",
]
