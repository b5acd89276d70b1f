"""The one transaction helper: all or nothing, savepoints when nested, the write lock taken up front.

Every check looks at the database through a second, independent connection (as another process would),
so "committed" means on disk for everyone, not merely visible to the connection that wrote it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from arcticcodex.db import transaction
from arcticcodex.distill.journal import RunJournal, TaskOutcome
from arcticcodex.teachers.cache import RequestCache
from arcticcodex.teachers.ledger import Ledger
from arcticcodex.teachers.results import Usage
from arcticcodex.workspace import Workspace


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "t.db"


@pytest.fixture
def conn(db: Path) -> Iterator[sqlite3.Connection]:
    """An autocommit connection, as Workspace.connect makes them, with one table."""
    connection = sqlite3.connect(db, isolation_level=None, timeout=5)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t (v INTEGER)")
    yield connection
    connection.close()


def values(db: Path) -> list[int]:
    """What another connection sees."""
    other = sqlite3.connect(db)
    try:
        return [v for (v,) in other.execute("SELECT v FROM t ORDER BY v")]
    finally:
        other.close()


def test_writes_commit_together_and_only_at_the_end(db: Path, conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        assert values(db) == []  # not yet committed: another reader sees nothing
        conn.execute("INSERT INTO t VALUES (2)")
    assert values(db) == [1, 2]
    assert not conn.in_transaction


def test_an_error_rolls_everything_back_and_is_raised(db: Path, conn: sqlite3.Connection) -> None:
    with pytest.raises(KeyboardInterrupt), transaction(conn):  # a Ctrl-C mid-write, too
        conn.execute("INSERT INTO t VALUES (1)")
        raise KeyboardInterrupt
    assert values(db) == []
    assert not conn.in_transaction


def test_a_nested_level_is_a_savepoint(db: Path, conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(ValueError, match="inner"), transaction(conn):
            conn.execute("INSERT INTO t VALUES (2)")
            raise ValueError("inner")
        with transaction(conn):  # a nested level that succeeds commits nothing by itself
            conn.execute("INSERT INTO t VALUES (3)")
        assert values(db) == []
    assert values(db) == [1, 3]  # the failed level's write alone was undone


def test_an_error_in_a_nested_level_that_escapes_undoes_the_outer_level_too(db: Path, conn: sqlite3.Connection) -> None:
    with pytest.raises(ValueError), transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        with transaction(conn):
            conn.execute("INSERT INTO t VALUES (2)")
            raise ValueError("escapes")
    assert values(db) == []


def test_the_write_lock_is_taken_up_front(db: Path, conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE: a second writer waits from the first statement on, not only from the first write."""
    other = sqlite3.connect(db, isolation_level=None, timeout=0)
    try:
        with transaction(conn):
            conn.execute("SELECT count(*) FROM t").fetchone()  # only read so far
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once committed
        other.execute("ROLLBACK")
    finally:
        other.close()


@pytest.mark.parametrize("nested", [False, True])
def test_sqlites_own_rollback_surfaces_the_real_error(db: Path, conn: sqlite3.Connection, nested: bool) -> None:
    """RAISE(ROLLBACK) ends the transaction inside SQLite; a second ROLLBACK must not hide why."""
    conn.execute(
        "CREATE TEMP TRIGGER refuse BEFORE INSERT ON t WHEN NEW.v = 13 BEGIN SELECT RAISE(ROLLBACK, 'no 13'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="no 13"), transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        if nested:
            with transaction(conn):
                conn.execute("INSERT INTO t VALUES (13)")
        else:
            conn.execute("INSERT INTO t VALUES (13)")
    assert values(db) == []
    assert not conn.in_transaction


# -- the writers that use it --------------------------------------------------------------------


def test_finish_task_records_the_outcome_and_the_spend_together(workspace: Workspace) -> None:
    """The journal's two updates of a finished task: if the second fails, the first is undone too."""
    with RunJournal(workspace) as journal:
        run = journal.create_run({}, "out", [("k", {"instruction": "q", "evidence": []})])
        journal.conn.execute(  # the spend cannot be written (as on a full disk): on this connection only
            "CREATE TEMP TRIGGER full BEFORE UPDATE OF spent_usd ON distill_runs"
            " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
        outcome = TaskOutcome("accepted", pair={"id": "p"}, cost_usd=0.25)
        with pytest.raises(sqlite3.IntegrityError, match="disk is full"):
            journal.finish_task(run.id, 0, outcome, 0.25)
        journal.conn.execute("DROP TRIGGER temp.full")
    with RunJournal(workspace) as reader:  # a fresh connection: what a resumed run would find
        assert reader.counts(run.id)["pending"] == 1  # the task is still to do, not done for free
        assert reader.run(run.id).spent_usd == 0.0
        reader.finish_task(run.id, 0, outcome, 0.25)
        assert reader.counts(run.id)["accepted"] == 1 and reader.run(run.id).spent_usd == 0.25


def test_a_cached_reply_and_its_cost_are_written_together(workspace: Workspace) -> None:
    with RunJournal(workspace) as journal:
        cache = RequestCache(workspace)
        try:
            run = journal.create_run({}, "out", [])
            ledger = Ledger(settle=journal.charger(run.id))
            usage = Usage(prompt_tokens=10, completion_tokens=5)
            cache.put("a" * 64, "t", "m", "{}", usage, cost_usd=0.5, ledger=ledger)
            assert cache.get("a" * 64) is not None and journal.run(run.id).spent_usd == 0.5
            assert ledger.settled_usd == 0.5

            def broken(conn: sqlite3.Connection, amount: float) -> None:
                raise OSError("the journal could not be written")

            with pytest.raises(OSError, match="journal"):
                cache.put("b" * 64, "t", "m", "{}", usage, cost_usd=0.5, ledger=Ledger(settle=broken))
            assert cache.get("b" * 64) is None  # not cached, so a resumed run asks (and pays, and records) again
            assert journal.run(run.id).spent_usd == 0.5
        finally:
            cache.close()


@pytest.mark.parametrize("fails", [False, True], ids=["ends", "raises"])
def test_the_run_journal_closes_its_connection_when_its_block_ends(workspace: Workspace, fails: bool) -> None:
    class StopHereError(Exception):
        pass

    with pytest.raises(StopHereError) if fails else contextlib.nullcontext(), RunJournal(workspace) as journal:
        run = journal.create_run({}, "out", [("k", {"instruction": "q", "evidence": []})])
        if fails:
            raise StopHereError
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        journal.conn.execute("SELECT 1")
    with RunJournal(workspace) as reader:  # what was written inside the block is committed
        assert reader.run(run.id).task_count == 1
