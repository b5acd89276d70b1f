"""The curated public API: everything exported is public, sorted, importable; the seed's names exist."""

from __future__ import annotations

import arcticcodex
from arcticcodex import forge, provenance


def _public(module: object) -> list[str]:
    return [name for name in vars(module) if not name.startswith("_") or name == "__version__"]


def test_all_is_sorted_and_complete() -> None:
    for module in (arcticcodex, forge, provenance):
        exported = module.__all__
        assert len(set(exported)) == len(exported)  # ruff's RUF022 keeps the order sorted
        missing = {name for name in exported if not hasattr(module, name)}  # arcticcodex's load on first use
        assert not missing, f"{module.__name__} exports names it does not define: {missing}"


def test_top_level_exports_are_the_whole_public_surface() -> None:
    submodules = {
        "agent",
        "cli",
        "config",
        "configfile",
        "configschema",
        "dataset",
        "distill",
        "errors",
        "fileio",
        "forge",
        "gpu",
        "migrations",
        "provenance",
        "refine",
        "studio",
        "teachers",
        "terminal",
        "transactions",
        "trustfile",
        "vault",
        "workspace",
    }
    for name in arcticcodex.__all__:  # exported names are imported on first use (PEP 562)
        getattr(arcticcodex, name)
    assert set(_public(arcticcodex)) - submodules - {"annotations"} == set(arcticcodex.__all__) - {
        "errors",
        "forge",
    }


def test_seed_names_are_importable_from_the_package() -> None:
    verifier = arcticcodex.FrameVerifier(private_key=b"secret", signer_id="teacher-01")
    signed = verifier.sign_frame(forge.Frame({"TYPE": "LOG", "SEVERITY": "INFO"}, ["MSG", "hello"]))
    assert verifier.verify_frame(signed)
