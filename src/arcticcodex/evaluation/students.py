"""The models an evaluation asks: a configured teacher (an endpoint), or a model folder served here.

``MODEL`` is first looked up among the workspace's ``[[teachers]]`` — how a served student is reached
(vLLM with ``--enable-lora`` on a rented GPU, any OpenAI-compatible server) — and else read as a
folder: a model or adapter, or the output folder of ``arcticcodex train`` (its ``model/`` beside its
``receipt.json``), which :mod:`.serving` serves on 127.0.0.1.  Either way the model is asked through
:class:`~arcticcodex.teachers.openai_compat.OpenAICompatibleTeacher`, with the workspace's request
cache, the evaluation's ledger and its budget.  The SHA-256 of the receipt ties the evaluation to
exactly that model (:mod:`.store`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..teachers.entries import TeacherConfig
from ..training.receipt import RECEIPT_FILE
from .serving import is_model_folder

__all__ = ["ModelSpec", "resolve_model"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Where a model is: a teacher entry (``config``), or a folder to serve (``folder``)."""

    spec: str  # as the user named it: the teacher's name, or the folder (resolved)
    config: TeacherConfig | None = None
    folder: Path | None = None
    receipt_sha256: str | None = None


def resolve_model(name: str, teachers: list[TeacherConfig], *, parameter: str) -> ModelSpec:
    """``name`` as a configured teacher, else as a model folder; :class:`ConfigError` naming both when neither."""
    for config in teachers:
        if config.name == name:
            if config.preset == "local":
                raise ConfigError(
                    f"{parameter} {name!r} is the offline local judge, which writes no answers of its own; "
                    "name a teacher that serves a model, or a model folder",
                    parameters=[parameter],
                )
            return ModelSpec(spec=name, config=config)
    path = Path(name)
    if path.is_dir():
        folder = path / "model" if is_model_folder(path / "model") else path
        if not is_model_folder(folder):
            raise ConfigError(
                f"{parameter} {name}: the folder holds no model (no config.json or adapter_config.json, here or in "
                "its model/ folder); give the folder `arcticcodex train` wrote, a model or adapter folder, or "
                "the name of a teacher",
                parameters=[parameter],
            )
        receipt = next(
            (place / RECEIPT_FILE for place in (folder, folder.parent) if (place / RECEIPT_FILE).is_file()), None
        )
        digest = hashlib.sha256(receipt.read_bytes()).hexdigest() if receipt is not None else None
        return ModelSpec(spec=str(path.resolve()), folder=folder.resolve(), receipt_sha256=digest)
    known = ", ".join(config.name for config in teachers if config.preset != "local") or "none configured"
    raise ConfigError(
        f"{parameter} {name!r} is neither a configured teacher (known: {known}) nor a model folder; add the "
        "endpoint that serves it with `arcticcodex teachers add NAME --preset vllm --base-url URL --model MODEL`, "
        "or give the folder `arcticcodex train` wrote",
        parameters=[parameter],
    )
