"""The tables of ``arcticcodex.toml`` as typed models: what each setting is, its default, and its rule.

Why models: each table used to be read by hand where it was used (``[gpu]`` by the command line
only, so the library's GPU manager never saw the timeouts), each with its own checks and messages.
Here each setting is declared once — its type, its range, its default, and for the message that
refuses a wrong value what it must be and an example (:class:`Must`) — and every reader, the library
and the command line alike, gets the same checked values from :class:`~arcticcodex.config.Config`.

Rules that a type cannot say are validators raising :class:`SettingValueError`, whose text
:mod:`arcticcodex.configschema` places after the setting's name and line.  The ``[[teachers]]``
entries are in :mod:`.configteachers`; the model of the whole file is in :mod:`.configschema`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_EMBEDDING_MODEL",
    "DistillSettings",
    "GpuSettings",
    "Must",
    "SettingValueError",
    "SigningSettings",
    "Table",
    "TeacherPoolSettings",
    "VaultSettings",
    "WorkspaceSettings",
]

DEFAULT_DATA_DIR = ".arcticcodex"
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True, slots=True)
class Must:
    """What a setting must be and an example, for the message refusing a value."""

    what: str
    example: str


class SettingValueError(ValueError):
    """A rule a validator found broken; ``text`` follows the setting's name (``whole``: the entry's label).

    It never reaches a caller: pydantic wraps it, and :mod:`.configschema` turns it into the
    :class:`~arcticcodex.errors.ConfigError` naming the file and the line.
    """

    def __init__(self, text: str, *, whole: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.whole = whole


class Table(BaseModel):
    """A table of the file: unknown keys refused, values never changed after reading."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Name = Annotated[StrictStr, Field(min_length=1, pattern=r"\S")]  # not empty, not only spaces


class WorkspaceSettings(Table):
    """``[workspace]``: where the database, keys and runs live."""

    data_dir: Annotated[
        StrictStr, Must("a non-empty string, a folder relative to arcticcodex.toml", f'"{DEFAULT_DATA_DIR}"')
    ] = DEFAULT_DATA_DIR

    @field_validator("data_dir")
    @classmethod
    def _inside(cls, value: str) -> str:
        if not value.strip():
            raise SettingValueError(f"must be a non-empty string, e.g. {DEFAULT_DATA_DIR!r}")
        written = PurePath(value)
        if written.is_absolute() or ".." in written.parts:
            # key files are accepted from the data folder (teachers/entries.py): a configuration must not be
            # able to name ~/.ssh, or any folder outside, as its data folder (a symlink the user made is fine)
            raise SettingValueError(
                f"{value!r} leaves the workspace; write it as a folder inside it, relative to arcticcodex.toml, "
                f"e.g. {DEFAULT_DATA_DIR!r} (link it elsewhere if it must live on another disk)"
            )
        return value


class SigningSettings(Table):
    """``[signing]``: the key that signs datasets (``distill`` falls back to it after ``[distill] key``)."""

    key: Annotated[Name | None, Must("the name of a key in keys/", '"dataset"')] = None


class VaultSettings(Table):
    """``[vault]``: the embedding model, chunk sizes and how the two searches are fused."""

    embedding_model: Annotated[Name, Must("a model name or path", f'"{DEFAULT_EMBEDDING_MODEL}"')] = (
        DEFAULT_EMBEDDING_MODEL
    )
    chunk_chars: Annotated[StrictInt, Field(gt=0), Must("a positive integer", "1200")] = 1200
    overlap_chars: Annotated[StrictInt, Field(gt=0), Must("a positive integer", "200")] = 200
    rrf_k: Annotated[StrictInt, Field(gt=0), Must("a positive integer", "20")] = 20  # see vault/search.py
    fusion: Annotated[Literal["rrf", "convex"], Must('"rrf" or "convex"', '"rrf"')] = "rrf"
    device: Annotated[Literal["auto", "cpu", "cuda"], Must('"auto", "cpu" or "cuda"', '"auto"')] = "auto"  # import's


class TeacherPoolSettings(Table):
    """``[teacher_pool]``: an ensemble of critics, how their scores combine, and the money budget."""

    critics: Annotated[tuple[StrictStr, ...], Must("a list of teacher names", '["deepseek", "local"]')] = ()
    aggregate: Annotated[Literal["mean", "min", "majority"], Must("mean, min or majority", '"mean"')] = "mean"
    budget_usd: Annotated[StrictFloat | None, Field(ge=0), Must("a non-negative number", "5.0")] = None


Seconds = Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False), Must("a positive number of seconds", "600")]
Dollars = Annotated[StrictFloat | None, Field(ge=0), Must("a non-negative number of dollars", "5.0")]


class GpuSettings(Table):
    """``[gpu]``: budgets and waits of rented GPUs, for ``arcticcodex gpu`` and the library's manager alike."""

    budget_usd: Dollars = None  # the workspace's whole GPU spend
    run_budget_usd: Dollars = None  # the spend of one --run group
    poll_interval_s: Seconds = 10.0
    boot_timeout_s: Seconds = 20 * 60.0
    vllm_timeout_s: Seconds = 30 * 60.0
    # `train --on gpu`: the Python that installs and runs arcticcodex on the instance (an image may keep it
    # elsewhere, e.g. /opt/conda/bin/python), and what its pip install adds (an index, a proxy, --no-deps)
    train_python: Annotated[Name, Must("a command that runs Python on the instance", '"python3"')] = "python3"
    train_pip_args: Annotated[
        tuple[StrictStr, ...], Must("a list of pip options", '["-i", "https://pypi.example/simple"]')
    ] = ()


def _whole(low: int, high: int | None = None) -> Must:
    return Must(f"a whole number from {low}" + (f" to {high}" if high is not None else " up"), str(low))


Fraction = Annotated[StrictFloat, Field(ge=0, le=1), Must("a number from 0 to 1", "0.8")]
Switch = Annotated[StrictBool, Must("true or false", "true")]


class DistillSettings(Table):
    """``[distill]``: defaults of ``arcticcodex distill``'s options (the command line overrides them)."""

    teachers: Annotated[tuple[Name, ...], Must("a list of teacher names", '["deepseek", "local"]')] = ()
    drafter: Annotated[Name, Must("'auto', 'extractive' or a teacher's name", '"auto"')] = "auto"
    threshold: Fraction = 0.8
    max_rounds: Annotated[StrictInt, Field(ge=1, le=10), Must(_whole(1, 10).what, "3")] = 3
    concurrency: Annotated[StrictInt, Field(ge=1, le=1024), Must(_whole(1, 1024).what, "8")] = 8
    budget_usd: Annotated[StrictFloat | None, Field(ge=0), Must("a number from 0 to inf", "2.0")] = None
    validation: Annotated[StrictFloat, Field(ge=0, lt=1), Must("a number from 0 to 1 (less than 1)", "0.1")] = 0.0
    key: Annotated[Name, Must("the name of a signing key", '"dataset"')] = "dataset"
    questions_per_chunk: Annotated[StrictInt, Field(ge=1, le=10), Must(_whole(1, 10).what, "2")] = 2
    questions_by: Annotated[Name, Must("'offline' or a teacher's name", '"offline"')] = "offline"
    limit: Annotated[StrictInt | None, Field(ge=1), Must(_whole(1).what, "100")] = None
    review: Switch = False
    keep_near_duplicates: Annotated[StrictBool, Must("true or false", "false")] = False
    # how near duplicates are screened (arcticcodex.dataset.dedup): exact for a dataset an index cannot serve
    near_duplicate_mode: Annotated[
        Literal["auto", "exact", "approximate"], Must('"auto", "exact" or "approximate"', '"exact"')
    ] = "auto"
    # what publishing does with a pair holding a secret or personal data (arcticcodex.dataset.sensitive_gate)
    sensitive_data: Annotated[Literal["block", "redact", "allow"], Must('"block", "redact" or "allow"', '"block"')] = (
        "block"
    )
    # where a run's tasks run: this process, or shards on Ray (arcticcodex.distill.ray_engine)
    engine: Annotated[Literal["local", "ray"], Must('"local" or "ray"', '"ray"')] = "local"
    shards: Annotated[StrictInt, Field(ge=1, le=100_000), Must(_whole(1, 100_000).what, "8")] = 8
    # the dataset card's Hub metadata (arcticcodex.dataset.card): "other" until the user picks a license,
    # since the source documents' licenses and the teachers' terms decide; the language of the pairs
    license: Annotated[
        StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9.+-]{0,63}$"), Must("a Hub license id", '"cc-by-4.0"')
    ] = "other"
    language: Annotated[
        tuple[Annotated[StrictStr, Field(pattern=r"^[a-z]{2,3}$")], ...],
        Field(min_length=1),
        Must("a list of ISO 639 language codes", '["en", "de"]'),
    ] = ("en",)

    @field_validator("teachers", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """``"deepseek,local"`` is the list ``["deepseek", "local"]``, as ``--teachers`` takes it."""
        if isinstance(value, str) and value.strip():
            return [part.strip() for part in value.split(",")]
        return value if not isinstance(value, str) else [value]
