"""ArcticCodex: teacher-verified, evidence-grounded, signed fine-tuning datasets.

The public API is what this module exports; submodules (``arcticcodex.forge``,
``arcticcodex.provenance`` …) hold the rest::

    from arcticcodex import FrameVerifier, KeyStore, Workspace, forge

    workspace = Workspace.discover()                     # --workspace, ARCTICCODEX_WORKSPACE, or upwards
    frame = forge.Frame({"TYPE": "FACT", "FACT_ID": "f-1", "CONFIDENCE": forge.Dec("0.9")},
                        ["SUBJ", "Fox", "PRED", "is_a", "OBJ", "canine"])
    verifier = FrameVerifier(signer=KeyStore(workspace.keys_dir).signer("dataset"), signer_id="me")
    signed = verifier.sign_frame(frame)

Each name is imported the first time it is used (PEP 562): ``import arcticcodex`` — which every
``arcticcodex`` command does first — costs nothing, so ``arcticcodex --version`` does not load
NumPy, the ``openai`` SDK or the Studio's web stack for names it never touches.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing  # private names: the module's public names are exactly __all__

__version__ = "0.1.0"

# name -> the module it comes from (a module's own name there means the module itself)
_EXPORTS = {
    "ArcticCodexError": "errors",
    "ConfigError": "errors",
    "DatasetWriter": "dataset",
    "DistillationDatasetWriter": "dataset.collection",
    "Distiller": "distill",
    "Ed25519Signer": "provenance",
    "Ed25519Verifier": "provenance",
    "EncodeError": "errors",
    "ForgeError": "errors",
    "FrameVerifier": "provenance",
    "GpuError": "errors",
    "HmacSigner": "provenance",
    "KeyFileError": "errors",
    "KeyStore": "provenance",
    "MigrationError": "errors",
    "Migrations": "migrations",
    "ParseError": "errors",
    "RecordNotFoundError": "errors",
    "RunSettings": "distill",
    "Searcher": "vault",
    "SignatureError": "errors",
    "SignedFrame": "provenance",
    "StoreError": "errors",
    "TrainingPair": "dataset",
    "TrustError": "errors",
    "UserError": "errors",
    "ValidationError": "errors",
    "VastInstanceManager": "gpu",
    "VastProvisioner": "gpu",
    "Vault": "vault",
    "Workspace": "workspace",
    "WorkspaceNotFoundError": "errors",
    "errors": "errors",
    "forge": "forge",
    "register_migrations": "workspace",
    "verify_dataset": "dataset",
}

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

if _typing.TYPE_CHECKING:  # what type checkers and editors see: the same names, imported eagerly
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


def __getattr__(name: str) -> _typing.Any:
    """Import an exported name on first use, then keep it here (later lookups are plain attributes)."""
    where = _EXPORTS.get(name)
    if where is None:  # not exported: ``from arcticcodex import configfile`` falls back to the submodule
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _importlib.import_module(f".{where}", __name__)
    value = module if where == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
