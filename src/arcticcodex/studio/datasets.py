"""The Studio's dataset pages: the list, one dataset with its verdicts, one record with its evidence.

A dataset is shown only after it is verified, and its two verdicts are always on the page, in words
and colour: **intact, signer trusted** (green); **intact, signer NOT trusted** (amber: its records
stay hidden until the visitor asks for them, as ``dataset export`` needs ``--allow-untrusted``);
**NOT intact** (red: the problems are listed and no record, statistic or chart is shown, since none
of them can be believed).  Verdicts come from a :class:`~arcticcodex.dataset.verdicts.VerdictCache`,
so a 100k-record dataset is verified once, not on every view, and again as soon as a file changes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..dataset import dataset_statistics
from ..dataset.record import iter_records
from ..dataset.verdicts import VerdictCache
from ..dataset.verify import VerificationReport
from ..distill.journal import RunJournal
from ..errors import RecordNotFoundError
from ..provenance.keystore import KeyStore
from ..provenance.trust import KeyRing
from ..workspace import Workspace
from .charts import histogram
from .pages import page
from .workers import VaultWorkers

__all__ = ["DatasetPages", "written_datasets"]

RECORDS_SHOWN = 200
VERIFY_WORKERS = max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1, 8))
PROBLEMS_SHOWN = 50


class DatasetPages:
    """The ``/datasets`` pages of one workspace, served from the worker threads."""

    def __init__(self, workspace: Workspace, workers: VaultWorkers, verdicts: VerdictCache | None = None) -> None:
        self.workspace = workspace
        self.workers = workers
        self.verdicts = verdicts or VerdictCache()
        self.keyring = KeyRing.for_user(KeyStore(workspace.keys_dir))  # the user's trusted keys, as the CLI's

    async def listing(self, request: Request) -> Response:
        return await self.workers.run(self._listing)

    async def dataset(self, request: Request) -> Response:
        show_untrusted = request.query_params.get("allow_untrusted") == "1"
        return await self.workers.run(self._dataset, request.path_params["run_id"], show_untrusted)

    async def record(self, request: Request) -> Response:
        show_untrusted = request.query_params.get("allow_untrusted") == "1"
        run_id, index = request.path_params["run_id"], request.path_params["index"]
        return await self.workers.run(self._record, run_id, index, show_untrusted)

    # -- in a worker --------------------------------------------------------------------------------

    def _listing(self) -> Response:
        return page("datasets.html", "Datasets", "Datasets", datasets=written_datasets(self.workspace))

    def _dataset(self, run_id: str, show_untrusted: bool) -> Response:
        directory = self._directory(run_id)
        report = self.verdicts.verify(directory, keyring=self.keyring, workers=VERIFY_WORKERS)
        context: dict[str, Any] = {"out": directory.name, "run_id": run_id, "verdict": _verdict(report)}
        if not report.ok or (not report.trusted and not show_untrusted):
            return page("dataset.html", f"Dataset of {run_id}", "Datasets", **context)
        stats = dataset_statistics(directory)
        summary = {
            "accepted": stats["accepted"],
            "rejected": stats["rejected"],
            "quality_mean": f"{stats['quality']['mean']:.3f}" if stats["quality"]["mean"] is not None else "—",
        }
        records = []
        for _, pair, _ in iter_records(directory / "train.jsonl"):
            records.append({"index": pair.index, "instruction": pair.instruction[:160], "quality": pair.quality})
            if len(records) >= RECORDS_SHOWN:
                break
        return page(
            "dataset.html",
            f"Dataset of {run_id}",
            "Datasets",
            **context,
            shown=True,
            stats=summary,
            chart=histogram(stats["quality"]["accepted_histogram"]),
            records=records,
            query="?allow_untrusted=1" if show_untrusted and not report.trusted else "",
        )

    def _record(self, run_id: str, index: int, show_untrusted: bool) -> Response:
        directory = self._directory(run_id)
        report = self.verdicts.verify(directory, keyring=self.keyring, workers=VERIFY_WORKERS)
        if not report.ok or (not report.trusted and not show_untrusted):
            return self._dataset(run_id, show_untrusted)  # the verdict page, which says why nothing is shown
        for _, pair, raw in iter_records(directory / "train.jsonl"):
            if pair.index == index:
                return page("record.html", f"Record {index}", "Datasets", record=raw, verdict=_verdict(report))
        raise RecordNotFoundError(f"dataset of run {run_id} has no record {index}")

    def _directory(self, run_id: str) -> Path:
        for dataset in written_datasets(self.workspace):
            if dataset["run_id"] == run_id:
                return Path(dataset["out"])
        raise RecordNotFoundError(f"no dataset written by run {run_id!r}")


def written_datasets(workspace: Workspace) -> list[dict[str, Any]]:
    """The datasets the workspace's runs wrote (newest first), where a manifest says they are complete."""
    journal = RunJournal(workspace)
    try:
        runs = journal.runs(limit=200)
    finally:
        journal.close()
    found = []
    for run in runs:
        if (Path(run.out) / "manifest.json").is_file():
            records = (run.written or {}).get("record_count", "?")
            found.append({"run_id": run.id, "out": run.out, "records": records, "created_at": run.created_at})
    return found


def _verdict(report: VerificationReport) -> dict[str, Any]:
    """The two verdicts as the page shows them: a state for the colour, words, and what to do."""
    total = len(report.problems) + report.problems_not_listed
    if not report.ok:
        state = "bad"
    elif report.trusted:
        state = "ok"
    else:
        state = "warn"
    return {
        "state": state,
        "words": report.verdict,
        "integrity": "intact" if report.ok else f"NOT intact: {total} problem{'s' if total != 1 else ''}",
        "trust": f"signer trusted ({report.trusted_as})" if report.trusted else "signer NOT trusted",
        "key_id": report.key_id,
        "records": report.records,
        "problems": [str(problem) for problem in report.problems[:PROBLEMS_SHOWN]],
        "more_problems": max(0, total - PROBLEMS_SHOWN),
    }
