"""The text of a dataset's evidence, found again in the workspace that made it (for RAG-style exports).

A signed pair binds each evidence item by its SHA-256, not its text, so a dataset folder stays small
and shareable.  An export that puts the evidence in front of the model (``dataset export
--with-evidence``) finds the texts where the run found them: vault chunks (by id, or by hash when the
document was re-imported), and evidence given as free text in a prompts file, which lives in the run
journal's tasks.  Every text is checked against the hash the pair was signed with, so an edited
chunk is never passed off as the evidence a pair was judged against.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from ..errors import RecordNotFoundError
from ..forge.record_frames import EvidenceRef
from ..vault.store import Vault
from ..workspace import Workspace
from .journal import PAGE, RunJournal

__all__ = ["WorkspaceEvidence"]

PROMPT_EVIDENCE = "prompt-evidence:"
_FILED = "prompt_evidence_items"  # the temporary table of one connection


class WorkspaceEvidence:
    """Callable ``ref → text or None`` over one workspace; ``dataset`` limits the journal search to its runs."""

    def __init__(self, workspace: Workspace, dataset: Path | None = None) -> None:
        self.vault = Vault(workspace)
        self.journal = RunJournal(workspace)
        self.dataset = dataset.resolve() if dataset is not None else None
        self._filed = False  # the prompts' evidence items filed in the temporary table

    def close(self) -> None:
        self.vault.close()
        self.journal.close()

    def __enter__(self) -> WorkspaceEvidence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, ref: EvidenceRef) -> str | None:
        if ref.chunk_id.startswith(PROMPT_EVIDENCE):
            return self._prompt_evidence(ref.sha256)
        try:
            text: str | None = self.vault.get_chunk(ref.chunk_id).text
        except RecordNotFoundError:
            text = None
        if text is None or _sha256(text) != ref.sha256:
            row = self.vault.conn.execute("SELECT text FROM chunks WHERE sha256 = ? LIMIT 1", (ref.sha256,)).fetchone()
            text = row[0] if row is not None else None
        return text if text is not None and _sha256(text) == ref.sha256 else None

    def _prompt_evidence(self, sha256: str) -> str | None:
        """The free-text evidence item with this hash from the runs that wrote this dataset, or None.

        The items are filed once, on first use, in a temporary table of this connection (a file SQLite
        pages through its bounded cache), read from the journal a page at a time: a dict of every
        prompt's evidence grew the memory of a publish with the run (issue 19), and a run's pairs cite
        their evidence in any order, so the lookup is by key rather than a window over the tasks."""
        conn = self.journal.conn
        if not self._filed:
            conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_FILED} (sha256 TEXT PRIMARY KEY, text TEXT NOT NULL)")
            conn.execute(f"DELETE FROM {_FILED}")  # noqa: S608 - a fixed name from this module
            for page in self._given_pages():
                conn.executemany(f"INSERT OR IGNORE INTO {_FILED} VALUES (?, ?)", page)  # noqa: S608
            self._filed = True
        row = conn.execute(f"SELECT text FROM {_FILED} WHERE sha256 = ?", (sha256,)).fetchone()  # noqa: S608
        return str(row[0]) if row is not None else None

    def _given_pages(self) -> Iterator[list[tuple[str, str]]]:
        """(sha256, text) of the free-text evidence items whose text has that hash, a page of tasks at a time."""
        dataset = str(self.dataset) if self.dataset is not None else None
        after = -1
        while True:
            rows = self.journal.conn.execute(
                "SELECT t.rowid, t.task FROM distill_tasks t JOIN distill_runs r ON r.id = t.run_id"
                " WHERE t.rowid > ? AND (? IS NULL OR r.out = ?) ORDER BY t.rowid LIMIT ?",
                (after, dataset, dataset, PAGE),
            ).fetchall()
            if not rows:
                return
            page = []
            for _, task in rows:
                for item in json.loads(task).get("evidence", []):
                    text, chunk_id = item.get("text"), str(item.get("chunk_id", ""))
                    if not (chunk_id.startswith(PROMPT_EVIDENCE) and isinstance(text, str)):
                        continue
                    if _sha256(text) == item.get("sha256"):
                        page.append((item["sha256"], text))
            yield page
            after = rows[-1][0]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
