"""The workspace's record of its training runs: the ``training_runs`` table, one row per run folder.

Why a record beside the files: a model's folder says what it is (``receipt.json``), but not that it
exists — the Studio's Models page and ``arcticcodex models list`` need every run this workspace
started, including the ones still going, the ones that failed and the ones that were killed, without
searching the disk.  A row is written when a run has claimed its folder (the dataset verified, the
settings recorded), and finished when the receipt is signed, with the receipt's SHA-256 so a listing
can tell the receipt it recorded from one written over it later.

States: ``running`` from the start; ``complete`` with the metrics and the receipt's digest;
``failed`` with the error when the run raised (an interrupt included).  A process killed outright
runs no code, so its row stays ``running`` — which is what it is: ``train --resume`` continues it
from its last checkpoint, and updates the same row (runs are matched by their resolved folder).
Each change is one transaction.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..db import transaction
from ..errors import RecordNotFoundError
from ..workspace import Workspace
from .settings import TrainSettings

__all__ = ["TrainingRun", "TrainingRuns"]

STATUSES = ("running", "complete", "failed")
_COLUMNS = (
    "id, out, dataset_path, dataset_merkle_root, base_model, method, settings, status, started_at, "
    "finished_at, metrics, receipt_sha256, error"
)


@dataclass(frozen=True, slots=True)
class TrainingRun:
    """One row of ``training_runs``."""

    id: str
    out: str
    dataset_path: str
    dataset_merkle_root: str | None
    base_model: str
    method: str
    settings: dict[str, Any]
    status: str
    started_at: str
    finished_at: str | None
    metrics: dict[str, Any] | None
    receipt_sha256: str | None
    error: str

    @classmethod
    def from_row(cls, row: sqlite3.Row | tuple[Any, ...]) -> TrainingRun:
        values = list(row)
        values[6] = json.loads(values[6])
        values[10] = json.loads(values[10]) if values[10] else None
        return cls(*values)

    def held_out_losses(self) -> list[tuple[str, float | None, float | None]]:
        """(stage, held-out loss before, after) for each stage that was evaluated."""
        found = []
        for stage, numbers in (self.metrics or {}).items():
            if isinstance(numbers, dict) and ("eval_loss" in numbers or "eval_loss_before" in numbers):
                found.append((stage, numbers.get("eval_loss_before"), numbers.get("eval_loss")))
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "out": self.out,
            "dataset": {"path": self.dataset_path, "merkle_root": self.dataset_merkle_root},
            "base_model": self.base_model,
            "method": self.method,
            "settings": self.settings,
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "metrics": self.metrics,
            "receipt_sha256": self.receipt_sha256,
            "error": self.error,
        }


class TrainingRuns:
    """The ``training_runs`` table of one workspace (a connection per call: runs last hours)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def started(self, out: Path, dataset: dict[str, Any], settings: TrainSettings, *, resume: bool) -> str:
        """Record that the run in ``out`` (re)started; return its id.

        A resumed run keeps its row (id and start time); a new run in a folder an earlier row named
        (the folder was emptied since, its model gone) replaces that row.
        """
        now = _now()
        folder = str(out.resolve())
        values = (
            str(dataset.get("path", "")),
            dataset.get("merkle_root"),
            settings.base,
            settings.method,
            json.dumps(settings.to_json(), sort_keys=True),
        )
        conn = self.workspace.connect()
        try:
            with transaction(conn):
                row = conn.execute("SELECT id FROM training_runs WHERE out = ?", (folder,)).fetchone()
                if row is not None and resume:
                    conn.execute(
                        "UPDATE training_runs SET dataset_path = ?, dataset_merkle_root = ?, base_model = ?, "
                        "method = ?, settings = ?, status = 'running', finished_at = NULL, error = '' WHERE id = ?",
                        (*values, row[0]),
                    )
                    return str(row[0])
                if row is not None:
                    conn.execute("DELETE FROM training_runs WHERE id = ?", (row[0],))
                run_id = "train-" + uuid.uuid4().hex[:12]
                conn.execute(
                    f"INSERT INTO training_runs ({_COLUMNS}) "  # noqa: S608 - a constant
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, NULL, NULL, NULL, '')",
                    (run_id, folder, *values, now),
                )
                return run_id
        finally:
            conn.close()

    def completed(self, run_id: str, metrics: dict[str, Any], receipt: Path) -> None:
        """Record the run's metrics and the SHA-256 of the receipt it signed."""
        digest = hashlib.sha256(receipt.read_bytes()).hexdigest()
        self._finish(run_id, "complete", metrics=json.dumps(metrics, sort_keys=True), receipt_sha256=digest)

    def failed(self, run_id: str, error: BaseException) -> None:
        """Record why the run stopped: the error's message, or what interrupted it."""
        reason = str(error) or type(error).__name__
        if isinstance(error, KeyboardInterrupt):
            reason = (
                "interrupted before it finished; "
                "`arcticcodex train DATASET --base MODEL --out DIR --resume` continues it"
            )
        self._finish(run_id, "failed", error=reason)

    def _finish(self, run_id: str, status: str, **columns: str) -> None:
        assignments = "".join(f", {name} = ?" for name in columns)
        conn = self.workspace.connect()
        try:
            with transaction(conn):
                conn.execute(
                    f"UPDATE training_runs SET status = ?, finished_at = ?{assignments} WHERE id = ?",  # noqa: S608 - names from code
                    (status, _now(), *columns.values(), run_id),
                )
        finally:
            conn.close()

    def list(self, limit: int = 200) -> list[TrainingRun]:
        """The newest ``limit`` runs, newest first."""
        conn = self.workspace.connect()
        try:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM training_runs ORDER BY started_at DESC, rowid DESC LIMIT ?",  # noqa: S608
                (limit,),
            ).fetchall()
        finally:
            conn.close()
        return [TrainingRun.from_row(row) for row in rows]

    def get(self, run_id: str) -> TrainingRun:
        """The run ``run_id``; :class:`~arcticcodex.errors.RecordNotFoundError` names the list when there is none."""
        conn = self.workspace.connect()
        try:
            row = conn.execute(f"SELECT {_COLUMNS} FROM training_runs WHERE id = ?", (run_id,)).fetchone()  # noqa: S608
        finally:
            conn.close()
        if row is None:
            raise RecordNotFoundError(
                f"no training run {run_id!r} in this workspace; `arcticcodex models list` lists them"
            )
        return TrainingRun.from_row(row)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
