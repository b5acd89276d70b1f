"""Everything a run needs, checked before it is created and before any teacher is paid.

A run that cannot finish should not start: an unknown ``--teachers`` name, a ``--drafter`` that is
not a configured model, a signing key that does not exist, an entry not yet trusted, a missing API
key or an ``--out`` folder that is taken would otherwise surface only once the run was in the journal
(a dead run in "recent runs") — and with ``--questions-by``, after the questions were paid for.  So
they are refused first, each with the option (or the setting in ``arcticcodex.toml``) that named it.

The drafter is also settled here, once, and stored with the run (a resumed run drafts the same way):

``auto`` (the default)
    the offline extractive drafter writes each first answer from the best-matching evidence
    passages; when no passage matches the prompt, the run's rewriter writes the first answer from
    the evidence — if it is an API teacher; offline, the extractive drafter offers the evidence's
    leading passages instead.  A prompt with evidence is never failed with "nothing to draft".
``extractive``
    only the offline drafter (never a paid call for drafting).
a teacher's name
    that model drafts every answer (the run's "student").
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..dataset.verify import verify_dataset
from ..errors import ConfigError, DatasetError, KeyFileError, UserError
from ..provenance.keystore import KeyStore
from ..teachers.entries import TeacherConfig, load_teachers
from ..teachers.factory import build_pool, build_teacher
from ..teachers.local_judge import LocalJudge
from ..teachers.openai_compat import OpenAICompatibleTeacher
from ..teachers.pool import TeacherPool
from ..teachers.replicas import ReplicatedTeacher
from .ray_engine import check_ray
from .settings import RunSettings

if TYPE_CHECKING:
    from .run import Distiller

__all__ = ["check_api_teacher", "check_base", "prepare_run"]


def prepare_run(
    distiller: Distiller, settings: RunSettings, out: str | Path, *, teachers_origin: str = "teachers"
) -> tuple[RunSettings, Path]:
    """The run's settings with the drafter settled, and its ``out`` folder; raises what would stop it.

    ``teachers_origin`` says where ``settings.teachers`` came from, for messages: the parameter
    ``teachers`` (the default), or a place in a file.
    """
    target = _check_out(Path(out).resolve(), settings.append)
    if settings.engine == "ray":
        check_ray(distiller.ray_address)
    _check_key(distiller, settings)
    configs, _ = load_teachers(distiller.workspace.config)
    _check_names(settings.teachers, configs, teachers_origin)
    pool = build_pool(
        distiller.workspace,
        only=list(settings.teachers) or None,
        environ=distiller.environ,
        use_cache=False,
        local_embedder=distiller.local_embedder,
    )  # builds every teacher the run will use: trust, API keys and [teacher_pool] critics are checked
    if settings.drafter == "auto":
        rewriter = pool.teachers[pool.roles["rewriter"][0]]
        is_api = isinstance(rewriter, OpenAICompatibleTeacher | ReplicatedTeacher)
        settings = replace(settings, drafter="extractive", fallback_drafter=rewriter.name if is_api else None)
    elif settings.drafter != "extractive":
        check_api_teacher(distiller, settings.drafter, parameter="drafter")
    if settings.batch:
        _check_batch(pool, configs, settings)
    if settings.append:
        check_base(distiller, target, settings)
    return settings, target


def check_api_teacher(distiller: Distiller, name: str, *, parameter: str) -> None:
    """``name`` (given as ``parameter``) must be a configured, trusted API teacher whose key can be read.

    Nothing is sent."""
    configs = distiller.teacher_configs()
    config = next((config for config in configs if config.name == name and config.preset != "local"), None)
    if config is None:
        names = ", ".join(config.name for config in configs if config.preset != "local") or "none configured"
        extra = {"drafter": " or 'extractive'", "questions_by": " or 'offline'"}.get(parameter, "")
        raise ConfigError(
            f"{parameter} {name!r} is not a configured API teacher (configured: {names}); give one of them{extra}, "
            f"or add it with `arcticcodex teachers add {name} --preset …`",
            parameters=[parameter],
        )
    build_teacher(config, environ=distiller.environ)  # refuses an untrusted entry and a missing key


def check_base(distiller: Distiller, target: Path, settings: RunSettings) -> None:
    """``append``: the dataset in ``target`` must verify with the run's key (it is copied once the run exists)."""
    keys = KeyStore(distiller.workspace.keys_dir)
    report = verify_dataset(target, trusted=keys.verifier(settings.key))
    if not report.ok or not report.trusted:
        why = str(report.problems[0]) if report.problems else report.trust_note
        raise DatasetError(
            f"append: the dataset in {target} does not verify with key {settings.key!r} ({why}); "
            "appending must keep it valid, so fix or re-create it first (`arcticcodex dataset verify`)",
            parameters=["append"],
        )


def _check_batch(pool: TeacherPool, configs: list[TeacherConfig], settings: RunSettings) -> None:
    """``batch``: every API teacher the run uses (its drafter too) must have a Batch API, on one endpoint."""
    names = [name for name, teacher in pool.teachers.items() if not isinstance(teacher, LocalJudge)]
    names += [name for name in (settings.drafter, settings.fallback_drafter) if name and name != "extractive"]
    if not names:
        raise ConfigError(
            "batch sends the teachers' calls as provider batches, but this run uses no API teacher (only the "
            "offline local judge); add one with `arcticcodex teachers add`, or run without batch",
            parameters=["batch"],
        )
    for config in (config for config in configs if config.name in names):
        if config.replicas:
            raise ConfigError(
                f"batch: teacher {config.name!r} spreads its calls over {1 + len(config.replicas)} endpoints "
                "(replicas), and a batch goes to one endpoint; run without batch, or choose other teachers",
                parameters=["batch"],
            )
        if config.batch_discount is None:
            raise ConfigError(
                f"batch: teacher {config.name!r} ({config.preset} preset, {config.base_url}) has no Batch API, so "
                "its calls cannot go up as batches; nothing was sent. Run without batch, choose teachers that "
                "have one (the openai preset), or, if its endpoint does serve /v1/files and /v1/batches, set "
                f"batch_discount (the share the provider takes off, e.g. 0.5) in its [[teachers]] entry in "
                f"{config.origin or 'arcticcodex.toml'}",
                parameters=["batch"],
            )


def _check_out(target: Path, append: bool) -> Path:
    if target.exists() and not target.is_dir():
        raise UserError(f"out {target} is a file; give a folder for the dataset", parameters=["out"])
    occupied = target.is_dir() and any(target.iterdir())
    if occupied and not append:
        raise UserError(
            f"out {target} is not empty; choose a new folder, or set append to add to the dataset there",
            parameters=["out", "append"],
        )
    if append and not occupied:
        raise UserError(
            f"append: {target} holds no dataset to add to; leave out append for a new one", parameters=["append"]
        )
    return target


def _check_key(distiller: Distiller, settings: RunSettings) -> None:
    """The signing key must exist and load now, not when the dataset is written at the end of the run."""
    unusable = f"the signing key {settings.key!r} (from {settings.key_origin}) cannot be used"
    try:
        KeyStore(distiller.workspace.keys_dir).signer(settings.key)
    except KeyFileError as error:  # a missing or unusable key file
        raise KeyFileError(f"{unusable}: {error}") from error
    except ConfigError as error:  # a malformed key name
        raise ConfigError(f"{unusable}: {error}") from error


def _check_names(names: tuple[str, ...], configs: list[TeacherConfig], origin: str) -> None:
    known = [config.name for config in configs]
    unknown = [name for name in names if name not in known and name != "local"]
    if unknown:
        listed = ", ".join(known) or "none configured"
        raise ConfigError(
            f"{origin} names {', '.join(map(repr, unknown))}, which is not a configured teacher (configured: "
            f"{listed}, and the built-in 'local'); fix the name, or add it with `arcticcodex teachers add`",
            parameters=[origin] if origin == "teachers" else [],
        )
