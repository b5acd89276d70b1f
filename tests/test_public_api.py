"""The curated public API: exactly the main job's names, sorted, importable; the first API's names in compat."""

from __future__ import annotations

import arcticcodex
import arcticcodex.compat
from arcticcodex import forge, provenance
from arcticcodex.compat import FrameVerifier

#: the main job's nouns and verbs: workspace, vault and import, teachers, distiller, datasets, keys
CURATED = {
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
}


def _public(module: object) -> list[str]:
    return [name for name in vars(module) if not name.startswith("_") or name == "__version__"]


def test_all_is_sorted_and_complete() -> None:
    for module in (arcticcodex, arcticcodex.compat, forge, provenance):
        exported = module.__all__
        assert len(set(exported)) == len(exported)  # ruff's RUF022 keeps the order sorted
        missing = {name for name in exported if not hasattr(module, name)}  # arcticcodex's load on first use
        assert not missing, f"{module.__name__} exports names it does not define: {missing}"


def test_the_top_level_exports_exactly_the_curated_names() -> None:
    assert set(arcticcodex.__all__) == CURATED
    errors = {name for name in arcticcodex.__all__ if name.endswith("Error")}
    assert not errors, f"errors live in arcticcodex.errors, not at the top level: {errors}"


def test_top_level_exports_are_the_whole_public_surface() -> None:
    """Nothing public at the top level but the exports and the subpackages imported along the way."""
    for name in arcticcodex.__all__:  # exported names are imported on first use (PEP 562)
        getattr(arcticcodex, name)
    submodules = {name for name in _public(arcticcodex) if type(getattr(arcticcodex, name)).__name__ == "module"}
    assert all(f"arcticcodex.{name}" == getattr(arcticcodex, name).__name__ for name in submodules)
    assert set(_public(arcticcodex)) - submodules - {"annotations"} == set(arcticcodex.__all__) - {"errors"}


def test_the_first_apis_names_are_in_compat_and_only_there() -> None:
    assert set(arcticcodex.compat.__all__) == {
        "DeepSeekClient",
        "DistillationDatasetWriter",
        "FrameVerifier",
        "TeacherRouter",
        "VastInstance",
        "VastProvisioner",
    }
    for name in ("DistillationDatasetWriter", "VastProvisioner", "DeepSeekClient", "FrameVerifier"):
        assert not hasattr(arcticcodex, name), f"arcticcodex.{name} is the first API's; it lives in compat"
    verifier = FrameVerifier(private_key=b"secret", signer_id="teacher-01")
    signed = verifier.sign_frame(forge.Frame({"TYPE": "LOG", "SEVERITY": "INFO"}, ["MSG", "hello"]))
    assert verifier.verify_frame(signed)
    assert isinstance(verifier, provenance.FrameSigner)  # a thin wrapper: the current signer, built the old way
