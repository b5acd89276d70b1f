"""The one way ArcticCodex groups database writes: :func:`transaction`, savepoint-aware.

Workspace connections are in autocommit mode (``isolation_level=None``, see
:func:`~arcticcodex.db.connection.connect`): every statement outside an explicit transaction
commits on its own, and ``with conn:`` — which only commits or rolls back a transaction the
``sqlite3`` module opened implicitly — opens none, so two updates under it are two commits and a
crash between them keeps the first and loses the second.  Every writer therefore goes through::

    with transaction(conn):
        conn.execute("UPDATE distill_tasks …")
        conn.execute("UPDATE distill_runs SET spent_usd = spent_usd + ? …")

The outermost level is ``BEGIN IMMEDIATE`` … ``COMMIT``: the write lock is taken up front, so two
processes never both read and then fail to upgrade to a write (in WAL mode a deferred transaction
that must upgrade gets ``SQLITE_BUSY`` at once, without waiting on the busy timeout).  Inside a
transaction — a writer calling another writer — the level is a ``SAVEPOINT``: an error rolls back
that level's writes only, and nothing is committed until the outermost level ends, as in
sqlite-utils' and peewee's ``atomic()``.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["transaction"]

_savepoints = itertools.count(1)  # names only need to differ between nested levels; next() is atomic


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Commit everything written inside the block together, or nothing (see the module docstring).

    Any exception — ``KeyboardInterrupt`` and cancellation included — rolls the level back and is
    re-raised.  When SQLite has already rolled the whole transaction back itself (a full disk, an
    I/O error, ``RAISE(ROLLBACK)``), nothing is left to undo and the original error is what surfaces.
    """
    if not conn.in_transaction:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")  # a COMMIT that fails leaves the transaction open: rolled back below
        except BaseException:
            _rollback(conn)
            raise
        return
    name = f"arcticcodex_{next(_savepoints)}"
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # else SQLite already rolled back the outer transaction, savepoint and all
            conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
            conn.execute(f"RELEASE SAVEPOINT {name}")
        raise
    conn.execute(f"RELEASE SAVEPOINT {name}")


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back unless SQLite already did (a second ROLLBACK would raise and hide the real error)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
