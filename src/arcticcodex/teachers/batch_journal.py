"""The batches a run has at providers' Batch APIs, in the workspace database (``teacher_batches``).

Why journaled: a batch is paid for once the provider accepts it, and it may take hours.  A run
killed while one is in flight must, when resumed, attach to it rather than submit (and pay for) its
lines again.  So the uploaded file is written down before the batch is created, the batch id as
soon as the provider returns it, and which lines failed once the results are in.  A line is
"taken" — answered by a batch of the run, or about to be — unless its batch failed as a whole or
the provider answered that line with an error; only then is it submitted again.

A row whose batch id never arrived (killed between creating the batch and writing its id) is
matched on resume against the provider's list of batches by its input file (see
:meth:`~arcticcodex.teachers.batching.BatchQueue`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from ..db import transaction
from ..workspace import Workspace

__all__ = ["BatchJournal", "BatchRow"]

BatchStatus = Literal["uploaded", "submitted", "completed", "failed"]


@dataclass(frozen=True, slots=True)
class BatchRow:
    input_file_id: str
    batch_id: str | None
    teacher: str
    base_url: str
    custom_ids: tuple[str, ...]
    estimated_usd: float
    status: BatchStatus
    failed_ids: frozenset[str]


class BatchJournal:
    """One run's batches (``run_id``); safe across threads, one connection of its own."""

    def __init__(self, workspace: Workspace, run_id: str) -> None:
        self.run_id = run_id
        self._conn = workspace.connect()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def rows(self) -> list[BatchRow]:
        with self._lock:
            found = self._conn.execute(
                "SELECT input_file_id, batch_id, teacher, base_url, custom_ids, estimated_usd, status, failed_ids"
                " FROM teacher_batches WHERE run_id = ? ORDER BY created_at",
                (self.run_id,),
            ).fetchall()
        return [
            BatchRow(
                row[0], row[1], row[2], row[3], tuple(json.loads(row[4])), row[5], row[6], frozenset(json.loads(row[7]))
            )
            for row in found
        ]

    def uploaded(
        self, input_file_id: str, *, teacher: str, base_url: str, custom_ids: list[str], estimated_usd: float
    ) -> None:
        """The lines' file is at the provider; the batch is about to be created."""
        with self._lock, transaction(self._conn):
            self._conn.execute(
                "INSERT INTO teacher_batches (run_id, input_file_id, teacher, base_url, custom_ids, estimated_usd,"
                " status, created_at) VALUES (?, ?, ?, ?, ?, ?, 'uploaded', ?)",
                (self.run_id, input_file_id, teacher, base_url, json.dumps(custom_ids), estimated_usd, _now()),
            )

    def submitted(self, input_file_id: str, batch_id: str) -> None:
        self._update(input_file_id, "batch_id = ?, status = 'submitted'", batch_id)

    def completed(self, input_file_id: str, failed_ids: list[str]) -> None:
        self._update(
            input_file_id, "status = 'completed', failed_ids = ?, finished_at = ?", json.dumps(failed_ids), _now()
        )

    def failed(self, input_file_id: str) -> None:
        """The batch as a whole failed (expired, cancelled, refused): its lines are free to go again."""
        self._update(input_file_id, "status = 'failed', finished_at = ?", _now())

    def _update(self, input_file_id: str, assignments: str, *values: object) -> None:
        with self._lock, transaction(self._conn):
            self._conn.execute(
                f"UPDATE teacher_batches SET {assignments} WHERE run_id = ? AND input_file_id = ?",  # noqa: S608
                (*values, self.run_id, input_file_id),
            )


def _now() -> str:
    return datetime.now(UTC).isoformat()
