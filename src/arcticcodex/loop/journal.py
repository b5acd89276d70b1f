"""A loop's record in the workspace: the ``loops`` and ``loop_steps`` tables.

Why a journal of steps: a loop runs for hours (distillation, training and evaluation, several times)
and each step leaves something costly behind — a paid-for run, a trained model, an evaluation.  A
step is recorded as ``running`` with what it made (``ref``: the distill run's id, the training
folder, the evaluation's id) before or as soon as that exists, and ``complete`` with what it
measured, so a loop killed at any instant resumes at the step it was in: a distill run resumed from
its own journal (its paid calls answered from the request cache), a training run from its last
checkpoint, an evaluation asked again (its calls cached).  Each change is one transaction; a
connection per call, since the steps between them last minutes to hours.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ..db import transaction
from ..errors import RecordNotFoundError
from ..workspace import Workspace
from .settings import LoopSettings

__all__ = ["LoopJournal", "LoopRecord", "LoopStep"]

LoopStatus = Literal["running", "stopped", "stopped_early", "complete", "failed"]
Stage = Literal["distill", "train", "eval"]


@dataclass(frozen=True, slots=True)
class LoopStep:
    """One row of ``loop_steps``."""

    iteration: int
    stage: Stage
    status: Literal["running", "complete"]
    ref: str | None
    result: dict[str, Any] | None
    started_at: str
    finished_at: str | None

    @property
    def complete(self) -> bool:
        return self.status == "complete"


@dataclass(frozen=True, slots=True)
class LoopRecord:
    """One loop with its steps in the order they were taken."""

    id: str
    created_at: str
    updated_at: str
    out: Path
    settings: LoopSettings
    status: LoopStatus
    note: str
    steps: tuple[LoopStep, ...]

    def step(self, iteration: int, stage: Stage) -> LoopStep | None:
        for step in self.steps:
            if (step.iteration, step.stage) == (iteration, stage):
                return step
        return None

    def spent_usd(self, *, besides: tuple[int, Stage] | None = None) -> float:
        """What the loop's steps have cost so far (less the step ``besides``, whose own spend is counted
        by its run when it resumes)."""
        return sum(
            float((step.result or {}).get("spent_usd", 0.0))
            for step in self.steps
            if (step.iteration, step.stage) != besides
        )


class LoopJournal:
    """The ``loops`` and ``loop_steps`` tables of one workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def create(self, settings: LoopSettings, out: Path) -> LoopRecord:
        loop_id = f"loop-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        now = _now()
        with self._connection() as conn, transaction(conn):
            conn.execute(
                "INSERT INTO loops (id, created_at, updated_at, out, settings, status) VALUES (?, ?, ?, ?, ?, ?)",
                (loop_id, now, now, str(out.resolve()), json.dumps(settings.to_json(), sort_keys=True), "running"),
            )
        return self.get(loop_id)

    def get(self, loop_id: str) -> LoopRecord:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT id, created_at, updated_at, out, settings, status, note FROM loops WHERE id = ?", (loop_id,)
            ).fetchone()
            if row is None:
                known = [r[0] for r in conn.execute("SELECT id FROM loops ORDER BY created_at DESC LIMIT 5")]
                hint = f"recent loops: {', '.join(known)}" if known else "this workspace has no loops yet"
                raise RecordNotFoundError(f"no loop {loop_id!r} in this workspace ({hint})")
            steps = conn.execute(
                "SELECT iteration, stage, status, ref, result, started_at, finished_at FROM loop_steps"
                " WHERE loop_id = ? ORDER BY started_at, iteration",
                (loop_id,),
            ).fetchall()
        return LoopRecord(
            id=row[0],
            created_at=row[1],
            updated_at=row[2],
            out=Path(row[3]),
            settings=LoopSettings.from_json(json.loads(row[4])),
            status=row[5],
            note=row[6],
            steps=tuple(
                LoopStep(step[0], step[1], step[2], step[3], json.loads(step[4]) if step[4] else None, step[5], step[6])
                for step in steps
            ),
        )

    def newest(self, *, limit: int = 20) -> list[LoopRecord]:
        with self._connection() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM loops ORDER BY created_at DESC LIMIT ?", (limit,))]
        return [self.get(loop_id) for loop_id in ids]

    def started(self, loop_id: str, iteration: int, stage: Stage, ref: str | None = None) -> None:
        """The step has begun (again: a resumed step keeps its start time and its ``ref`` unless given one)."""
        now = _now()
        with self._connection() as conn, transaction(conn):
            conn.execute(
                "INSERT INTO loop_steps (loop_id, iteration, stage, status, ref, started_at) "
                "VALUES (?, ?, ?, 'running', ?, ?) ON CONFLICT (loop_id, iteration, stage) DO UPDATE SET "
                "status = 'running', ref = coalesce(excluded.ref, ref), finished_at = NULL",
                (loop_id, iteration, stage, ref, now),
            )
            self._touch(conn, loop_id, "running", "")

    def completed(self, loop_id: str, iteration: int, stage: Stage, ref: str, result: dict[str, Any]) -> None:
        with self._connection() as conn, transaction(conn):
            conn.execute(
                "UPDATE loop_steps SET status = 'complete', ref = ?, result = ?, finished_at = ?"
                " WHERE loop_id = ? AND iteration = ? AND stage = ?",
                (ref, json.dumps(result, sort_keys=True), _now(), loop_id, iteration, stage),
            )

    def set_budget(self, loop_id: str, budget_usd: float) -> LoopRecord:
        """Raise (or set) the loop's budget: the one setting a resumed loop may change."""
        record = self.get(loop_id)
        settings = LoopSettings.from_json({**record.settings.to_json(), "budget_usd": budget_usd})
        with self._connection() as conn, transaction(conn):
            conn.execute(
                "UPDATE loops SET settings = ?, updated_at = ? WHERE id = ?",
                (json.dumps(settings.to_json(), sort_keys=True), _now(), loop_id),
            )
        return self.get(loop_id)

    def set_status(self, loop_id: str, status: LoopStatus, note: str = "") -> None:
        with self._connection() as conn, transaction(conn):
            self._touch(conn, loop_id, status, note)

    @staticmethod
    def _touch(conn: sqlite3.Connection, loop_id: str, status: str, note: str) -> None:
        conn.execute(
            "UPDATE loops SET status = ?, note = ?, updated_at = ? WHERE id = ?", (status, note, _now(), loop_id)
        )

    def _connection(self) -> contextlib.closing[sqlite3.Connection]:
        """A connection closed when the ``with`` block ends (sqlite3's own context manager only commits)."""
        return contextlib.closing(self.workspace.connect())


def _now() -> str:
    return datetime.now(UTC).isoformat()
