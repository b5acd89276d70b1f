"""The free-text evidence of a run's prompts is looked up without holding it all in memory (issue 19, item 2).

A publish screens every pair's evidence through :class:`WorkspaceEvidence`; it used to read every
prompt's evidence of the run into one dict, so a run's memory grew with the size of its evidence.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

from arcticcodex.distill.evidence import WorkspaceEvidence
from arcticcodex.distill.journal import RunJournal
from arcticcodex.distill.tasks import prompt_tasks
from arcticcodex.forge.record_frames import EvidenceRef
from arcticcodex.workspace import Workspace

PROMPTS = 4_000
EVIDENCE_CHARS = 2_000  # 8 MB of evidence in all


def test_prompt_evidence_is_found_by_hash_with_memory_flat_in_the_evidence(
    workspace: Workspace, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    with prompts.open("w") as handle:
        for n in range(PROMPTS):
            fact = f"Station {n} recorded rain. " + "x" * EVIDENCE_CHARS
            handle.write(json.dumps({"instruction": f"How much rain at station {n}?", "evidence": fact}) + "\n")
    out = tmp_path / "dataset"
    with RunJournal(workspace) as journal:
        journal.create_run({}, str(out.resolve()), prompt_tasks(prompts))
        refs = [
            EvidenceRef(chunk_id=item["chunk_id"], doc_id=item.get("doc_id") or "prompts", sha256=item["sha256"])
            for _, task in journal.conn.execute("SELECT key, task FROM distill_tasks ORDER BY position")
            for item in json.loads(task)["evidence"]
        ]
    assert len(refs) == PROMPTS
    tampered = EvidenceRef(chunk_id=refs[0].chunk_id, doc_id="prompts", sha256="0" * 64)  # a hash no text has
    with WorkspaceEvidence(workspace, out) as evidence:
        tracemalloc.start()
        try:  # in any order, not the tasks'; each text checked and let go, as the gate does
            found = [(evidence(ref) or "").startswith(f"Station {n} ") for n, ref in reversed(list(enumerate(refs)))]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert evidence(tampered) is None
    assert all(found)
    # a page of tasks (~2 MB here) whatever the run's size, where the dict this replaced held all 8 MB
    assert peak < 4_000_000, f"{peak / 1e6:.1f} MB held to look up 8 MB of evidence"
