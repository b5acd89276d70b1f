"""The run journal: every distillation run and each of its prompts, in the workspace database.

A run is created in one transaction together with all its tasks (the prompts to distil, each with
its evidence and source), so it either exists whole or not at all.  Each finished task is written
in its own transaction with its outcome (the pair, or why it failed) and what it cost, so a process
killed at any instant loses at most the tasks in flight, and those are simply done again — their
teacher calls answered from the request cache, so nothing is paid twice.  The dataset is written
from the journal, in task order, which is why a resumed run produces the same accepted set as an
uninterrupted one.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from ..db import transaction
from ..errors import RecordNotFoundError, UserError
from ..workspace import Workspace

if TYPE_CHECKING:
    from .tasks import Task

__all__ = ["RunJournal", "RunRecord", "TaskOutcome", "review_columns"]

TaskStatus = Literal["pending", "accepted", "rejected", "failed"]
RunStatus = Literal["running", "stopped", "complete"]
PAGE = 256
FOLLOW_POLL_SECONDS = 0.05  # how often a publisher following a run looks for the task it waits on


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    created_at: str
    status: RunStatus
    settings: dict[str, Any]
    out: str
    task_count: int
    duplicate_prompts: int
    spent_usd: float
    note: str | None
    written: dict[str, Any] | None = None
    """The counts of the dataset last written (record_count, validation_count, duplicates_removed …)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.id,
            "created_at": self.created_at,
            "status": self.status,
            "out": self.out,
            "tasks": self.task_count,
            "duplicate_prompts": self.duplicate_prompts,
            "spent_usd": round(self.spent_usd, 6),
            "note": self.note,
            "written": self.written,
        }


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """How one task ended: a pair (accepted or rejected, as its JSON body) or a failure reason."""

    status: Literal["accepted", "rejected", "failed"]
    pair: dict[str, Any] | None = None
    reason: str | None = None
    retryable: bool = False
    cost_usd: float = 0.0


class RunJournal:
    """Reads and writes runs and tasks; one connection, used from one thread (the run's event loop).

    Use it as a context manager (``with RunJournal(workspace) as journal:``) so its connection is
    closed however the block ends; an owner that keeps one for its own lifetime (the
    :class:`~arcticcodex.distill.run.Distiller`) calls :meth:`close` when it closes.
    """

    def __init__(self, workspace: Workspace) -> None:
        self.conn = workspace.connect()
        self.conn.execute("PRAGMA synchronous=NORMAL")  # WAL: survives a killed process, which is the risk here

    def __enter__(self) -> RunJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def create_run(
        self, settings: dict[str, Any], out: str, tasks: Iterable[Task], *, spent_usd: float = 0.0
    ) -> RunRecord:
        """Create a run with its tasks ``(key, task JSON)`` in one transaction; repeated keys are one task.

        ``spent_usd`` is what making the tasks cost (a teacher's questions), recorded with them."""
        run_id = f"run-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        now = _now()
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO distill_runs (id, created_at, updated_at, status, settings, out, task_count, spent_usd)"
                " VALUES (?, ?, ?, 'running', ?, ?, 0, ?)",
                (run_id, now, now, json.dumps(settings, sort_keys=True), out, spent_usd),
            )
            offered = 0
            for position, (key, task) in enumerate(tasks):
                offered += 1
                self.conn.execute(
                    "INSERT OR IGNORE INTO distill_tasks (run_id, position, key, task) VALUES (?, ?, ?, ?)",
                    (run_id, position, key, json.dumps(task, ensure_ascii=False)),
                )
            (count,) = self.conn.execute("SELECT count(*) FROM distill_tasks WHERE run_id = ?", (run_id,)).fetchone()
            self.conn.execute(
                "UPDATE distill_runs SET task_count = ?, duplicate_prompts = ? WHERE id = ?",
                (count, offered - count, run_id),
            )
        return self.run(run_id)

    def run(self, run_id: str) -> RunRecord:
        row = self.conn.execute(
            "SELECT id, created_at, status, settings, out, task_count, duplicate_prompts, spent_usd, note, written"
            " FROM distill_runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            known = [r[0] for r in self.conn.execute("SELECT id FROM distill_runs ORDER BY created_at DESC LIMIT 5")]
            hint = f"recent runs: {', '.join(known)}" if known else "this workspace has no runs yet"
            raise RecordNotFoundError(f"no distillation run {run_id!r} in this workspace ({hint})")
        return RunRecord(
            id=row[0],
            created_at=row[1],
            status=row[2],
            settings=json.loads(row[3]),
            out=row[4],
            task_count=row[5],
            duplicate_prompts=row[6],
            spent_usd=row[7],
            note=row[8],
            written=json.loads(row[9]) if row[9] else None,
        )

    def runs(self, limit: int = 20) -> list[RunRecord]:
        ids = [
            r[0] for r in self.conn.execute("SELECT id FROM distill_runs ORDER BY created_at DESC LIMIT ?", (limit,))
        ]
        return [self.run(run_id) for run_id in ids]

    def reopen_retryable(self, run_id: str) -> int:
        """Put tasks that failed for a passing reason (a teacher outage) back in the queue; return how many."""
        with transaction(self.conn):
            cursor = self.conn.execute(
                "UPDATE distill_tasks SET status = 'pending', reason = NULL, retryable = 0, finished_at = NULL"
                " WHERE run_id = ? AND status = 'failed' AND retryable = 1",
                (run_id,),
            )
        return cursor.rowcount

    def pending(self, run_id: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """Pending tasks in order, read a page at a time so memory stays flat however long the run."""
        return self._paged(run_id, "task", "status = 'pending'")

    def tasks(self, run_id: str) -> Iterator[Task]:
        """Every task of the run as it was created, in order, a page at a time: the same questions asked
        again (the next iteration of `arcticcodex loop`) need neither the source nor the vault as it was."""
        from .tasks import Task  # at run time only here: tasks.py imports the vault, which a journal needs not

        after = -1
        while True:
            rows = self.conn.execute(
                "SELECT position, key, task FROM distill_tasks WHERE run_id = ? AND position > ?"
                " ORDER BY position LIMIT ?",
                (run_id, after, PAGE),
            ).fetchall()
            if not rows:
                return
            for _, key, task in rows:
                yield Task(key, json.loads(task))
            after = rows[-1][0]

    def _paged(
        self, run_id: str, column: str, condition: str, *, after: int = -1
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """(position, parsed ``column``) of the run's tasks meeting ``condition`` past position ``after``,
        in order, a page at a time."""
        while True:
            rows = self.conn.execute(
                f"SELECT position, {column} FROM distill_tasks WHERE run_id = ? AND {condition} AND position > ?"  # noqa: S608 - fixed SQL from this module
                " ORDER BY position LIMIT ?",
                (run_id, after, PAGE),
            ).fetchall()
            if not rows:
                return
            for position, value in rows:
                yield position, json.loads(value)
            after = rows[-1][0]

    def finish_task(self, run_id: str, position: int, outcome: TaskOutcome, spent_delta: float) -> None:
        """Record one task's outcome and the money spent since the last record, atomically."""
        now = _now()
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE distill_tasks SET status = ?, pair = ?, reason = ?, retryable = ?, cost_usd = ?,"
                " finished_at = ?, quality = ?, source_kind = ?, judged_by = ?"
                " WHERE run_id = ? AND position = ? AND status = 'pending'",
                (
                    outcome.status,
                    json.dumps(outcome.pair, ensure_ascii=False) if outcome.pair is not None else None,
                    outcome.reason,
                    int(outcome.retryable),
                    outcome.cost_usd,
                    now,
                    *review_columns(outcome.pair),
                    run_id,
                    position,
                ),
            )
            self.add_spending(run_id, spent_delta)

    def add_spending(self, run_id: str, amount: float) -> None:
        """Add ``amount`` to the run's spend (inside the caller's transaction, when there is one)."""
        if amount:
            charge_run(self.conn, run_id, amount)

    def charger(self, run_id: str) -> Callable[[sqlite3.Connection, float], None]:
        """What charges a paid teacher reply to this run, on the connection that caches the reply.

        The request cache calls it inside the transaction that stores the reply (see
        :attr:`~arcticcodex.teachers.ledger.Ledger.settle`), so a reply is in the cache exactly
        when its cost is in the run's spend: a process killed between the two cannot make a resumed
        run answer the call from the cache for free while its first payment is forgotten.
        """

        def charge(conn: sqlite3.Connection, amount: float) -> None:
            charge_run(conn, run_id, amount)

        return charge

    def set_status(
        self, run_id: str, status: RunStatus, note: str | None = None, *, written: dict[str, Any] | None = None
    ) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE distill_runs SET status = ?, note = ?, updated_at = ? WHERE id = ?",
                (status, note, _now(), run_id),
            )
            if written is not None:
                self.conn.execute("UPDATE distill_runs SET written = ? WHERE id = ?", (json.dumps(written), run_id))

    def update_settings(self, run_id: str, settings: dict[str, Any]) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE distill_runs SET settings = ?, updated_at = ? WHERE id = ?",
                (json.dumps(settings, sort_keys=True), _now(), run_id),
            )

    def counts(self, run_id: str) -> dict[str, int]:
        counts = {"pending": 0, "accepted": 0, "rejected": 0, "failed": 0}
        for status, count in self.conn.execute(
            "SELECT status, count(*) FROM distill_tasks WHERE run_id = ? GROUP BY status", (run_id,)
        ):
            counts[status] = count
        return counts

    def finished_pairs(self, run_id: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """Accepted and rejected pairs in task order (paged), for writing the dataset."""
        return self._paged(run_id, "pair", "pair IS NOT NULL")

    def follow_pairs(
        self, run_id: str, ended: threading.Event, *, poll_seconds: float = FOLLOW_POLL_SECONDS
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """:meth:`finished_pairs` read while other connections are still finishing the run's tasks.

        Pairs come in task order as soon as every earlier task is finished: reading waits at the first
        pending task (another connection's workers, which take tasks in this order, are on it) until it
        is done or ``ended`` is set; from then on the rest is read as :meth:`finished_pairs` reads it,
        passing over tasks left pending (a spent budget).  So a publisher following a run sees exactly
        the pairs, in exactly the order, that publishing after the run would see.
        """
        after = -1
        while not ended.is_set():  # read before the query: a task finished after it is seen on the next pass
            rows = self.conn.execute(
                "SELECT position, status, pair FROM distill_tasks WHERE run_id = ? AND position > ?"
                " ORDER BY position LIMIT ?",
                (run_id, after, PAGE),
            ).fetchall()
            if not rows:
                return
            for position, status, pair in rows:
                if status == "pending":
                    break
                after = position
                if pair is not None:
                    yield position, json.loads(pair)
            else:
                continue
            ended.wait(poll_seconds)
        yield from self._paged(run_id, "pair", "pair IS NOT NULL", after=after)

    # -- human review of accepted pairs (runs made with --review) ------------------------------

    def awaiting_review(self, run_id: str | None = None) -> list[tuple[str, int, dict[str, Any]]]:
        """(run, position, pair) of accepted pairs of reviewed runs that nobody has decided on yet."""
        runs = (
            [run_id] if run_id else [r[0] for r in self.conn.execute("SELECT id FROM distill_runs ORDER BY created_at")]
        )
        waiting = []
        for run in runs:
            if not self.run(run).settings.get("human_review"):
                continue
            rows = self.conn.execute(
                "SELECT t.position, t.pair FROM distill_tasks t LEFT JOIN distill_reviews r"
                " ON r.run_id = t.run_id AND r.position = t.position"
                " WHERE t.run_id = ? AND t.status = 'accepted' AND r.status IS NULL ORDER BY t.position",
                (run,),
            ).fetchall()
            waiting += [(run, position, json.loads(pair)) for position, pair in rows]
        return waiting

    def awaiting_review_count(self, run_id: str | None = None) -> int:
        """How many accepted pairs of reviewed runs (or of ``run_id``) nobody has decided on yet."""
        runs = self.conn.execute(
            "SELECT id FROM distill_runs WHERE json_extract(settings, '$.human_review') AND (? IS NULL OR id = ?)",
            (run_id, run_id),
        ).fetchall()
        total = 0
        for (run,) in runs:  # a run's accepted pairs, counted on the index, less its decisions
            (accepted,) = self.conn.execute(
                "SELECT count(*) FROM distill_tasks WHERE run_id = ? AND status = 'accepted'", (run,)
            ).fetchone()
            (decided,) = self.conn.execute("SELECT count(*) FROM distill_reviews WHERE run_id = ?", (run,)).fetchone()
            total += int(accepted) - int(decided)
        return total

    def decide_pair(self, run_id: str, position: int, status: str, *, reason: str = "", by: str = "user") -> None:
        """Approve or reject an accepted pair of a reviewed run (once; a decision is not changed)."""
        row = self.conn.execute(
            "SELECT status FROM distill_tasks WHERE run_id = ? AND position = ?", (run_id, position)
        ).fetchone()
        if row is None or row[0] != "accepted":
            raise RecordNotFoundError(f"run {run_id} has no accepted pair at position {position} to review")
        try:
            with transaction(self.conn):
                self.conn.execute(
                    "INSERT INTO distill_reviews (run_id, position, status, reason, decided_by, decided_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, position, status, reason, by, datetime.now(UTC).isoformat()),
                )
        except sqlite3.IntegrityError:
            # from None: the IntegrityError adds nothing the message does not already say
            raise UserError(f"pair {position} of run {run_id} was already reviewed; decisions are final") from None

    def reviews(self, run_id: str) -> dict[int, tuple[str, str]]:
        """position → (status, reason) of every decided pair of a run."""
        rows = self.conn.execute("SELECT position, status, reason FROM distill_reviews WHERE run_id = ?", (run_id,))
        return {position: (status, reason) for position, status, reason in rows}

    def retryable_failures(self, run_id: str) -> int:
        (count,) = self.conn.execute(
            "SELECT count(*) FROM distill_tasks WHERE run_id = ? AND status = 'failed' AND retryable = 1", (run_id,)
        ).fetchone()
        return int(count)

    def failures(self, run_id: str, limit: int = 20) -> list[tuple[int, str]]:
        rows = self.conn.execute(
            "SELECT position, reason FROM distill_tasks WHERE run_id = ? AND status = 'failed' ORDER BY position"
            " LIMIT ?",
            (run_id, limit),
        )
        return [(position, reason or "") for position, reason in rows]

    def cost_of_pairs(self, run_id: str) -> float:
        (total,) = self.conn.execute(
            "SELECT coalesce(sum(cost_usd), 0) FROM distill_tasks WHERE run_id = ?", (run_id,)
        ).fetchone()
        return float(total)


def review_columns(pair: dict[str, Any] | None) -> tuple[float | None, str | None, str | None]:
    """What the review queue filters a pair by, kept beside it (schema ``add_review_columns``): its quality
    (the critics' score of its final revision), the kind of source its prompt came from (``prompts``,
    ``conversation``, ``curriculum``), and the teachers named on its final revision (its critics and
    verifier; a pair without revisions, every teacher that worked on it) as a JSON array."""
    if pair is None:
        return None, None, None
    source = pair.get("source")
    revisions = pair.get("revisions") or []
    last = revisions[-1] if revisions and isinstance(revisions[-1], dict) else {}
    teachers = last.get("teachers") or pair.get("teachers") or []
    quality = pair.get("quality")
    return (
        float(quality) if isinstance(quality, int | float | str) and quality != "" else None,
        str(source.get("kind")) if isinstance(source, dict) and source.get("kind") is not None else None,
        # written as SQLite's json_extract writes an array (the migration fills older rows with it), so
        # that one test finds a name in both: instr(judged_by, json_quote(name))
        json.dumps([str(name) for name in teachers], ensure_ascii=False, separators=(",", ":")),
    )


def charge_run(conn: sqlite3.Connection, run_id: str, amount: float) -> None:
    """Add ``amount`` dollars to a run's recorded spend (one statement: atomic on its own, or part of
    the caller's transaction)."""
    conn.execute(
        "UPDATE distill_runs SET spent_usd = spent_usd + ?, updated_at = ? WHERE id = ?", (amount, _now(), run_id)
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
