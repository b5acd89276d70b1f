"""Numbered, transactional schema migrations, applied when a database is opened.

A :class:`Migrations` set is a named, ordered list of steps; a step is a function of the connection::

    def create_meta(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE workspace_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    core = Migrations("workspace", [create_meta])     # step 1; a later step is appended as step 2

Sets are plain values: nothing registers itself anywhere by being imported.  The workspace's sets,
in the order they are applied, are :data:`~arcticcodex.db.schema.WORKSPACE_MIGRATIONS`, which
:func:`~arcticcodex.db.connection.connect` is given explicitly.

:meth:`Migrations.apply` runs every pending step in number order, each inside its own
``BEGIN IMMEDIATE`` transaction together with the row that records it, so a failing step leaves
neither half-made tables nor a record behind and stays pending.  Steps therefore must not call
``executescript`` (it commits); :func:`run_script` splits a script into statements safely.
A database that records a step this code does not know was written by a newer ArcticCodex and is
refused rather than guessed at.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import MigrationError
from .transaction import transaction

__all__ = ["Migration", "MigrationStep", "Migrations", "run_script"]

MigrationStep = Callable[[sqlite3.Connection], None]

_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?(?:\*/|\Z)", re.DOTALL)

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    migration_set TEXT NOT NULL,
    number INTEGER NOT NULL,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (migration_set, number)
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    number: int
    name: str
    step: MigrationStep


class Migrations:
    """A named, ordered set of migration steps (see the module docstring)."""

    def __init__(self, name: str, steps: Sequence[MigrationStep] = ()) -> None:
        """``steps`` become steps 1, 2, 3 … in their order (the name each records is the function's)."""
        self.name = name
        self._steps: dict[int, Migration] = {}
        for number, step in enumerate(steps, start=1):
            self(number)(step)

    def __call__(self, number: int) -> Callable[[MigrationStep], MigrationStep]:
        """Register the decorated function as step ``number`` (1, 2, 3 … without gaps)."""

        def register(step: MigrationStep) -> MigrationStep:
            if number in self._steps:
                raise ValueError(f"migration {self.name} #{number} is registered twice")
            if number != len(self._steps) + 1:
                raise ValueError(f"migration {self.name} #{number} registered out of order")
            self._steps[number] = Migration(number, step.__name__, step)
            return step

        return register

    @property
    def steps(self) -> list[Migration]:
        return [self._steps[number] for number in sorted(self._steps)]

    def applied(self, conn: sqlite3.Connection) -> list[int]:
        _ensure_ledger(conn)
        rows = conn.execute(
            "SELECT number FROM schema_migrations WHERE migration_set = ? ORDER BY number", (self.name,)
        )
        return [number for (number,) in rows]

    def pending(self, conn: sqlite3.Connection) -> list[Migration]:
        done = set(self.applied(conn))
        return [migration for migration in self.steps if migration.number not in done]

    def apply(self, conn: sqlite3.Connection) -> list[Migration]:
        """Run the pending steps; return those this call applied."""
        if conn.in_transaction:
            raise MigrationError("migrations must start outside a transaction")
        known = {migration.number for migration in self.steps}
        unknown = [number for number in self.applied(conn) if number not in known]
        if unknown:
            raise MigrationError(
                f"the database has {self.name} schema step(s) {unknown} that this version of "
                "ArcticCodex does not know; it was written by a newer version — upgrade arcticcodex "
                "(pip install -U arcticcodex) to open it"
            )
        ran: list[Migration] = []
        if not self.pending(conn):
            return ran  # the common case: no write lock taken, so readers never wait for writers
        for migration in self.steps:
            try:
                with transaction(conn):  # outside any transaction (checked above): BEGIN IMMEDIATE … COMMIT
                    already = conn.execute(
                        "SELECT 1 FROM schema_migrations WHERE migration_set = ? AND number = ?",
                        (self.name, migration.number),
                    ).fetchone()
                    if already:  # another process got here first
                        continue
                    migration.step(conn)
                    conn.execute(
                        "INSERT INTO schema_migrations (migration_set, number, name, applied_at) VALUES (?, ?, ?, ?)",
                        (self.name, migration.number, migration.name, datetime.now(UTC).isoformat()),
                    )
            except sqlite3.Error as exc:
                raise MigrationError(
                    f"schema migration {self.name} #{migration.number} ({migration.name}) failed and "
                    f"was rolled back: {exc}"
                ) from exc
            ran.append(migration)
        return ran


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Execute each statement of ``script`` inside the current transaction (unlike executescript).

    A statement ends at a ``;`` that :func:`sqlite3.complete_statement` agrees ends one (not one in a
    string, a comment or a trigger body), so several statements may share a line; comments after the
    last statement are ignored, and anything else left over is an incomplete statement.
    """
    pieces = script.split(";")
    statement = ""
    for piece in pieces[:-1]:
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    statement += pieces[-1]
    if _SQL_COMMENT.sub("", statement).strip():
        raise ValueError(f"incomplete SQL statement at the end of the script: {statement.strip()[:60]!r}")


def _ensure_ledger(conn: sqlite3.Connection) -> None:
    conn.execute(_LEDGER)
