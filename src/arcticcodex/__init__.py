"""ArcticCodex: teacher-verified, evidence-grounded, signed fine-tuning datasets.

What this module exports is the main job, in the order it is done::

    from arcticcodex import (Distiller, KeyRing, KeyStore, RunSettings, Source, Vault, Workspace,
                             create_trusted_key, export_dataset, import_paths, verify_dataset)

    workspace, _ = Workspace.init("notes")                          # arcticcodex.toml, database, keys/, runs/
    create_trusted_key(KeyStore(workspace.keys_dir), "dataset", origin="my script")   # the signing key
    with Vault(workspace) as vault:
        import_paths(vault, ["docs/"])                              # chunked, embedded offline, indexed
    with Distiller(workspace) as distiller:                         # offline drafter and judge by default
        summary = distiller.distill_sync(Source("from_vault"), RunSettings(), "datasets/v1")
    trusted = KeyRing.for_user()                                    # the signers you trust: yours, made here
    report = verify_dataset("datasets/v1", keyring=trusted)         # every record and signature; who signed
    print(report.verdict)                                           # "OK: intact, signer trusted" (or why not)
    export_dataset("datasets/v1", "train.jsonl", "messages", keyring=trusted)

The nouns and verbs of that job — the workspace, the vault and import, teachers (``TeacherPool``,
``TeacherRouter``), the distiller, datasets (verify, export, statistics) and keys — are here; errors
are in :mod:`arcticcodex.errors`, everything else in the subpackages (``arcticcodex.forge``,
``arcticcodex.provenance``, ``arcticcodex.gpu`` …), and the first API's names in
:mod:`arcticcodex.compat`.  Workflows are coroutines (``await distiller.distill(…)``); each has a
``*_sync`` twin for synchronous code, which also works inside a running event loop (a notebook).

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
    "Distiller": "distill",
    "KeyRing": "provenance",
    "KeyStore": "provenance",
    "RunSettings": "distill",
    "RunSummary": "distill",
    "Searcher": "vault",
    "Source": "distill",
    "TeacherPool": "teachers.pool",
    "TeacherRouter": "refine",
    "TrustedKeys": "provenance",
    "Vault": "vault",
    "Workspace": "workspace",
    "create_trusted_key": "provenance.ownkeys",
    "dataset_statistics": "dataset",
    "errors": "errors",
    "export_dataset": "dataset",
    "import_paths": "vault",
    "verify_dataset": "dataset",
}

__all__ = [
    "Distiller",
    "KeyRing",
    "KeyStore",
    "RunSettings",
    "RunSummary",
    "Searcher",
    "Source",
    "TeacherPool",
    "TeacherRouter",
    "TrustedKeys",
    "Vault",
    "Workspace",
    "__version__",
    "create_trusted_key",
    "dataset_statistics",
    "errors",
    "export_dataset",
    "import_paths",
    "verify_dataset",
]

if _typing.TYPE_CHECKING:  # what type checkers and editors see: the same names, imported eagerly
    from . import errors
    from .dataset import dataset_statistics, export_dataset, verify_dataset
    from .distill import Distiller, RunSettings, RunSummary, Source
    from .provenance import KeyRing, KeyStore, TrustedKeys
    from .provenance.ownkeys import create_trusted_key
    from .refine import TeacherRouter
    from .teachers.pool import TeacherPool
    from .vault import Searcher, Vault, import_paths
    from .workspace import Workspace


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
