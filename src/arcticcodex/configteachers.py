"""A ``[[teachers]]`` entry of ``arcticcodex.toml`` as a typed model, with the presets that fill it.

Why declarative: the entry used to be checked by one long function, each rule an ``if`` with its
own message.  Here each setting is a typed field (the rule), with what it must be and an example
(:class:`~.configsections.Must`); the few rules a type cannot say — a URL that names a host and holds
no password, a variable *name* rather than a key, a model and a URL the preset did not fill — are
validators.  A preset fills what the entry leaves out; what the entry writes wins.

How replies are constrained (``response_format``) is chosen per preset: ``json_schema`` where the
server decodes to the reply's JSON schema (OpenAI's structured outputs, vLLM's guided decoding,
Ollama), ``json_object`` (JSON mode, with the one re-ask a malformed reply gets) where it does not
(DeepSeek), ``none`` for a server with neither.  An entry may override it; the older ``json_mode``
switch is still read (``false`` is ``none``, ``true`` the preset's choice).

Prices are US dollars per million tokens (input on a cache miss, input on a cache hit, output), from
the providers' pages at the time of writing; override them when they change.  Whether an entry is
trusted, and where its key file really lies, is decided when the teachers are loaded
(:func:`arcticcodex.teachers.entries.load_teachers`), never by the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .configsections import Must, SettingValueError, Table
from .terminal import escape_controls

Role = Literal["critic", "verifier", "rewriter"]
ROLES: tuple[Role, ...] = ("critic", "verifier", "rewriter")
# json_schema: the server constrains decoding to the reply's schema; json_object: JSON mode; none: prose
ResponseFormat = Literal["json_schema", "json_object", "none"]
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = ("json_schema", "json_object", "none")

__all__ = [
    "KEYLESS_PRESETS",
    "OLDER_TEACHER_KEYS",
    "PRESETS",
    "RESPONSE_FORMATS",
    "ResponseFormat",
    "TeacherEntry",
    "check_url",
]

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
        "response_format": "json_object",  # DeepSeek's API offers JSON mode, not JSON schemas
    },
    "openai": {
        "base_url": "https://api.openai.com/v1",
        "model": "gpt-4.1-mini",
        "api_key_env": "OPENAI_API_KEY",
        "price_input": 0.40,
        "price_cached_input": 0.10,
        "price_output": 1.60,
        "batch_discount": 0.5,  # the Batch API (distill --batch) costs half
        "concurrency": 16,
        "timeout": 60.0,
        "response_format": "json_schema",  # structured outputs (strict)
    },
    "vllm": {
        "base_url": "http://127.0.0.1:8000/v1",
        "api_key_env": "VLLM_API_KEY",
        "concurrency": 64,
        "timeout": 120.0,
        "response_format": "json_schema",  # guided decoding
    },
    "ollama": {
        "base_url": "http://127.0.0.1:11434/v1",
        "concurrency": 4,
        "timeout": 300.0,
        "response_format": "json_schema",  # structured outputs through its OpenAI-compatible API
    },
    "local": {"model": "local-judge/v1", "concurrency": 8, "timeout": 60.0},  # offline: sends nothing
}
KEYLESS_PRESETS = frozenset({"vllm", "ollama", "local"})  # a key is optional (vLLM --api-key) or meaningless
# keys an older entry may hold, read into their successors and never written: json_mode (see _read_json_mode)
OLDER_TEACHER_KEYS = frozenset({"json_mode"})

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_URL_EXAMPLE = "e.g. http://127.0.0.1:8000/v1 or https://api.deepseek.com"

Price = Annotated[StrictFloat, Field(allow_inf_nan=False), Must("a number", "0.14")]
Count = Annotated[StrictInt, Field(ge=1), Must("a positive integer", "8")]


def check_url(url: object) -> str:
    """``url`` if it is an http(s) URL with a host and nothing secret in it; else SettingValueError saying why."""
    if not isinstance(url, str):
        raise SettingValueError(f"must be a URL ({_URL_EXAMPLE})")
    shown = escape_controls(repr(url))
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when the port is not a number from 0 to 65535
    except ValueError as exc:
        # from None: the ValueError adds nothing the message does not already say
        raise SettingValueError(f"{shown} is not a URL ({exc}); {_URL_EXAMPLE}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingValueError(f"{shown} must start with http:// or https:// and name a host; {_URL_EXAMPLE}")
    if parts.username is not None or parts.password is not None:  # never echo it: it may hold a password
        raise SettingValueError(
            "holds a user name or password; remove it from the URL and put the key in the environment "
            "variable named by api_key_env"
        )
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in url) or port == 0:
        raise SettingValueError(f"{shown} is not a usable URL; {_URL_EXAMPLE}")
    return url


class TeacherEntry(Table):
    """One ``[[teachers]]`` table, its preset filled in (the fields of :class:`~.teachers.entries.TeacherConfig`)."""

    name: Annotated[StrictStr, Must("a teacher name", '"deepseek"')]
    preset: StrictStr = "openai"
    model: Annotated[StrictStr, Field(validate_default=True), Must("the name the endpoint serves", '"qwen2.5-7b"')] = ""
    base_url: Annotated[StrictStr, Field(validate_default=True), Must("a URL", '"http://127.0.0.1:8000/v1"')] = ""
    api_key_env: StrictStr | None = None
    api_key_file: StrictStr | None = None  # a mode-0600 file holding the key (a rented vLLM's)
    replicas: Annotated[tuple[StrictStr, ...], Must("a list of URLs", '["http://127.0.0.1:8001/v1"]')] = ()
    roles: tuple[Role, ...] = ROLES
    price_input: Price = 0.0
    price_cached_input: Price = 0.0
    price_output: Price = 0.0
    concurrency: Count = 8
    timeout: Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False), Must("positive seconds", "60")] = 60.0
    max_attempts: Count = 4
    temperature: Annotated[StrictFloat, Field(allow_inf_nan=False), Must("a number", "0.2")] = 0.2
    max_tokens: Count = 2048
    response_format: Annotated[ResponseFormat, Must("json_schema, json_object or none", '"json_object"')] = (
        "json_object"
    )
    # the share of the price the endpoint's Batch API takes off (0.5: half price); None: it has no Batch API
    batch_discount: Annotated[
        StrictFloat | None, Field(ge=0.0, lt=1.0, allow_inf_nan=False), Must("a fraction in [0, 1)", "0.5")
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: object) -> object:
        if not isinstance(data, Mapping):
            raise SettingValueError(
                f"must be a table ([[teachers]] with name = …), not {type(data).__name__}", whole=True
            )
        name, preset = data.get("name"), data.get("preset", "openai")
        if not isinstance(name, str) or not name.strip():
            raise SettingValueError("needs a name", whole=True)
        if not isinstance(preset, str) or preset not in PRESETS:
            raise SettingValueError(f"has unknown preset {preset!r}; use one of {', '.join(PRESETS)}", whole=True)
        return _read_json_mode({**PRESETS[preset], **data}, written=data)

    @field_validator("name")
    @classmethod
    def _stripped(cls, value: str) -> str:
        return value.strip()

    @field_validator("model")
    @classmethod
    def _model_given(cls, value: str) -> str:
        if not value:
            raise SettingValueError("needs a model (the name the endpoint serves)", whole=True)
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str, info: ValidationInfo) -> str:
        if not value and info.data.get("preset") != "local":
            raise SettingValueError("needs a base_url", whole=True)
        return check_url(value) if value else value

    @field_validator("api_key_env", mode="before")
    @classmethod
    def _variable_name(cls, value: object) -> object:
        if value is not None and (not isinstance(value, str) or not _ENV_NAME.fullmatch(value)):
            # never echo the value: a key pasted here by mistake must not be repeated in a message or log
            raise SettingValueError(
                "must be the NAME of an environment variable (e.g. DEEPSEEK_API_KEY), not a key; "
                "put the key itself in that variable"
            )
        return value

    @field_validator("api_key_file", mode="before")
    @classmethod
    def _key_file(cls, value: object) -> object:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise SettingValueError("must be the path of a file holding the key")
        return value

    @field_validator("replicas", mode="before")
    @classmethod
    def _replica_list(cls, value: object) -> object:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise SettingValueError('must be a list of URLs such as ["http://127.0.0.1:8001/v1"]')
        return [check_url(url) for url in value]

    @field_validator("roles", mode="before")
    @classmethod
    def _known_roles(cls, value: object) -> object:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise SettingValueError('must be a list such as ["critic", "verifier"]')
        unknown = [role for role in value if role not in ROLES]
        if unknown:
            raise SettingValueError(f"has unknown roles {unknown}; roles are {', '.join(ROLES)}", whole=True)
        return value


def _read_json_mode(filled: dict[str, Any], *, written: Mapping[str, Any]) -> dict[str, Any]:
    """An older entry's ``json_mode`` read as ``response_format`` and dropped; if both are written they must agree.

    ``json_mode = true`` was the default and meant "ask for JSON": it keeps the preset's (best)
    response format.  ``false`` meant prose: ``none``.
    """
    if "json_mode" not in filled:
        return filled
    entry = {key: value for key, value in filled.items() if key != "json_mode"}
    json_mode = filled["json_mode"]
    if not isinstance(json_mode, bool):
        raise SettingValueError(
            f"has json_mode = {json_mode!r}, which must be true or false (e.g. json_mode = true)", whole=True
        )
    chosen = written.get("response_format")
    if chosen is None:
        return {**entry, "response_format": entry.get("response_format", "json_object") if json_mode else "none"}
    if chosen in RESPONSE_FORMATS and json_mode != (chosen != "none"):
        raise SettingValueError(
            f"has json_mode = {str(json_mode).lower()} and response_format = {chosen!r}, which disagree; "
            "json_mode is the older spelling of response_format: remove it",
            whole=True,
        )
    return entry
