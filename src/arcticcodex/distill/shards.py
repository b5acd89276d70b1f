"""A run's pending tasks split into shards, each with its own journal and request cache, merged back.

Why shards keep our journal: a shard is a unit of work another process (a Ray task, on this machine
or another) takes over, and the process can die.  Each shard is a small SQLite database of its own
(``runs/RUN/shards/shard-K.sqlite``: the run's record, the shard's tasks with their positions in the
run, their outcomes, and the shard's teacher-call cache), so a shard that is run again — by Ray after
its worker died, or by the next ``--resume`` after the driver died — skips what it finished and
answers every call it already paid for from its own cache: the exactly-once rule of a single-process
run, kept per shard.  Tasks go to a shard by a stable hash of their key (the same prompt is always in
the same shard, whatever the machine or the run), and ``plan.json``, written last, says the shards
are complete and how many there are: a plan cut short by a kill is made again from the run.

Merging copies each shard's finished tasks into the run's own journal by position (only onto tasks
still pending there, so it can be done any number of times) and sets the run's spend to what it had
spent before the shards were made plus every shard's spend — after which the run publishes as a
single-process run does, in task order: the same records in the same order.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..db import transaction
from ..errors import UserError
from ..fileio import write_atomically
from ..workspace import Workspace
from .journal import PAGE, RunJournal

__all__ = ["ShardPlan", "ShardWorkspace", "merge_shards", "plan_shards", "shard_of"]

PLAN_FILE = "plan.json"


def shard_of(key: str, shards: int) -> int:
    """The shard a task belongs to: a stable hash of its key (never Python's salted ``hash``)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % shards


class ShardWorkspace(Workspace):
    """The run's workspace (its configuration, keys and vault) with one shard's database as its database."""

    def __init__(self, main: Workspace, database: Path) -> None:
        super().__init__(main.root, main.config)
        self.main = main
        self.shard_database = database

    @property
    def database_path(self) -> Path:
        return self.shard_database

    def ensure_layout(self) -> None:
        self.main.ensure_layout()
        self.shard_database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """Where a run's shards are, how many, and what the run had spent before they were made."""

    folder: Path
    shards: int
    spent_before: float

    def database(self, index: int) -> Path:
        return self.folder / f"shard-{index}.sqlite"

    def workspace(self, main: Workspace, index: int) -> ShardWorkspace:
        return ShardWorkspace(main, self.database(index))


def plan_shards(workspace: Workspace, journal: RunJournal, run_id: str, shards: int) -> ShardPlan:
    """The run's shard plan: the one on disk when it is whole, else made now from the run's pending tasks."""
    folder = workspace.runs_dir / run_id / "shards"
    plan_file = folder / PLAN_FILE
    if plan_file.is_file():
        recorded = json.loads(plan_file.read_text(encoding="utf-8"))
        if recorded["shards"] != shards:
            raise UserError(
                f"run {run_id} was split into {recorded['shards']} shards when it started; resume it with the same "
                f"number (got {shards})",
                parameters=["shards"],
            )
        return ShardPlan(folder, recorded["shards"], float(recorded["spent_before"]))
    if shards < 1:
        raise UserError(f"shards must be at least 1, not {shards}", parameters=["shards"])
    shutil.rmtree(folder, ignore_errors=True)  # a plan a kill cut short: nothing in it has run
    record = journal.run(run_id)
    plan = ShardPlan(folder, shards, record.spent_usd)
    connections = [plan.workspace(workspace, index).connect() for index in range(shards)]
    try:
        # One transaction a shard for the whole plan (a plan cut short has no plan.json and is made again): a
        # commit a row cost 0.2-0.7 ms, 2-7 s at 10,000 tasks, against 14 µs a task this way (benchmarks/ray.py).
        with ExitStack() as writing:
            for conn in connections:
                writing.enter_context(transaction(conn))
                conn.execute(
                    "INSERT INTO distill_runs (id, created_at, updated_at, status, settings, out, task_count)"
                    " VALUES (?, ?, ?, 'running', ?, ?, 0)",
                    (run_id, record.created_at, record.created_at, json.dumps(record.settings, sort_keys=True),
                     record.out),
                )  # fmt: skip
            for position, key, task in _pending(journal, run_id):
                connections[shard_of(key, shards)].execute(
                    "INSERT INTO distill_tasks (run_id, position, key, task) VALUES (?, ?, ?, ?)",
                    (run_id, position, key, task),
                )
            for conn in connections:
                conn.execute(
                    "UPDATE distill_runs SET task_count = (SELECT count(*) FROM distill_tasks WHERE run_id = ?)",
                    (run_id,),
                )
    finally:
        for conn in connections:
            conn.close()
    write_atomically(plan_file, json.dumps({"shards": shards, "spent_before": plan.spent_before}).encode("utf-8"))
    return plan


def _pending(journal: RunJournal, run_id: str) -> Iterator[tuple[int, str, str]]:
    """(position, key, task JSON) of the run's pending tasks, a page at a time."""
    after = -1
    while True:
        rows = journal.conn.execute(
            "SELECT position, key, task FROM distill_tasks WHERE run_id = ? AND status = 'pending' AND position > ?"
            " ORDER BY position LIMIT ?",
            (run_id, after, PAGE),
        ).fetchall()
        if not rows:
            return
        yield from rows
        after = rows[-1][0]


def shard_counts(workspace: Workspace, plan: ShardPlan, run_id: str, index: int) -> dict[str, int]:
    """One shard's task counts by status, read from its database (the driver's progress)."""
    with RunJournal(plan.workspace(workspace, index)) as journal:
        return journal.counts(run_id)


def merge_shards(workspace: Workspace, journal: RunJournal, plan: ShardPlan, run_id: str) -> dict[str, Any]:
    """Copy every shard's finished tasks into the run's journal; set the run's spend; return the totals."""
    spent = plan.spent_before
    merged = 0
    for index in range(plan.shards):
        with RunJournal(plan.workspace(workspace, index)) as shard:
            spent += shard.run(run_id).spent_usd
            after = -1
            while True:
                rows = shard.conn.execute(
                    "SELECT position, status, pair, reason, retryable, cost_usd, finished_at FROM distill_tasks"
                    " WHERE run_id = ? AND status != 'pending' AND position > ? ORDER BY position LIMIT ?",
                    (run_id, after, PAGE),
                ).fetchall()
                if not rows:
                    break
                with transaction(journal.conn):
                    for position, status, pair, reason, retryable, cost, finished in rows:
                        merged += journal.conn.execute(
                            "UPDATE distill_tasks SET status = ?, pair = ?, reason = ?, retryable = ?, cost_usd = ?,"
                            " finished_at = ? WHERE run_id = ? AND position = ? AND status = 'pending'",
                            (status, pair, reason, retryable, cost, finished, run_id, position),
                        ).rowcount
                after = rows[-1][0]
    with transaction(journal.conn):
        journal.conn.execute("UPDATE distill_runs SET spent_usd = ? WHERE id = ?", (spent, run_id))
    return {"merged": merged, "spent_usd": spent}
