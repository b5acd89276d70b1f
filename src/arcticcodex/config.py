"""Workspace discovery and ``arcticcodex.toml``.

A workspace is a folder holding ``arcticcodex.toml``.  Commands find it, in this order: the
``--workspace`` option, the ``ARCTICCODEX_WORKSPACE`` environment variable, then the current
directory and its parents (as git finds ``.git``).  Configuration is read when a workspace is opened,
never at import time, and secrets are never stored in it: the file names environment variables and
key files, not their contents.  Every table and key it may hold is listed in :mod:`.configschema`
(anything else is an error naming the line); every command that changes it goes through
:mod:`.configfile`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .configschema import check_names
from .errors import ConfigError, UnsafeFileError, WorkspaceNotFoundError
from .fileio import read_plain_file

CONFIG_NAME = "arcticcodex.toml"
WORKSPACE_ENV = "ARCTICCODEX_WORKSPACE"
DEFAULT_DATA_DIR = ".arcticcodex"
USER_CONFIG_ENV = "ARCTICCODEX_CONFIG_DIR"
MAX_CONFIG_BYTES = 1 << 20

CONFIG_TEMPLATE = """\
# ArcticCodex workspace configuration.
# Secrets never go in this file: teachers name the environment variable that holds their API key,
# and signing keys live in the data folder's keys/ directory (private keys mode 0600).

[workspace]
# Folder (relative to this file) holding the database, keys and runs.
data_dir = {data_dir}

[signing]
# Name of the key in keys/ that signs datasets (`arcticcodex init` made "dataset"; more with `arcticcodex keys new`).
key = "dataset"
"""


@dataclass(frozen=True, slots=True)
class Config:
    """The parsed ``arcticcodex.toml`` of one workspace."""

    path: Path
    data_dir: Path
    signing_key: str | None
    raw: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path) -> Config:
        """Read ``path``, which may come from a cloned folder: a plain file of at most 1 MB, valid TOML."""
        return cls.from_text(read_config_text(path), path)

    @classmethod
    def from_text(cls, text: str, path: Path) -> Config:
        """The configuration ``text`` would be at ``path``: every check :meth:`load` makes, nothing written."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}; fix the file or re-create it") from None
        except RecursionError:
            raise ConfigError(f"{path} nests arrays or tables too deeply to be a configuration") from None
        workspace = _table(raw, "workspace", path)
        signing = _table(raw, "signing", path)
        data_dir = workspace.get("data_dir", DEFAULT_DATA_DIR)
        if not isinstance(data_dir, str) or not data_dir.strip():
            raise ConfigError(f"{path}: [workspace] data_dir must be a non-empty string, e.g. {DEFAULT_DATA_DIR!r}")
        written = Path(data_dir)
        if written.is_absolute() or ".." in written.parts:
            # key files are accepted from the data folder (teachers/config.py): a configuration must not be
            # able to name ~/.ssh, or any folder outside, as its data folder (a symlink the user made is fine)
            raise ConfigError(
                f"{path}: [workspace] data_dir {data_dir!r} leaves the workspace; write it as a folder inside "
                f"it, relative to {path.name}, e.g. {DEFAULT_DATA_DIR!r} (link it elsewhere if it must live "
                "on another disk)"
            )
        folder = (path.parent / written).resolve()
        key = signing.get("key")
        if key is not None and (not isinstance(key, str) or not key.strip()):
            raise ConfigError(f'{path}: [signing] key must be the name of a key in keys/, e.g. "dataset"')
        check_names(raw, text, path)  # after the checks above, whose messages name the setting without a line
        return cls(path=path, data_dir=folder, signing_key=key, raw=raw)


def read_config_text(path: Path) -> str:
    """The text of the configuration file ``path``: a plain UTF-8 file (a link to one is fine) of at most 1 MB."""
    try:
        data = read_plain_file(path, limit=MAX_CONFIG_BYTES, what="the configuration", follow_symlinks=True)
        return data.decode("utf-8")
    except UnsafeFileError as exc:
        raise ConfigError(f"{exc}; {CONFIG_NAME} must be a small text file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}); fix the file or re-create it") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def _table(raw: Mapping[str, Any], name: str, path: Path) -> Mapping[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    return table


def find_workspace_root(
    explicit: Path | str | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The folder holding ``arcticcodex.toml`` (see the module docstring for the search order)."""
    environ = os.environ if environ is None else environ
    if explicit is not None:
        return _require_config(Path(explicit), "--workspace")
    from_env = environ.get(WORKSPACE_ENV)
    if from_env:
        return _require_config(Path(from_env), WORKSPACE_ENV)
    start = (cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise WorkspaceNotFoundError(
        f"no ArcticCodex workspace in {start} or any folder above it; run `arcticcodex init` to create "
        f"one here, pass --workspace DIR, or set {WORKSPACE_ENV}"
    )


def user_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user's own ArcticCodex folder: where trust decisions live, out of any workspace's reach.

    ``ARCTICCODEX_CONFIG_DIR`` if set, else ``$XDG_CONFIG_HOME/arcticcodex``, else
    ``~/.config/arcticcodex``.  Nothing a workspace holds can name or move it: a cloned folder's
    ``arcticcodex.toml`` must never be able to declare itself trusted.
    """
    environ = os.environ if environ is None else environ
    explicit = environ.get(USER_CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return (base / "arcticcodex").resolve()


def _require_config(folder: Path, origin: str) -> Path:
    folder = folder.expanduser().resolve()
    if not (folder / CONFIG_NAME).is_file():
        raise WorkspaceNotFoundError(
            f"{origin} points at {folder}, which has no {CONFIG_NAME}; run `arcticcodex init {folder}` "
            "to create a workspace there"
        )
    return folder
