"""The workspace's evaluations: the ``evals`` table, one row per `arcticcodex eval`, linked to receipts.

Why in the workspace: a model's folder can be copied and its numbers retyped; the row keeps the whole
report (every question, answer and judgement) beside the SHA-256 of the student's ``receipt.json``,
so the Studio's Models page can list, for a receipt it verified, every evaluation of exactly that
model (:meth:`Evals.for_receipt`).  One transaction per write; rows are never edited.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from ..db import transaction
from ..errors import RecordNotFoundError
from ..workspace import Workspace

__all__ = ["EvalRecord", "Evals"]

_COLUMNS = (
    "id, created_at, student, baseline, receipt_sha256, baseline_receipt_sha256, dataset_path, "
    "dataset_merkle_root, judges, questions, summary, report"
)


@dataclass(frozen=True, slots=True)
class EvalRecord:
    """One row of ``evals``; ``summary`` is each model's aggregated metrics, ``report`` everything."""

    id: str
    created_at: str
    student: str
    baseline: str | None
    receipt_sha256: str | None
    baseline_receipt_sha256: str | None
    dataset_path: str
    dataset_merkle_root: str | None
    judges: list[str]
    questions: int
    summary: dict[str, Any]
    report: dict[str, Any]

    @classmethod
    def from_row(cls, row: sqlite3.Row | tuple[Any, ...]) -> EvalRecord:
        values = list(row)
        values[8], values[10], values[11] = json.loads(values[8]), json.loads(values[10]), json.loads(values[11])
        return cls(*values)

    def to_json(self, *, full: bool = False) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "id": self.id,
            "created_at": self.created_at,
            "student": self.student,
            "baseline": self.baseline,
            "receipt_sha256": self.receipt_sha256,
            "baseline_receipt_sha256": self.baseline_receipt_sha256,
            "dataset": {"path": self.dataset_path, "merkle_root": self.dataset_merkle_root},
            "judges": self.judges,
            "questions": self.questions,
            "summary": self.summary,
        }
        return {**shown, "report": self.report} if full else shown


class Evals:
    """The ``evals`` table of one workspace (a connection per call)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def add(self, report: dict[str, Any]) -> None:
        """Store ``report`` (:meth:`~arcticcodex.evaluation.run.EvalReport.to_json`) under its own id."""
        models = report["models"]
        student, baseline = models["student"], models.get("baseline")
        values = (
            report["id"],
            report["created_at"],
            student["spec"],
            baseline["spec"] if baseline else None,
            student.get("receipt_sha256"),
            baseline.get("receipt_sha256") if baseline else None,
            report["dataset"]["path"],
            report["dataset"].get("merkle_root"),
            json.dumps(report["judges"]),
            len(report["questions"]),
            json.dumps({label: model["metrics"] for label, model in models.items()}, sort_keys=True),
            json.dumps(report, sort_keys=True),
        )
        conn = self.workspace.connect()
        try:
            with transaction(conn):
                conn.execute(
                    f"INSERT INTO evals ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - a constant
                    values,
                )
        finally:
            conn.close()

    def newest(self, *, limit: int = 50) -> list[EvalRecord]:
        """The newest evaluations first."""
        return self._select("ORDER BY created_at DESC, id LIMIT ?", (limit,))

    def for_receipt(self, receipt_sha256: str) -> list[EvalRecord]:
        """Every evaluation of the model whose ``receipt.json`` has this SHA-256, newest first (the Studio's)."""
        return self._select("WHERE receipt_sha256 = ? ORDER BY created_at DESC, id", (receipt_sha256,))

    def get(self, eval_id: str) -> EvalRecord:
        found = self._select("WHERE id = ?", (eval_id,))
        if not found:
            raise RecordNotFoundError(
                f"no evaluation {eval_id!r} in {self.workspace.root}; list them with `arcticcodex eval list`"
            )
        return found[0]

    def _select(self, where: str, parameters: tuple[Any, ...]) -> list[EvalRecord]:
        conn = self.workspace.connect()
        try:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM evals {where}", parameters).fetchall()  # noqa: S608
        finally:
            conn.close()
        return [EvalRecord.from_row(row) for row in rows]
