"""The connection factory: the one place a SQLite connection to the workspace database is made.

Every connection is set up the same way — autocommit (writes that belong together go through
:func:`~arcticcodex.db.transaction.transaction`), WAL, foreign keys on, a 30-second busy timeout —
and the migration sets it is given are applied before it is handed out, so no code ever sees an
old schema.  Which sets those are is the caller's explicit choice (the workspace passes
:data:`~arcticcodex.db.schema.WORKSPACE_MIGRATIONS`), never whatever modules happened to be imported.

A connection may be handed to another thread (``check_same_thread=False``; the sqlite3 module is built
thread-safe, ``sqlite3.threadsafety == 3``): a ``*_sync`` wrapper called inside a running event loop
(a notebook) runs the coroutine on a worker thread while the caller waits (:mod:`arcticcodex._sync`),
and the coroutine uses the caller's connections.  It is a hand-over, never sharing: the Studio still
gives each worker thread its own connection.

Private by default: the database holds the user's documents, so its file is created by us
(``O_CREAT``, 0600) before SQLite opens it — SQLite gives its ``-wal`` and ``-shm`` files the main
file's permissions — and the files of an older database are tightened each time it is opened.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from ..errors import StoreError
from ..fileio import make_private
from .migrations import Migrations

__all__ = ["PRIVATE_FILE_MODE", "connect"]

PRIVATE_FILE_MODE = 0o600
BUSY_TIMEOUT_S = 30
_DATABASE_SUFFIXES = ("", "-wal", "-shm", "-journal")  # SQLite's files beside the database


def connect(path: Path, migrations: Sequence[Migrations]) -> sqlite3.Connection:
    """A connection to the database at ``path``, with ``migrations`` applied in their order.

    The connection is in autocommit mode (``isolation_level=None``): a statement on its own commits
    at once, and ``with conn:`` opens no transaction here.  A file that is not a database, a locked
    or read-only one, raise :class:`~arcticcodex.errors.StoreError` naming the file and the fix.
    """
    names = [each.name for each in migrations]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"migration sets {repeated} are given twice; each set is applied once, by its name")
    _prepare_database_file(path)
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the workspace database {path}: {exc}") from exc
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        for each in migrations:
            each.apply(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _unusable(path, exc) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _unusable(path: Path, exc: sqlite3.DatabaseError) -> StoreError:
    """What to tell the user about a database SQLite refused: corrupt, busy, read-only or otherwise."""
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
        return StoreError(
            f"{path} is not a usable SQLite database ({exc}); move it aside and run "
            "`arcticcodex init` to create a fresh one"
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        advice = "another process is writing to it; try again when it has finished"
    elif name.startswith("SQLITE_READONLY"):
        advice = "it is read-only; check the permissions of the file and its folder"
    else:
        advice = "check the disk and the file's permissions"
    return StoreError(f"cannot use the workspace database {path} ({exc}): {advice}")


def _prepare_database_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does, and tighten the files of an older one.

    Why first: SQLite creates a new database with 0644 (less the umask) and gives its ``-wal`` and
    ``-shm`` files the main file's permissions, so a main file made 0600 here keeps all of them private.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(
            f"cannot create the workspace database {path}: {exc.strerror}; check the permissions of {path.parent}"
        ) from exc
    else:
        try:
            os.fchmod(fd, PRIVATE_FILE_MODE)  # exact, whatever the umask took away
        finally:
            os.close(fd)
    for suffix in _DATABASE_SUFFIXES:
        make_private(path.with_name(path.name + suffix))
