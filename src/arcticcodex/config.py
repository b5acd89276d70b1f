"""Workspace discovery and ``arcticcodex.toml``, read once into typed settings.

A workspace is a folder holding ``arcticcodex.toml``.  Commands find it, in this order: the
``--workspace`` option, the ``ARCTICCODEX_WORKSPACE`` environment variable, then the current
directory and its parents (as git finds ``.git``).  Configuration is read when a workspace is opened,
never at import time, and secrets are never stored in it: the file names environment variables and
key files, not their contents.

:class:`Config` is the one reading of the file: every table becomes its typed model
(:mod:`.configsections`, :mod:`.configteachers`; the whole file is :class:`.configschema.Settings`),
so the library and the command line see the same values — ``[gpu]``'s timeouts included.  An unknown
name, ``[workspace]`` and ``[signing]`` are refused when the file is read; any other table's error is
raised where that table is used (a wrong ``[gpu]`` value stops GPU commands, not ``vault import``).
Every command that changes the file goes through :mod:`.configfile`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .configschema import Read, Settings, check_names, read_tables
from .configsections import (
    DEFAULT_DATA_DIR,
    DistillSettings,
    GpuSettings,
    SigningSettings,
    TeacherPoolSettings,
    VaultSettings,
    WorkspaceSettings,
)
from .configteachers import TeacherEntry
from .errors import ConfigError, UnsafeFileError, WorkspaceNotFoundError
from .fileio import read_plain_file

__all__ = [
    "CONFIG_NAME",
    "CONFIG_TEMPLATE",
    "DEFAULT_DATA_DIR",
    "WORKSPACE_ENV",
    "Config",
    "find_workspace_root",
    "read_config_text",
    "user_config_dir",
]

CONFIG_NAME = "arcticcodex.toml"
WORKSPACE_ENV = "ARCTICCODEX_WORKSPACE"
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

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Config:
    """The ``arcticcodex.toml`` of one workspace: ``raw`` as TOML has it, each table as its typed model.

    ``raw`` is what :mod:`.configfile` compares an edit against; everything else reads the models.
    ``text``, the file itself, only serves to name lines in messages.
    """

    path: Path
    raw: Mapping[str, Any]
    text: str = field(default="", repr=False, compare=False)
    data_dir: Path = field(init=False)
    _tables: Mapping[str, Read] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tables", read_tables(self.raw, self.text, self.path))
        object.__setattr__(self, "data_dir", (self.path.parent / self.workspace.data_dir).resolve())
        self._table("signing", SigningSettings)  # every command may sign: refused now, not halfway through one

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
            # from None: the TOMLDecodeError adds nothing the message does not already say
            raise ConfigError(f"{path} is not valid TOML: {exc}; fix the file or re-create it") from None
        except RecursionError:
            # from None: the RecursionError adds nothing the message does not already say
            raise ConfigError(f"{path} nests arrays or tables too deeply to be a configuration") from None
        check_names(raw, text, path)
        return cls(path=path, raw=raw, text=text)

    # -- the tables, typed ---------------------------------------------------------------------------

    @property
    def workspace(self) -> WorkspaceSettings:
        return self._table("workspace", WorkspaceSettings)

    @property
    def signing(self) -> SigningSettings:
        return self._table("signing", SigningSettings)

    @property
    def signing_key(self) -> str | None:
        """``[signing] key``: the key datasets are signed with when a command names none."""
        return self.signing.key

    @property
    def vault(self) -> VaultSettings:
        return self._table("vault", VaultSettings)

    @property
    def teacher_pool(self) -> TeacherPoolSettings:
        """``[teacher_pool]``, its critics checked against the teachers (so the teachers are checked too)."""
        self._table("teachers", tuple)
        return self._table("teacher_pool", TeacherPoolSettings)

    @property
    def teachers(self) -> tuple[TeacherEntry, ...]:
        """The ``[[teachers]]`` entries, presets filled in, names unique (trust is decided by their loader)."""
        entries: tuple[TeacherEntry, ...] = self._table("teachers", tuple)
        return entries

    def key_file(self, teacher: str, api_key_file: str) -> Path:
        """Teacher ``teacher``'s key file, which must really lie in the data folder or the user's config folder.

        Anywhere else (``~/.ssh/id_ed25519``, ``/etc/…``, a symlink out) a cloned configuration could
        have a file's content sent as an API key; the real path is checked, so a symlink cannot escape.
        """
        named = Path(api_key_file).expanduser()
        real = (self.path.parent / named).resolve()
        allowed = (self.data_dir.resolve(), user_config_dir().resolve())
        if not any(real.is_relative_to(folder) for folder in allowed):
            raise ConfigError(
                f"{self.path}: teacher {teacher!r}: api_key_file {named} resolves to {real}, outside the "
                f"workspace's data folder ({allowed[0]}) and your config folder ({allowed[1]}); move the key file "
                "into one of them (mode 0600), or use api_key_env"
            )
        return real

    @property
    def gpu(self) -> GpuSettings:
        return self._table("gpu", GpuSettings)

    @property
    def distill(self) -> DistillSettings:
        return self._table("distill", DistillSettings)

    @property
    def settings(self) -> Settings:
        """The whole file as one model (ConfigError for the first table that is refused)."""
        return Settings(**{name: getattr(self, name) for name in Settings.model_fields})

    def _table(self, name: str, kind: type[_T]) -> _T:
        read = self._tables[name]
        if isinstance(read, ConfigError):
            raise read
        if not isinstance(read, kind):  # pragma: no cover - read_tables reads each name with its model
            raise TypeError(f"[{name}] was read as {type(read).__name__}, not {kind.__name__}")
        return read


def read_config_text(path: Path) -> str:
    """The text of the configuration file ``path``: a plain UTF-8 file (a link to one is fine) of at most 1 MB."""
    try:
        data = read_plain_file(path, limit=MAX_CONFIG_BYTES, what="the configuration", follow_symlinks=True)
        return data.decode("utf-8")
    except UnsafeFileError as exc:
        # from None: the UnsafeFileError adds nothing the message does not already say
        raise ConfigError(f"{exc}; {CONFIG_NAME} must be a small text file") from None
    except UnicodeDecodeError as exc:
        # from None: the UnicodeDecodeError adds nothing the message does not already say
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}); fix the file or re-create it") from None
    except OSError as exc:
        # from None: the OSError adds nothing the message does not already say
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def find_workspace_root(
    explicit: Path | str | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The folder holding ``arcticcodex.toml`` (see the module docstring for the search order)."""
    environ = os.environ if environ is None else environ
    if explicit is not None:
        return _require_config(Path(explicit), "workspace", parameters=["workspace"])
    from_env = environ.get(WORKSPACE_ENV)
    if from_env:
        return _require_config(Path(from_env), WORKSPACE_ENV)
    start = (cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise WorkspaceNotFoundError(
        f"no ArcticCodex workspace in {start} or any folder above it; run `arcticcodex init` to create "
        f"one here, name one (`arcticcodex --workspace DIR …`), or set {WORKSPACE_ENV}"
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


def _require_config(folder: Path, origin: str, *, parameters: Sequence[str] = ()) -> Path:
    folder = folder.expanduser().resolve()
    if not (folder / CONFIG_NAME).is_file():
        raise WorkspaceNotFoundError(
            f"{origin} points at {folder}, which has no {CONFIG_NAME}; run `arcticcodex init {folder}` "
            "to create a workspace there",
            parameters=parameters,
        )
    return folder
