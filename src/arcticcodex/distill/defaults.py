"""Defaults for ``arcticcodex distill`` from the ``[distill]`` table of ``arcticcodex.toml``.

A project that always distils with the same teachers, budget and threshold writes them once::

    [distill]
    teachers = ["deepseek"]      # or "deepseek,local"
    budget_usd = 2.0
    threshold = 0.85
    review = true

An option given on the command line overrides the table; the table overrides the built-in default.
Which names the table may hold is :mod:`arcticcodex.configschema`'s business; the values are checked
here, each error naming the file, the setting and what it must be.  The signing key falls back to
``[signing] key`` after ``[distill] key``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..errors import ConfigError

__all__ = ["BUILT_IN", "DistillDefaults"]

BUILT_IN: dict[str, Any] = {
    "teachers": (),
    "drafter": "auto",
    "threshold": 0.8,
    "max_rounds": 3,
    "concurrency": 8,
    "budget_usd": None,
    "validation": 0.0,
    "key": "dataset",
    "questions_per_chunk": 2,
    "questions_by": "offline",
    "limit": None,
    "review": False,
    "keep_near_duplicates": False,
}


def _number(low: float, high: float, *, top_open: bool = False) -> tuple[Callable[[Any], bool], str]:
    def check(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return low <= value < high if top_open else low <= value <= high

    return check, f"a number from {low:g} to {high:g}" + (" (less than 1)" if top_open else "")


def _integer(low: int, high: int | None = None) -> tuple[Callable[[Any], bool], str]:
    def check(value: Any) -> bool:
        whole = isinstance(value, int) and not isinstance(value, bool)
        return whole and value >= low and (high is None or value <= high)

    return check, f"a whole number from {low}" + (f" to {high}" if high is not None else " up")


def _name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _names(value: Any) -> bool:
    return (isinstance(value, str) and bool(value.strip())) or (
        isinstance(value, list) and all(_name(item) for item in value)
    )


_CHECKS: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "teachers": (_names, "a list of teacher names", '["deepseek", "local"]'),
    "drafter": (_name, "'auto', 'extractive' or a teacher's name", '"auto"'),
    "threshold": (*_number(0, 1), "0.8"),
    "max_rounds": (*_integer(1, 10), "3"),
    "concurrency": (*_integer(1, 1024), "8"),
    "budget_usd": (*_number(0, float("inf")), "2.0"),
    "validation": (*_number(0, 1, top_open=True), "0.1"),
    "key": (_name, "the name of a signing key", '"dataset"'),
    "questions_per_chunk": (*_integer(1, 10), "2"),
    "questions_by": (_name, "'offline' or a teacher's name", '"offline"'),
    "limit": (*_integer(1), "100"),
    "review": (lambda value: isinstance(value, bool), "true or false", "true"),
    "keep_near_duplicates": (lambda value: isinstance(value, bool), "true or false", "false"),
}


@dataclass(frozen=True, slots=True)
class DistillDefaults:
    """The ``[distill]`` settings of one workspace, checked, and ``[signing] key``."""

    values: Mapping[str, Any]
    signing_key: str | None
    where: str

    @classmethod
    def load(cls, config: Config) -> DistillDefaults:
        where = config.path.name
        table = config.raw.get("distill", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{config.path}: [distill] must be a table of settings")
        values: dict[str, Any] = {}
        for name, value in table.items():
            if name not in _CHECKS:
                continue  # unknown names are refused when the configuration is read (configschema.py)
            check, what, example = _CHECKS[name]
            if not check(value):
                raise ConfigError(
                    f"{config.path}: [distill] {name} must be {what}, not {value!r}; e.g. {name} = {example}"
                )
            if name == "teachers":
                value = tuple(part.strip() for part in value.split(",")) if isinstance(value, str) else tuple(value)
            values[name] = value
        return cls(values=values, signing_key=config.signing_key, where=where)

    def pick(self, name: str, given: Any) -> Any:
        """The command line's value when it was given (not None), else the table's, else the built-in default."""
        if given is not None:
            return given
        return self.values.get(name, BUILT_IN[name])

    def key(self, given: str | None) -> tuple[str, str]:
        """The signing key's name and where it came from: --key, [distill] key, [signing] key, or the default."""
        if given is not None:
            return given, "--key"
        if "key" in self.values:
            return self.values["key"], f"[distill] key in {self.where}"
        if self.signing_key is not None:
            return self.signing_key, f"[signing] key in {self.where}"
        return BUILT_IN["key"], "the default key name (set [signing] key in arcticcodex.toml to choose another)"
