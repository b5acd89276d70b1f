"""Numbered, transactional schema migrations on real SQLite files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.db import WORKSPACE_MIGRATIONS, Migrations, connect, run_script
from arcticcodex.errors import MigrationError, StoreError
from arcticcodex.workspace import Workspace


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "test.db"


@pytest.fixture
def conn(db: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(db, isolation_level=None)
    yield connection
    connection.close()


def tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {name for (name,) in rows}


def ledger(conn: sqlite3.Connection, name: str) -> list[tuple[int, str]]:
    rows = conn.execute("SELECT number, name FROM schema_migrations WHERE migration_set = ? ORDER BY number", (name,))
    return [(number, step) for number, step in rows]


def sql_step(sql: str) -> Callable[[sqlite3.Connection], None]:
    def sql_step(conn: sqlite3.Connection) -> None:
        conn.execute(sql)

    return sql_step


def three_steps(calls: list[int]) -> Migrations:
    migrations = Migrations("three")

    @migrations(1)
    def create_a(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("CREATE TABLE a (x INTEGER)")

    @migrations(2)
    def fill_a(conn: sqlite3.Connection) -> None:
        calls.append(2)
        conn.execute("INSERT INTO a (x) VALUES (1), (2)")

    @migrations(3)
    def create_b(conn: sqlite3.Connection) -> None:
        calls.append(3)
        conn.execute("CREATE TABLE b (y TEXT)")

    return migrations


# --- applying ------------------------------------------------------------------------------------


def test_steps_run_in_order_and_are_recorded(conn: sqlite3.Connection) -> None:
    calls: list[int] = []
    migrations = three_steps(calls)
    assert [m.number for m in migrations.pending(conn)] == [1, 2, 3]
    ran = migrations.apply(conn)
    assert [m.number for m in ran] == [1, 2, 3]
    assert calls == [1, 2, 3]
    assert ledger(conn, "three") == [(1, "create_a"), (2, "fill_a"), (3, "create_b")]
    assert migrations.applied(conn) == [1, 2, 3]
    assert migrations.pending(conn) == []
    assert {"a", "b", "schema_migrations"} <= tables(conn)
    assert conn.execute("SELECT x FROM a ORDER BY x").fetchall() == [(1,), (2,)]
    for (applied_at,) in conn.execute("SELECT applied_at FROM schema_migrations"):
        assert datetime.fromisoformat(applied_at).tzinfo is not None
    assert not conn.in_transaction


def test_reapplying_is_a_no_op(db: Path, conn: sqlite3.Connection) -> None:
    calls: list[int] = []
    migrations = three_steps(calls)
    migrations.apply(conn)
    assert migrations.apply(conn) == []
    other = sqlite3.connect(db, isolation_level=None)
    try:
        assert migrations.apply(other) == []
    finally:
        other.close()
    assert calls == [1, 2, 3]
    assert conn.execute("SELECT count(*) FROM a").fetchone() == (2,)


def test_new_steps_apply_on_top_of_old_ones(conn: sqlite3.Connection) -> None:
    calls: list[int] = []
    migrations = three_steps(calls)
    migrations.apply(conn)

    @migrations(4)
    def create_c(conn: sqlite3.Connection) -> None:
        calls.append(4)
        conn.execute("CREATE TABLE c (z)")

    assert [m.number for m in migrations.apply(conn)] == [4]
    assert calls == [1, 2, 3, 4]


def test_sets_are_independent(conn: sqlite3.Connection) -> None:
    first, second = Migrations("first"), Migrations("second")
    first(1)(sql_step("CREATE TABLE one (x)"))
    second(1)(sql_step("CREATE TABLE two (x)"))
    first.apply(conn)
    assert second.applied(conn) == []
    assert [m.number for m in second.apply(conn)] == [1]
    assert {"one", "two"} <= tables(conn)


def test_apply_refuses_to_start_inside_a_transaction(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN")
    with pytest.raises(MigrationError, match="outside a transaction"):
        three_steps([]).apply(conn)
    conn.execute("ROLLBACK")


# --- failures roll back --------------------------------------------------------------------------


def test_a_failing_step_is_rolled_back_and_stays_pending(conn: sqlite3.Connection) -> None:
    migrations = Migrations("failing")
    broken = True

    @migrations(1)
    def create_good(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE good (x)")

    @migrations(2)
    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x)")
        conn.execute("INSERT INTO half (x) VALUES (1)")
        if broken:
            conn.execute("INSERT INTO no_such_table VALUES (1)")

    with pytest.raises(MigrationError) as caught:
        migrations.apply(conn)
    message = str(caught.value)
    assert "failing #2 (half_done)" in message and "rolled back" in message
    assert "no_such_table" in message
    assert isinstance(caught.value, StoreError)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)

    assert not conn.in_transaction
    assert "half" not in tables(conn)  # DDL is transactional in SQLite: the half-made table is gone
    assert "good" in tables(conn)  # the step before it stays applied
    assert ledger(conn, "failing") == [(1, "create_good")]
    assert [m.number for m in migrations.pending(conn)] == [2]

    broken = False  # the fix ships: the step applies on the next open
    assert [m.number for m in migrations.apply(conn)] == [2]
    assert conn.execute("SELECT x FROM half").fetchall() == [(1,)]
    assert ledger(conn, "failing") == [(1, "create_good"), (2, "half_done")]


def test_a_non_sqlite_exception_rolls_back_and_propagates(conn: sqlite3.Connection) -> None:
    migrations = Migrations("exploding")

    class StepBugError(Exception):
        pass

    @migrations(1)
    def explode(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE doomed (x)")
        raise StepBugError("step bug")

    with pytest.raises(StepBugError, match="step bug"):
        migrations.apply(conn)
    assert not conn.in_transaction
    assert "doomed" not in tables(conn)
    assert ledger(conn, "exploding") == []
    assert [m.number for m in migrations.pending(conn)] == [1]


def test_a_failing_step_stops_the_later_ones(conn: sqlite3.Connection) -> None:
    migrations = Migrations("stop")
    calls: list[int] = []

    @migrations(1)
    def fail(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("SELECT * FROM nowhere")

    @migrations(2)
    def later(conn: sqlite3.Connection) -> None:
        calls.append(2)

    with pytest.raises(MigrationError):
        migrations.apply(conn)
    assert calls == [1]
    assert [m.number for m in migrations.pending(conn)] == [1, 2]


# --- registration and versions -------------------------------------------------------------------


def test_registering_out_of_order_or_twice_is_refused() -> None:
    migrations = Migrations("registry")

    def step(conn: sqlite3.Connection) -> None:
        pass

    with pytest.raises(ValueError, match="out of order"):
        migrations(2)(step)
    migrations(1)(step)
    with pytest.raises(ValueError, match="registered twice"):
        migrations(1)(step)
    with pytest.raises(ValueError, match="out of order"):
        migrations(3)(step)
    migrations(2)(step)
    assert [m.number for m in migrations.steps] == [1, 2]


def test_a_database_from_a_newer_version_is_refused(db: Path, conn: sqlite3.Connection) -> None:
    newer = Migrations("versioned")
    for number in (1, 2, 3):
        newer(number)(lambda conn: None)
    newer.apply(conn)

    older = Migrations("versioned")
    for number in (1, 2):
        older(number)(lambda conn: None)
    with pytest.raises(MigrationError) as caught:
        older.apply(conn)
    assert "newer" in str(caught.value)
    assert "[3]" in str(caught.value)
    assert ledger(conn, "versioned") == [(1, "<lambda>"), (2, "<lambda>"), (3, "<lambda>")]


# --- run_script ----------------------------------------------------------------------------------

TRIGGER_SCRIPT = """
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE counts (n INTEGER NOT NULL);
INSERT INTO counts (n) VALUES (0);
-- a trigger body holds semicolons of its own
CREATE TRIGGER items_count AFTER INSERT ON items
BEGIN
    UPDATE counts SET n = n + 1;
    INSERT INTO items_log (note) VALUES ('added; ' || NEW.name);
END;
CREATE TABLE items_log (note TEXT);
INSERT INTO items (name) VALUES ('semi;colon'); INSERT INTO items (name) VALUES ('two');
/* a trailing comment; with a semicolon */
-- and another
"""


def test_run_script_runs_every_statement_in_the_current_transaction(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN")
    run_script(conn, TRIGGER_SCRIPT)
    assert conn.in_transaction  # nothing committed behind the caller's back (unlike executescript)
    assert conn.execute("SELECT name FROM items ORDER BY id").fetchall() == [("semi;colon",), ("two",)]
    assert conn.execute("SELECT n FROM counts").fetchone() == (2,)
    assert conn.execute("SELECT note FROM items_log").fetchall() == [("added; semi;colon",), ("added; two",)]
    conn.execute("ROLLBACK")
    assert tables(conn) == set()  # every statement was in the rolled-back transaction


def test_run_script_inside_a_migration_step(conn: sqlite3.Connection) -> None:
    migrations = Migrations("scripted")
    migrations(1)(lambda conn: run_script(conn, TRIGGER_SCRIPT))
    migrations.apply(conn)
    conn.execute("INSERT INTO items (name) VALUES ('three')")
    assert conn.execute("SELECT n FROM counts").fetchone() == (3,)


def test_run_script_rejects_an_incomplete_trailing_statement(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN")
    with pytest.raises(ValueError, match="incomplete SQL statement") as caught:
        run_script(conn, "CREATE TABLE ok (x);\nCREATE TABLE broken (x")
    assert "CREATE TABLE broken" in str(caught.value)
    conn.execute("ROLLBACK")
    with pytest.raises(ValueError, match="incomplete"):
        run_script(conn, "CREATE TABLE t (x); CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1;")
    with pytest.raises(ValueError, match="incomplete"):
        run_script(conn, "INSERT INTO t VALUES ('unterminated;")
    run_script(conn, "")
    run_script(conn, "  \n-- only a comment\n")


def test_an_incomplete_script_in_a_step_rolls_the_step_back(conn: sqlite3.Connection) -> None:
    migrations = Migrations("incomplete")
    migrations(1)(lambda conn: run_script(conn, "CREATE TABLE first (x);\nCREATE TABLE second (x"))
    with pytest.raises(ValueError, match="incomplete"):
        migrations.apply(conn)
    assert "first" not in tables(conn)
    assert migrations.applied(conn) == []


# --- concurrency ---------------------------------------------------------------------------------


def test_concurrent_connections_apply_each_step_exactly_once(db: Path) -> None:
    migrations = Migrations("concurrent")
    calls: list[int] = []
    lock = threading.Lock()

    def make(number: int) -> None:
        def step(conn: sqlite3.Connection) -> None:
            with lock:
                calls.append(number)
            conn.execute(f"CREATE TABLE t{number} (x)")  # would fail if the step ran twice
            conn.execute("CREATE TABLE IF NOT EXISTS runs (number INTEGER)")
            conn.execute("INSERT INTO runs (number) VALUES (?)", (number,))

        step.__name__ = f"step_{number}"
        migrations(number)(step)

    for number in range(1, 6):
        make(number)

    workers = 6
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []
    applied: list[int] = []

    def work() -> None:
        conn = sqlite3.connect(db, isolation_level=None, timeout=30)
        try:
            barrier.wait()
            ran = migrations.apply(conn)
            with lock:
                applied.extend(m.number for m in ran)
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(calls) == [1, 2, 3, 4, 5]
    assert sorted(applied) == [1, 2, 3, 4, 5]  # every step reported by exactly one connection
    check = sqlite3.connect(db, isolation_level=None)
    try:
        assert sorted(n for (n,) in check.execute("SELECT number FROM runs")) == [1, 2, 3, 4, 5]
        assert [n for n, _ in ledger(check, "concurrent")] == [1, 2, 3, 4, 5]
    finally:
        check.close()


# --- the sets a connection is given ---------------------------------------------------------------


def test_a_set_passed_to_the_factory_is_applied_to_an_existing_database(workspace: Workspace) -> None:
    """Migrations are passed explicitly: a set given to connect() is applied, the workspace's sets stay applied."""
    name = f"test-extra-{uuid.uuid4().hex}"
    table = f"extra_{uuid.uuid4().hex}"
    extra = Migrations(name, [sql_step(f"CREATE TABLE IF NOT EXISTS {table} (x)")])
    workspace.connect().close()  # the database exists, with every workspace set applied

    conn = connect(workspace.database_path, (*WORKSPACE_MIGRATIONS, extra))
    try:
        assert table in tables(conn)
        assert ledger(conn, name) == [(1, "sql_step")]
        assert ledger(conn, "workspace") == [(1, "create_workspace_meta")]
    finally:
        conn.close()
    assert "workspace_id" in workspace.meta()
    conn = workspace.connect()  # a set nobody passes is not applied behind anyone's back
    try:
        assert ledger(conn, name) == [(1, "sql_step")] and table in tables(conn)
    finally:
        conn.close()


def test_a_failing_set_surfaces_from_connect(workspace: Workspace) -> None:
    broken = Migrations(f"test-broken-{uuid.uuid4().hex}", [sql_step("SELECT * FROM nowhere")])
    with pytest.raises(MigrationError, match="rolled back") as caught:
        connect(workspace.database_path, (*WORKSPACE_MIGRATIONS, broken))
    assert broken.name in str(caught.value) and "#1 (sql_step)" in str(caught.value)
    assert "workspace_id" in workspace.meta()  # the sets before it were applied and stay usable


def test_a_set_given_twice_is_refused(workspace: Workspace) -> None:
    twice = (*WORKSPACE_MIGRATIONS, Migrations("vault"))
    with pytest.raises(ValueError, match=r"migration sets \['vault'\] are given twice"):
        connect(workspace.database_path, twice)


def test_steps_given_as_a_list_are_numbered_in_order(conn: sqlite3.Connection) -> None:
    def create_x(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE x (a)")

    def create_y(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE y (a)")

    migrations = Migrations("listed", [create_x, create_y])
    assert [(m.number, m.name) for m in migrations.steps] == [(1, "create_x"), (2, "create_y")]
    migrations.apply(conn)
    assert ledger(conn, "listed") == [(1, "create_x"), (2, "create_y")]


# --- every workspace gets every table ------------------------------------------------------------

EVERY_TABLE = {
    "workspace_meta",
    "documents",
    "document_parts",
    "chunks",
    "chunks_fts",
    "embeddings",
    "conversations",
    "messages",
    "facts",
    "summaries",
    "tombstones",
    "vault_state",
    "teacher_cache",
    "gpu_instances",
    "distill_runs",
    "distill_tasks",
    "distill_reviews",
    "distill_pair_edits",
    "teacher_batches",
    "training_runs",
    "evals",
    "loops",
    "loop_steps",
}
LEDGER_ORDER = [
    ["workspace", 1, "create_workspace_meta"],
    ["vault", 1, "create_vault_tables"],
    ["vault", 2, "create_document_parts"],
    ["vault", 3, "add_heading_paths"],
    ["vault", 4, "create_term_postings"],
    ["teachers", 1, "create_teacher_cache"],
    ["gpu", 1, "create_gpu_instances"],
    ["distill", 1, "create_run_tables"],
    ["distill", 2, "create_distill_reviews"],
    ["distill", 3, "add_review_columns"],
    ["pair_review", 1, "create_pair_edits"],
    ["batches", 1, "create_teacher_batches"],
    ["training", 1, "create_training_runs"],
    ["evals", 1, "create_evals"],
    ["loops", 1, "create_loops"],
]
OPEN_IN_A_FRESH_PROCESS = """
import json, sys
from arcticcodex.workspace import Workspace

workspace = Workspace.open(sys.argv[1]) if sys.argv[2] == "open" else Workspace.init(sys.argv[1])[0]
conn = workspace.connect()
print(json.dumps({
    "tables": [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")],
    "ledger": conn.execute("SELECT migration_set, number, name FROM schema_migrations ORDER BY rowid").fetchall(),
    "loaded": sorted(name for name in sys.modules if name.startswith("arcticcodex.")),
}))
"""


def open_in_a_fresh_process(root: Path, how: str) -> dict[str, list[Any]]:
    done = subprocess.run(
        [sys.executable, "-c", OPEN_IN_A_FRESH_PROCESS, str(root), how],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, list[Any]] = json.loads(done.stdout)
    return result


def test_a_fresh_process_gets_every_table_without_importing_the_packages_that_use_them(tmp_path: Path) -> None:
    """Which tables exist no longer depends on which modules a process happened to import first."""
    first = open_in_a_fresh_process(tmp_path / "first", "init")
    assert set(first["tables"]) >= EVERY_TABLE, EVERY_TABLE - set(first["tables"])
    assert first["ledger"] == LEDGER_ORDER
    users = (
        "arcticcodex.vault",
        "arcticcodex.gpu",
        "arcticcodex.distill",
        "arcticcodex.teachers.cache",
        "arcticcodex.evaluation",
        "arcticcodex.loop",
    )
    imported = [name for name in first["loaded"] if name.startswith(users)]  # the modules that use the tables
    assert imported == [], f"opening a workspace imported {imported}"

    second = open_in_a_fresh_process(tmp_path / "second", "init")  # the order is the same every time
    assert (second["tables"], second["ledger"]) == (first["tables"], first["ledger"])
    assert [migrations.name for migrations in WORKSPACE_MIGRATIONS] == [
        "workspace",
        "vault",
        "teachers",
        "gpu",
        "distill",
        "pair_review",
        "batches",
        "training",
        "evals",
        "loops",
    ]


def test_opening_a_workspace_made_with_fewer_tables_adds_the_rest_in_order(tmp_path: Path) -> None:
    """A database that only ever saw the core set (an `init` that imported nothing else) is completed on open."""
    workspace, _ = Workspace.init(tmp_path / "old")
    os.remove(workspace.database_path)
    connect(workspace.database_path, WORKSPACE_MIGRATIONS[:1]).close()

    opened = open_in_a_fresh_process(workspace.root, "open")
    assert set(opened["tables"]) >= EVERY_TABLE
    assert opened["ledger"] == LEDGER_ORDER
