"""Teacher entries in ``arcticcodex.toml``, with presets for DeepSeek, OpenAI, vLLM and Ollama.

::

    [[teachers]]
    name = "deepseek"
    preset = "deepseek"              # fills base_url, model, api_key_env and prices
    model = "deepseek-v4-flash"      # model names change (DeepSeek renamed them in 2026): configuration
    roles = ["critic", "verifier", "rewriter"]
    response_format = "json_object"  # the preset's; json_schema where the server takes JSON schemas, or none

    [teacher_pool]
    critics = ["deepseek", "local"]  # an ensemble of critics (default: every teacher with the role)
    aggregate = "mean"               # mean | min | majority
    budget_usd = 5.0

Each entry is checked, its preset filled in, when the file is read (:class:`~arcticcodex.configteachers.TeacherEntry`,
with the presets); here it becomes the :class:`TeacherConfig` the teachers run with.  Secrets never
live in the file: ``api_key_env`` names the environment variable holding the key, and
``api_key_file`` a mode-0600 file that must lie in the workspace's data folder or the user's config
folder.  An entry read from the file is marked ``trusted`` only if the user trusted that exact
entry (:mod:`.trust`); an untrusted one is refused before a key is read or a request is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..config import Config
from ..configschema import teacher_entry
from ..configsections import TeacherPoolSettings
from ..configteachers import KEYLESS_PRESETS, PRESETS, ResponseFormat, TeacherEntry
from ..errors import ConfigError
from ..terminal import escape_controls
from .results import ROLES, Role
from .trust import TrustedTeachers, entry_fingerprint

__all__ = [
    "KEYLESS_PRESETS",
    "PRESETS",
    "TEACHER_NAME_RULE",
    "TeacherConfig",
    "TeacherPoolSettings",
    "check_teacher_name",
    "load_teachers",
    "teacher_from_entry",
]


@dataclass(frozen=True, slots=True)
class TeacherConfig:
    name: str
    preset: str
    model: str
    base_url: str = ""
    api_key_env: str | None = None
    api_key_file: str | None = None  # a mode-0600 file holding the key (a rented vLLM's); relative to the workspace
    replicas: tuple[str, ...] = ()  # more base URLs serving the same model; calls are spread over all of them
    roles: tuple[Role, ...] = ROLES
    price_input: float = 0.0
    price_cached_input: float = 0.0
    price_output: float = 0.0
    concurrency: int = 8
    timeout: float = 60.0
    max_attempts: int = 4
    temperature: float = 0.2
    max_tokens: int = 2048
    # json_schema: the reply's JSON schema, strict (OpenAI, vLLM, Ollama); json_object: JSON mode (DeepSeek);
    # none: prose (the agent's answers).  A preset chooses (configteachers.PRESETS); without one, JSON mode,
    # which every OpenAI-compatible server this project knows takes
    response_format: ResponseFormat = "json_object"
    batch_discount: float | None = None  # off the price through the Batch API; None: no Batch API (distill --batch)
    trusted: bool = True  # False: read from a workspace file and not trusted by the user (see .trust)
    origin: str = ""  # the file the entry was read from, for messages

    def cost(self, prompt_tokens: int, cache_hit_tokens: int, completion_tokens: int) -> float:
        miss = max(0, prompt_tokens - cache_hit_tokens)
        per_token = 1e-6
        return per_token * (
            miss * self.price_input + cache_hit_tokens * self.price_cached_input + completion_tokens * self.price_output
        )

    def batch_cost(self, prompt_tokens: int, cache_hit_tokens: int, completion_tokens: int) -> float:
        """What a call costs through the endpoint's Batch API: the price less ``batch_discount``."""
        return self.cost(prompt_tokens, cache_hit_tokens, completion_tokens) * (1.0 - (self.batch_discount or 0.0))

    def to_toml(self) -> dict[str, Any]:
        """The entry as written to arcticcodex.toml (only what differs from the preset)."""
        preset = PRESETS.get(self.preset, {})
        entry: dict[str, Any] = {"name": self.name, "preset": self.preset}
        for key in ("model", "base_url", "api_key_env", "api_key_file", "concurrency", "timeout"):
            value = getattr(self, key)
            if value is not None and value != preset.get(key) and value != "":
                entry[key] = value
        if self.replicas:
            entry["replicas"] = list(self.replicas)
        if self.roles != ROLES:
            entry["roles"] = list(self.roles)
        if self.response_format != preset.get("response_format", "json_object"):
            entry["response_format"] = self.response_format
        return entry


_TEACHER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # the rule of key names (provenance/keystore.py)
TEACHER_NAME_RULE = "1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"


def check_teacher_name(name: str) -> str:
    """``name`` if it can name a teacher (in ``--teachers a,b``, ``critics = [...]``, messages), else ConfigError."""
    if not _TEACHER_NAME.fullmatch(name):
        raise ConfigError(
            f"{escape_controls(repr(name))} is not a valid teacher name: a teacher name is {TEACHER_NAME_RULE}, "
            "e.g. deepseek or gpu-1"
        )
    return name


def teacher_from_entry(entry: Mapping[str, Any], *, where: str) -> TeacherConfig:
    """A TeacherConfig from one teacher table (a command's options): every check a ``[[teachers]]`` entry gets."""
    return _config(teacher_entry(entry, where=where))


def load_teachers(
    config: Config, *, trusted: TrustedTeachers | None = None
) -> tuple[list[TeacherConfig], TeacherPoolSettings]:
    """All teachers and the pool settings of a workspace configuration, each marked trusted or not.

    The entries and ``[teacher_pool]`` were checked when the file was read (:class:`~arcticcodex.config.Config`);
    here a key file is found (it must lie in the data folder or the user's config folder) and trust is
    looked up. ``trusted`` is the user's list (default: the one in the user's config folder).
    """
    entries, pool = config.teachers, config.teacher_pool
    teachers = [_config(entry, origin=str(config.path)) for entry in entries]
    teachers = [  # a key file is named relative to the workspace (the folder holding arcticcodex.toml)
        replace(t, api_key_file=_key_file(t, config)) if t.api_key_file else t for t in teachers
    ]
    if any(t.preset != "local" for t in teachers):
        fingerprints = (trusted or TrustedTeachers.for_user()).fingerprints()
        teachers = [replace(t, trusted=t.preset == "local" or entry_fingerprint(t) in fingerprints) for t in teachers]
    return teachers, pool


def _config(entry: TeacherEntry, *, origin: str = "") -> TeacherConfig:
    return TeacherConfig(**dict(entry), origin=origin)


def _key_file(teacher: TeacherConfig, config: Config) -> str:
    """The key file's real path (see :meth:`~arcticcodex.config.Config.key_file`)."""
    return str(config.key_file(teacher.name, str(teacher.api_key_file)))
