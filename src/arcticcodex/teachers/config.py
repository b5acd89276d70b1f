"""Teacher entries in ``arcticcodex.toml``, with presets for DeepSeek, OpenAI, vLLM and Ollama.

::

    [[teachers]]
    name = "deepseek"
    preset = "deepseek"              # fills base_url, model, api_key_env and prices
    model = "deepseek-v4-flash"      # model names change (DeepSeek renamed them in 2026): configuration
    roles = ["critic", "verifier", "rewriter"]

    [teacher_pool]
    critics = ["deepseek", "local"]  # an ensemble of critics (default: every teacher with the role)
    aggregate = "mean"               # mean | min | majority
    budget_usd = 5.0

Secrets never live here: ``api_key_env`` names the environment variable holding the key, and
``api_key_file`` a mode-0600 file that must lie in the workspace's data folder or the user's config
folder.  An entry read from the file is marked ``trusted`` only if the user trusted that exact
entry (:mod:`.trust`); an untrusted one is refused before a key is read or a request is sent.  Prices
are US dollars per million tokens (input on a cache miss, input on a cache hit, output), from the
providers' pages at the time of writing; override them when they change.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import Config, user_config_dir
from ..errors import ConfigError
from ..terminal import escape_controls
from .models import ROLES, Role
from .trust import TrustedTeachers, entry_fingerprint

PRESETS: dict[str, dict[str, Any]] = {
    "deepseek": {
        "base_url": "https://api.deepseek.com",
        "model": "deepseek-v4-flash",
        "api_key_env": "DEEPSEEK_API_KEY",
        "price_input": 0.14,
        "price_cached_input": 0.0028,
        "price_output": 0.28,
        "concurrency": 32,
        "timeout": 120.0,  # DeepSeek holds a connection open (keep-alives) while it queues a request
    },
    "openai": {
        "base_url": "https://api.openai.com/v1",
        "model": "gpt-4.1-mini",
        "api_key_env": "OPENAI_API_KEY",
        "price_input": 0.40,
        "price_cached_input": 0.10,
        "price_output": 1.60,
        "concurrency": 16,
        "timeout": 60.0,
    },
    "vllm": {
        "base_url": "http://127.0.0.1:8000/v1",
        "api_key_env": "VLLM_API_KEY",
        "concurrency": 64,
        "timeout": 120.0,
    },
    "ollama": {"base_url": "http://127.0.0.1:11434/v1", "concurrency": 4, "timeout": 300.0},
    "local": {"model": "local-judge/v1", "concurrency": 8, "timeout": 60.0},
}
KEYLESS_PRESETS = frozenset({"vllm", "ollama", "local"})  # a key is optional (vLLM --api-key) or meaningless


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
    json_mode: bool = True
    trusted: bool = True  # False: read from a workspace file and not trusted by the user (see .trust)
    origin: str = ""  # the file the entry was read from, for messages

    def cost(self, prompt_tokens: int, cache_hit_tokens: int, completion_tokens: int) -> float:
        miss = max(0, prompt_tokens - cache_hit_tokens)
        per_token = 1e-6
        return per_token * (
            miss * self.price_input + cache_hit_tokens * self.price_cached_input + completion_tokens * self.price_output
        )

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
        return entry


@dataclass(frozen=True, slots=True)
class PoolConfig:
    critics: tuple[str, ...] = ()
    aggregate: str = "mean"
    budget_usd: float | None = None
    fallback: tuple[str, ...] = field(default_factory=tuple)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TEACHER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # the rule of key names (provenance/keystore.py)
TEACHER_NAME_RULE = "1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"
_DERIVED = frozenset({"trusted", "origin"})  # decided by load_teachers, never by the file
_NUMBERS = ("price_input", "price_cached_input", "price_output", "timeout", "temperature")


def check_teacher_name(name: str) -> str:
    """``name`` if it can name a teacher (in ``--teachers a,b``, ``critics = [...]``, messages), else ConfigError."""
    if not _TEACHER_NAME.fullmatch(name):
        raise ConfigError(
            f"{escape_controls(repr(name))} is not a valid teacher name: a teacher name is {TEACHER_NAME_RULE}, "
            "e.g. deepseek or gpu-1"
        )
    return name


def check_base_url(url: object, *, where: str, teacher: str, key: str = "base_url") -> str:
    """``url`` if it is an http(s) URL with a host and nothing secret in it, else ConfigError saying why."""
    example = "e.g. http://127.0.0.1:8000/v1 or https://api.deepseek.com"
    if not isinstance(url, str):
        raise ConfigError(f"{where}: teacher {teacher!r}: {key} must be a URL ({example})")
    shown = escape_controls(repr(url))
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when the port is not a number from 0 to 65535
    except ValueError as exc:
        raise ConfigError(f"{where}: teacher {teacher!r}: {key} {shown} is not a URL ({exc}); {example}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{where}: teacher {teacher!r}: {key} {shown} must start with http:// or https:// and name a host; "
            f"{example}"
        )
    if parts.username is not None or parts.password is not None:  # never echo it: it may hold a password
        raise ConfigError(
            f"{where}: teacher {teacher!r}: {key} holds a user name or password; remove it from the URL and "
            "put the key in the environment variable named by api_key_env"
        )
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in url) or port == 0:
        raise ConfigError(f"{where}: teacher {teacher!r}: {key} {shown} is not a usable URL; {example}")
    return url


def teacher_from_entry(entry: Mapping[str, Any], *, where: str) -> TeacherConfig:
    """Build a TeacherConfig from one ``[[teachers]]`` table (or the CLI's options)."""
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: each teacher is a table ([[teachers]] with name = …), not {type(entry).__name__}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: a teacher needs a name")
    preset = entry.get("preset", "openai")
    if preset not in PRESETS:
        raise ConfigError(f"{where}: teacher {name!r} has unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    values: dict[str, Any] = {**PRESETS[preset], **{k: v for k, v in entry.items() if k not in ("name", "preset")}}
    unknown = (set(values) - set(TeacherConfig.__dataclass_fields__)) | (set(values) & _DERIVED)
    if unknown:
        raise ConfigError(f"{where}: teacher {name!r} has unknown settings {sorted(unknown)}")
    if not values.get("model"):
        raise ConfigError(f"{where}: teacher {name!r} needs a model (the name the endpoint serves)")
    if preset != "local" and not values.get("base_url"):
        raise ConfigError(f"{where}: teacher {name!r} needs a base_url")
    if values.get("base_url"):
        check_base_url(values["base_url"], where=where, teacher=name)
    env = values.get("api_key_env")
    if env is not None and (not isinstance(env, str) or not _ENV_NAME.fullmatch(env)):
        # never echo the value: a key pasted here by mistake must not be repeated in a message or log
        raise ConfigError(
            f"{where}: teacher {name!r}: api_key_env must be the NAME of an environment variable "
            "(e.g. DEEPSEEK_API_KEY), not a key; put the key itself in that variable"
        )
    for key in _NUMBERS:
        value = values.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
        ):
            raise ConfigError(f"{where}: teacher {name!r}: {key} must be a number, not {value!r}")
    replicas = values.pop("replicas", ())
    if isinstance(replicas, str) or not isinstance(replicas, list | tuple):
        raise ConfigError(
            f'{where}: teacher {name!r}: replicas must be a list of URLs such as ["http://127.0.0.1:8001/v1"]'
        )
    for url in replicas:
        check_base_url(url, where=where, teacher=name, key="replicas")
    values["replicas"] = tuple(replicas)
    key_file = values.get("api_key_file")
    if key_file is not None and (not isinstance(key_file, str) or not key_file.strip()):
        raise ConfigError(f"{where}: teacher {name!r}: api_key_file must be the path of a file holding the key")
    raw_roles = values.pop("roles", ROLES)
    if isinstance(raw_roles, str) or not isinstance(raw_roles, list | tuple):
        raise ConfigError(f'{where}: teacher {name!r}: roles must be a list such as ["critic", "verifier"]')
    roles = tuple(raw_roles)
    bad = [role for role in roles if role not in ROLES]
    if bad:
        raise ConfigError(f"{where}: teacher {name!r} has unknown roles {bad}; roles are {', '.join(ROLES)}")
    try:
        config = TeacherConfig(name=name.strip(), preset=preset, roles=roles, **values)
    except TypeError as exc:
        raise ConfigError(f"{where}: teacher {name!r}: {exc}") from None
    for key in ("concurrency", "max_attempts", "max_tokens"):
        if not isinstance(getattr(config, key), int) or getattr(config, key) < 1:
            raise ConfigError(f"{where}: teacher {name!r}: {key} must be a positive integer")
    if config.timeout <= 0:
        raise ConfigError(f"{where}: teacher {name!r}: timeout must be positive seconds")
    return config


def load_teachers(config: Config, *, trusted: TrustedTeachers | None = None) -> tuple[list[TeacherConfig], PoolConfig]:
    """All teachers and the pool settings of a workspace configuration, each marked trusted or not.

    ``trusted`` is the user's list (default: the one in the user's config folder).
    """
    raw, path = config.raw, config.path
    entries = raw.get("teachers", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: teachers must be an array of tables ([[teachers]])")
    teachers = [teacher_from_entry(entry, where=str(path)) for entry in entries]
    teachers = [  # a key file is named relative to the workspace (the folder holding arcticcodex.toml)
        replace(t, api_key_file=_key_file(t, config)) if t.api_key_file else t for t in teachers
    ]
    trusted = trusted or TrustedTeachers.for_user()
    fingerprints = trusted.fingerprints() if any(t.preset != "local" for t in teachers) else frozenset()
    teachers = [
        replace(t, trusted=t.preset == "local" or entry_fingerprint(t) in fingerprints, origin=str(path))
        for t in teachers
    ]
    names = [teacher.name for teacher in teachers]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{path}: teacher names must be unique; repeated: {duplicates}")
    pool = raw.get("teacher_pool", {})
    if not isinstance(pool, dict):
        raise ConfigError(f"{path}: [teacher_pool] must be a table")
    aggregate = pool.get("aggregate", "mean")
    if aggregate not in ("mean", "min", "majority"):
        raise ConfigError(f"{path}: [teacher_pool] aggregate must be mean, min or majority")
    budget = pool.get("budget_usd")
    if budget is not None and (not isinstance(budget, int | float) or budget < 0):
        raise ConfigError(f"{path}: [teacher_pool] budget_usd must be a non-negative number")
    critics = tuple(pool.get("critics", ()))
    for critic in critics:
        if critic not in names and critic != "local":
            raise ConfigError(f"{path}: [teacher_pool] critics names unknown teacher {critic!r}")
    return teachers, PoolConfig(critics=critics, aggregate=aggregate, budget_usd=budget)


def _key_file(teacher: TeacherConfig, config: Config) -> str:
    """The key file's real path, which must lie in the workspace's data folder or the user's config folder.

    Anywhere else (``~/.ssh/id_ed25519``, ``/etc/…``, a symlink out) a cloned configuration could
    have a file's content sent as an API key; the real path is checked, so a symlink cannot escape.
    """
    named = Path(str(teacher.api_key_file)).expanduser()
    real = (config.path.parent / named).resolve()
    allowed = (config.data_dir.resolve(), user_config_dir().resolve())
    if not any(real.is_relative_to(folder) for folder in allowed):
        raise ConfigError(
            f"{config.path}: teacher {teacher.name!r}: api_key_file {named} resolves to {real}, outside the "
            f"workspace's data folder ({allowed[0]}) and your config folder ({allowed[1]}); move the key file "
            "into one of them (mode 0600), or use api_key_env"
        )
    return str(real)


def with_overrides(config: TeacherConfig, **changes: Any) -> TeacherConfig:
    return replace(config, **changes)
