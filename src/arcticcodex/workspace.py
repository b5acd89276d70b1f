"""A workspace: ``arcticcodex.toml`` plus a data folder with the database, keys and runs.

::

    my-project/
      arcticcodex.toml
      .arcticcodex/
        arcticcodex.db      SQLite (WAL); schema migrations run every time it is opened
        keys/               signing keys (private key files mode 0600, folder 0700)
        runs/               per-run artefacts (logs, partial datasets)

:meth:`Workspace.connect` is the one way code gets a database connection: it hands the database
to the persistence layer's factory (:func:`arcticcodex.db.connect`) with every migration set the
workspace has (:data:`arcticcodex.db.WORKSPACE_MIGRATIONS`), so every table exists, in its current
shape, before any code sees the connection.

Private by default: the database holds the user's documents, so the data folder and its folders are
0700 and the database 0600 whatever the umask (the factory creates the database file itself, see
:mod:`arcticcodex.db.connection`).  A workspace made by an older version, or under a loose umask, is
tightened quietly each time it is opened: there is nothing for the user to decide, and nothing of
theirs needs others to read it.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Mapping
from pathlib import Path

from . import configfile, db
from .config import CONFIG_NAME, DEFAULT_DATA_DIR, Config, find_workspace_root
from .errors import ConfigError, UnsafeFileError
from .fileio import make_private, read_plain_file, write_atomically

DATABASE_NAME = "arcticcodex.db"
GITIGNORE_NAME = ".gitignore"
MAX_GITIGNORE_BYTES = 1 << 20
PRIVATE_FOLDER_MODE = 0o700


class Workspace:
    """An opened workspace; construct with :meth:`open`, :meth:`discover` or :meth:`init`."""

    def __init__(self, root: Path, config: Config) -> None:
        self.root = root
        self.config = config

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def open(cls, root: Path | str) -> Workspace:
        root = Path(root).expanduser().resolve()
        config_path = root / CONFIG_NAME
        if not config_path.is_file():
            raise ConfigError(f"{root} is not a workspace (no {CONFIG_NAME}); run `arcticcodex init {root}`")
        return cls(root, Config.load(config_path))

    @classmethod
    def discover(
        cls,
        explicit: Path | str | None = None,
        *,
        cwd: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Workspace:
        """Open the workspace named by ``explicit``, ``ARCTICCODEX_WORKSPACE`` or found upwards."""
        return cls.open(find_workspace_root(explicit, cwd=cwd, environ=environ))

    @classmethod
    def init(cls, root: Path | str, *, data_dir: str = DEFAULT_DATA_DIR) -> tuple[Workspace, bool]:
        """Create a workspace in ``root`` (made if missing); return it and whether it was new.

        Initialising an existing workspace changes nothing in its configuration; it only makes sure
        the folders exist and the database is migrated.
        """
        root = Path(root).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        config_path = root / CONFIG_NAME
        created = not config_path.exists()
        if created:
            if not data_dir.strip() or "\n" in data_dir:
                raise ConfigError(
                    f"data_dir must be a folder name such as {DEFAULT_DATA_DIR!r}, not {data_dir!r}",
                    parameters=["data_dir"],
                )
            configfile.create(config_path, data_dir=data_dir)
        workspace = cls.open(root)
        workspace.ensure_layout()
        workspace.connect().close()
        return workspace, created

    def ensure_gitignore(self) -> str:
        """Have ``.gitignore`` beside ``arcticcodex.toml`` keep the data folder out of git; say what was done.

        Why: the data folder holds private signing keys and the user's documents, and a workspace is
        often a git repository (or becomes one).  An existing ``.gitignore`` is never rewritten, only
        appended to, and only when no line of it names the data folder already; one that is a link,
        or not a plain file, is left alone (the answer says so).
        """
        path = self.root / GITIGNORE_NAME
        written = self.config.workspace.data_dir
        folder = Path(written).as_posix().strip("/").removeprefix("./")
        try:
            text = read_plain_file(path, limit=MAX_GITIGNORE_BYTES, what=GITIGNORE_NAME).decode("utf-8")
        except FileNotFoundError:
            text = None
        except (UnsafeFileError, UnicodeDecodeError) as exc:
            return f"left as it is ({exc}); add the line /{folder}/ to it yourself"
        pattern = _gitignore_escape(folder)
        if text is not None and any(line.strip().strip("/") in (folder, pattern) for line in text.splitlines()):
            return f"already keeps /{folder}/ out of git"
        lines = f"# ArcticCodex: the database, signing keys and runs stay out of git\n/{pattern}/\n"
        if text is None:
            write_atomically(path, lines.encode("utf-8"))
            return f"written: keeps /{folder}/ out of git"
        mode = stat.S_IMODE(os.stat(path).st_mode)
        separator = "" if not text or text.endswith("\n\n") else "\n" if text.endswith("\n") else "\n\n"
        write_atomically(path, (text + separator + lines).encode("utf-8"), mode=mode)
        return f"appended /{folder}/ (keeps it out of git)"

    # -- layout -------------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def database_path(self) -> Path:
        return self.data_dir / DATABASE_NAME

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    def ensure_layout(self) -> None:
        """Make the data folder, ``keys/`` and ``runs/`` (0700), tightening any that others can enter."""
        for folder in (self.data_dir, self.keys_dir, self.runs_dir):
            folder.mkdir(mode=PRIVATE_FOLDER_MODE, parents=True, exist_ok=True)
            make_private(folder)
        os.chmod(self.keys_dir, PRIVATE_FOLDER_MODE)

    # -- database -----------------------------------------------------------------------------------

    def connect(self) -> sqlite3.Connection:
        """A connection to the workspace database, with every table of :data:`~arcticcodex.db.WORKSPACE_MIGRATIONS`.

        The connection is in autocommit mode (``isolation_level=None``): a statement on its own
        commits at once, and writes that belong together go through
        :func:`~arcticcodex.db.transaction` (``with conn:`` opens no transaction here).
        """
        self.ensure_layout()
        return db.connect(self.database_path, db.WORKSPACE_MIGRATIONS)

    def meta(self) -> dict[str, str]:
        conn = self.connect()
        try:
            return dict(conn.execute("SELECT key, value FROM workspace_meta").fetchall())
        finally:
            conn.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"


def _gitignore_escape(folder: str) -> str:
    """``folder`` as a .gitignore pattern that matches only itself (wildcards and a leading ! escaped)."""
    return "".join(f"\\{char}" if char in "*?[\\!#" else char for char in folder)
