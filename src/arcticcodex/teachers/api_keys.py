"""An OpenAI-compatible teacher's API key: from the environment or a 0600 key file, never from the config.

Why apart from the client: the key is read by the teacher at construction, by ``gpu`` when it
registers a rented instance's key file, and named (never shown) by ``teachers ping`` when an entry
is not trusted — the rules for where a key may come from live in one place.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError, TrustError, UnsafeFileError
from ..fileio import read_plain_file
from .entries import KEYLESS_PRESETS, TeacherConfig
from .trust import key_source

__all__ = ["MAX_KEY_FILE_BYTES", "key_from_environment", "read_key_file", "untrusted_teacher_error"]

MAX_KEY_FILE_BYTES = 4096  # an API key is a line; a larger "key file" is something else


def untrusted_teacher_error(config: TeacherConfig) -> TrustError:
    """Why an entry read from a workspace file is not used, and the command that trusts it."""
    urls = ", ".join((config.base_url, *config.replicas))
    return TrustError(
        f"teacher {config.name!r} in {config.origin or 'arcticcodex.toml'} is not trusted: it would send your "
        f"prompts and vault evidence to {urls} with the key from {key_source(config)}; nothing was sent. "
        f"If you wrote this entry (or have checked it), trust it with `arcticcodex teachers trust {config.name}`"
    )


def key_from_environment(config: TeacherConfig, environ: Mapping[str, str]) -> str:
    if config.api_key_file:
        return read_key_file(Path(config.api_key_file), teacher=config.name)
    if config.api_key_env and environ.get(config.api_key_env):
        return environ[config.api_key_env]
    if config.preset in KEYLESS_PRESETS:
        return "not-needed"  # the SDK insists on a value; vLLM without --api-key and Ollama ignore it
    variable = config.api_key_env or "an API key variable"
    raise ConfigError(
        f"teacher {config.name} needs an API key: set {variable} in the environment "
        f"(e.g. export {config.api_key_env or 'DEEPSEEK_API_KEY'}=…); keys are never stored in arcticcodex.toml"
    )


def read_key_file(path: Path, *, teacher: str) -> str:
    """A key kept in a file: a small plain file, readable by its owner only, holding one line."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        data = read_plain_file(path, limit=MAX_KEY_FILE_BYTES, what="key file", follow_symlinks=True)
        key = data.decode("utf-8").strip()
    except UnsafeFileError as error:
        # from None: the UnsafeFileError adds nothing the message does not already say
        raise ConfigError(f"teacher {teacher}: {error}") from None
    except UnicodeDecodeError:
        # from None: the UnicodeDecodeError would quote bytes of the key file, a secret
        raise ConfigError(f"teacher {teacher}: the key file {path} is not UTF-8 text") from None
    except OSError as error:
        # from None: the OSError adds nothing the message does not already say
        raise ConfigError(f"teacher {teacher}: cannot read its key file {path} ({error.strerror})") from None
    if mode & 0o077:
        raise ConfigError(f"teacher {teacher}: the key file {path} is readable by others ({mode:04o}); chmod 600 it")
    if not key or "\n" in key:
        raise ConfigError(f"teacher {teacher}: the key file {path} must hold the key on one line")
    return key
