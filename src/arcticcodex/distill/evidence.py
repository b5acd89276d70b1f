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
from pathlib import Path

from ..errors import RecordNotFoundError
from ..forge.record_frames import EvidenceRef
from ..vault.store import Vault
from ..workspace import Workspace
from .journal import RunJournal

__all__ = ["WorkspaceEvidence"]

PROMPT_EVIDENCE = "prompt-evidence:"


class WorkspaceEvidence:
    """Callable ``ref → text or None`` over one workspace; ``dataset`` limits the journal search to its runs."""

    def __init__(self, workspace: Workspace, dataset: Path | None = None) -> None:
        self.vault = Vault(workspace)
        self.journal = RunJournal(workspace)
        self.dataset = dataset.resolve() if dataset is not None else None
        self._given: dict[str, str] | None = None

    def close(self) -> None:
        self.vault.close()
        self.journal.close()

    def __enter__(self) -> WorkspaceEvidence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, ref: EvidenceRef) -> str | None:
        if ref.chunk_id.startswith(PROMPT_EVIDENCE):
            return self._prompt_evidence().get(ref.sha256)
        try:
            text: str | None = self.vault.get_chunk(ref.chunk_id).text
        except RecordNotFoundError:
            text = None
        if text is None or _sha256(text) != ref.sha256:
            row = self.vault.conn.execute("SELECT text FROM chunks WHERE sha256 = ? LIMIT 1", (ref.sha256,)).fetchone()
            text = row[0] if row is not None else None
        return text if text is not None and _sha256(text) == ref.sha256 else None

    def _prompt_evidence(self) -> dict[str, str]:
        """sha256 → text of every free-text evidence item of the runs that wrote this dataset (read once)."""
        if self._given is None:
            self._given = {}
            query = "SELECT t.task FROM distill_tasks t JOIN distill_runs r ON r.id = t.run_id"
            rows = (
                self.journal.conn.execute(query + " WHERE r.out = ?", (str(self.dataset),))
                if self.dataset is not None
                else self.journal.conn.execute(query)
            )
            for (task,) in rows:
                for item in json.loads(task).get("evidence", []):
                    text, chunk_id = item.get("text"), str(item.get("chunk_id", ""))
                    if not (chunk_id.startswith(PROMPT_EVIDENCE) and isinstance(text, str)):
                        continue
                    if _sha256(text) == item.get("sha256"):
                        self._given[item["sha256"]] = text
        return self._given


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
