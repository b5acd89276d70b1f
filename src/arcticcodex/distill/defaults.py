"""Defaults for ``arcticcodex distill`` from the ``[distill]`` table of ``arcticcodex.toml``.

A project that always distils with the same teachers, budget and threshold writes them once::

    [distill]
    teachers = ["deepseek"]      # or "deepseek,local"
    budget_usd = 2.0
    threshold = 0.85
    review = true

An option given on the command line overrides the table; the table overrides the built-in default.
The table is read, and each value checked, with the rest of the file
(:class:`~arcticcodex.configsections.DistillSettings`: each error names the file, the line, the setting
and what it must be); here it is only consulted.  The signing key falls back to ``[signing] key`` after
``[distill] key``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..configsections import DistillSettings

__all__ = ["DistillDefaults"]


@dataclass(frozen=True, slots=True)
class DistillDefaults:
    """The ``[distill]`` settings of one workspace and ``[signing] key``."""

    settings: DistillSettings
    signing_key: str | None
    where: str

    @classmethod
    def load(cls, config: Config) -> DistillDefaults:
        return cls(settings=config.distill, signing_key=config.signing_key, where=config.path.name)

    def pick(self, name: str, given: Any) -> Any:
        """The command line's value when it was given (not None), else the table's, else the built-in default."""
        return given if given is not None else getattr(self.settings, name)

    def key(self, given: str | None, *, given_as: str = "the key given") -> tuple[str, str]:
        """The signing key's name and where it came from: ``given`` (the caller's, described as ``given_as``),
        [distill] key, [signing] key, or the default."""
        if given is not None:
            return given, given_as
        if "key" in self.settings.model_fields_set:
            return self.settings.key, f"[distill] key in {self.where}"
        if self.signing_key is not None:
            return self.signing_key, f"[signing] key in {self.where}"
        return self.settings.key, "the default key name (set [signing] key in arcticcodex.toml to choose another)"
