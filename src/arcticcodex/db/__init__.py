"""The persistence layer: how ArcticCodex opens, changes and migrates the workspace database.

::

    connection.py    connect(path, migrations): the one connection factory (autocommit, WAL, foreign keys, 0600)
    transaction.py   transaction(conn): the one way writes are grouped (BEGIN IMMEDIATE, savepoints inside)
    migrations.py    Migrations: numbered steps, each applied once in its own transaction; run_script
    schema.py        every table, as the migration sets WORKSPACE_MIGRATIONS lists in the order applied

Code above this layer gets a connection from :meth:`arcticcodex.workspace.Workspace.connect`, which
passes :data:`WORKSPACE_MIGRATIONS` to :func:`connect`, and writes through :func:`transaction`.
This package imports nothing of ArcticCodex but its errors and file helpers.
"""

from __future__ import annotations

from .connection import connect
from .migrations import Migration, Migrations, MigrationStep, run_script
from .schema import WORKSPACE_MIGRATIONS
from .transaction import transaction

__all__ = ["WORKSPACE_MIGRATIONS", "Migration", "MigrationStep", "Migrations", "connect", "run_script", "transaction"]
