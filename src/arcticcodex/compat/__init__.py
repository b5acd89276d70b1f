"""The first API's names, as thin wrappers over the current one, with the current one's guarantees.

=============================================================  ===========================================
first API                                                      current API
=============================================================  ===========================================
``FrameVerifier(private_key=b"secret", signer_id=…)``          ``FrameSigner(HmacSigner(b"secret"), …)``
``DeepSeekClient(api_key)``                                    a ``deepseek`` teacher (``teachers add``)
``TeacherRouter(deepseek_client=c).draft_critique_revise(…)``  ``TeacherRouter(TeacherPool([c])).refine``
``DistillationDatasetWriter(vault, verifier)``                 ``DatasetWriter`` / ``Distiller.distill``
``VastProvisioner(api_key).provision(…)``                      ``VastInstanceManager(workspace).up``
=============================================================  ===========================================

Each wrapper calls the current API and keeps its guarantees: ``VastProvisioner.provision`` records the
instance in the workspace before renting it, as ``arcticcodex gpu up`` does; the synchronous calls
(``draft_critique_revise``, ``import_from_conversation``) run the async core through its ``*_sync``
edge.  New code uses the current names (``from arcticcodex import …``).

Each name is imported on first use, so ``import arcticcodex.compat`` loads nothing it does not need.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

_EXPORTS = {
    "DeepSeekClient": "teachers",
    "DistillationDatasetWriter": "dataset",
    "FrameVerifier": "signing",
    "TeacherRouter": "teachers",
    "VastInstance": "gpu",
    "VastProvisioner": "gpu",
}

__all__ = [
    "DeepSeekClient",
    "DistillationDatasetWriter",
    "FrameVerifier",
    "TeacherRouter",
    "VastInstance",
    "VastProvisioner",
]

if _typing.TYPE_CHECKING:
    from .dataset import DistillationDatasetWriter
    from .gpu import VastInstance, VastProvisioner
    from .signing import FrameVerifier
    from .teachers import DeepSeekClient, TeacherRouter


def __getattr__(name: str) -> _typing.Any:
    where = _EXPORTS.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{where}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
