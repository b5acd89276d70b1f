"""The Studio's dataset pages: the list, one dataset with its verdicts, one record with its evidence.

A dataset is shown only after it is verified, and its two verdicts are always on the page, in words
and colour: **intact, signer trusted** (green); **intact, signer NOT trusted** (amber: its records
stay hidden until the visitor asks for them, as ``dataset export`` needs ``--allow-untrusted``);
**NOT intact** (red: the problems are listed and no record, statistic or chart is shown, since none
of them can be believed).  Verdicts come from a :class:`~arcticcodex.dataset.verdicts.VerdictCache`,
so a 100k-record dataset is verified once, not on every view, and again as soon as a file changes.

The list has one row per dataset *folder*: runs that wrote the same folder (an ``--append`` run, a
run published again) are one dataset, shown under the run that wrote it last.  Every split can be
browsed — ``train``, ``validation`` (the held-out pairs) and ``rejected`` (the teachers' and the
reviewers' rejects, with why) — a page of records at a time; counts are the same numbers on the
list, the dataset's page and the home page (accepted = train + validation).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..dataset import dataset_statistics
from ..dataset.record import iter_records
from ..dataset.sensitive_gate import sensitive_data_text
from ..dataset.verdicts import VerdictCache
from ..dataset.verify import VerificationReport
from ..distill.journal import RunJournal, RunRecord
from ..errors import RecordNotFoundError, UserError
from ..layout import REJECTED_FILE, TRAIN_FILE, VALIDATION_FILE
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
SPLIT_FILES = {"train": TRAIN_FILE, "validation": VALIDATION_FILE, "rejected": REJECTED_FILE}


class DatasetPages:
    """The ``/datasets`` pages of one workspace, served from the worker threads."""

    def __init__(self, workspace: Workspace, workers: VaultWorkers, verdicts: VerdictCache | None = None) -> None:
        self.workspace = workspace
        self.workers = workers
        self.verdicts = verdicts or VerdictCache()
        self.keyring = KeyRing.for_user(KeyStore(workspace.keys_dir))  # the user's trusted keys, as the CLI's

    def routes(self) -> list[Route]:
        return [
            Route("/datasets", self.listing),
            Route("/datasets/{run_id}", self.dataset),
            Route("/datasets/{run_id}/records/{index:int}", self.record),
        ]

    async def listing(self, request: Request) -> Response:
        return await self.workers.run(self._listing)

    async def dataset(self, request: Request) -> Response:
        view = _View.of(request)
        return await self.workers.run(self._dataset, request.path_params["run_id"], view)

    async def record(self, request: Request) -> Response:
        run_id, index = request.path_params["run_id"], request.path_params["index"]
        return await self.workers.run(self._record, run_id, index, _View.of(request))

    # -- in a worker --------------------------------------------------------------------------------

    def _listing(self) -> Response:
        return page("datasets.html", "Datasets", "Datasets", datasets=written_datasets(self.workspace))

    def _dataset(self, run_id: str, view: _View) -> Response:
        dataset = self._find(run_id)
        directory = Path(dataset["out"])
        report = self.verdicts.verify(directory, keyring=self.keyring, workers=VERIFY_WORKERS)
        context: dict[str, Any] = {"dataset": dataset, "run_id": run_id, "verdict": _verdict(report), "shown": False}
        if not report.ok or (not report.trusted and not view.show_untrusted):
            return page("dataset.html", f"Dataset {dataset['name']}", "Datasets", **context)
        stats = dataset_statistics(directory)
        counts = {
            "accepted": stats["accepted"],
            "train": stats["train"],
            "validation": stats["validation"],
            "rejected": stats["rejected"],
            "quality_mean": f"{stats['quality']['mean']:.3f}" if stats["quality"]["mean"] is not None else "—",
        }
        records: list[dict[str, Any]] = []
        more = False
        path = directory / SPLIT_FILES[view.split]
        if path.is_file():
            for number, (_, pair, _) in enumerate(iter_records(path)):
                if number < view.start:
                    continue
                if len(records) >= RECORDS_SHOWN:
                    more = True
                    break
                feedback = pair.feedback if view.split == "rejected" else ""
                records.append(
                    {
                        "index": pair.index,
                        "instruction": pair.instruction[:160],
                        "quality": pair.quality,
                        "why": feedback,
                    }
                )
        return page(
            "dataset.html",
            f"Dataset {dataset['name']}",
            "Datasets",
            **{**context, "shown": True},
            counts=counts,
            chart=histogram(stats["quality"]["accepted_histogram"]),
            sensitive_text=sensitive_data_text(stats["sensitive_data"]),
            sensitive_findings=sorted(((stats["sensitive_data"] or {}).get("findings") or {}).items()),
            records=records,
            split=view.split,
            tabs=[(name, view.query(split=name, start=0)) for name in SPLIT_FILES],
            record_query=view.query(start=None),
            next_page=view.query(start=view.start + RECORDS_SHOWN) if more else None,
            first=view.start,
        )

    def _record(self, run_id: str, index: int, view: _View) -> Response:
        directory = Path(self._find(run_id)["out"])
        report = self.verdicts.verify(directory, keyring=self.keyring, workers=VERIFY_WORKERS)
        if not report.ok or (not report.trusted and not view.show_untrusted):
            return self._dataset(run_id, view)  # the verdict page, which says why nothing is shown
        path = directory / SPLIT_FILES[view.split]
        if path.is_file():
            for _, pair, raw in iter_records(path):
                if pair.index == index:
                    back = f"/datasets/{run_id}{view.query(start=None)}"
                    title = f"Record {index} ({view.split})"
                    return page("record.html", title, "Datasets", record=raw, verdict=_verdict(report), back=back)
        raise RecordNotFoundError(f"the {view.split} split of the dataset of run {run_id} has no record {index}")

    def _find(self, run_id: str) -> dict[str, Any]:
        for dataset in written_datasets(self.workspace):
            if run_id in dataset["runs"]:
                return dataset
        raise RecordNotFoundError(f"no dataset written by run {run_id!r}; the Datasets page lists them")


class _View:
    """What a dataset page shows: which split, from which record, and untrusted records if asked."""

    def __init__(self, split: str, start: int, show_untrusted: bool) -> None:
        self.split, self.start, self.show_untrusted = split, start, show_untrusted

    @classmethod
    def of(cls, request: Request) -> _View:
        params = request.query_params
        split = params.get("split", "train")
        if split not in SPLIT_FILES:
            raise UserError(f"there is no split {split!r}; a dataset has {', '.join(SPLIT_FILES)}")
        try:
            start = max(0, int(params.get("start", "0")))
        except ValueError:
            # from None: int()'s message repeats what this one says
            raise UserError("start must be a whole number (the first record to show)") from None
        return cls(split, start, params.get("allow_untrusted") == "1")

    def query(self, *, split: str | None = None, start: int | None = 0) -> str:
        """The query string of this view with ``split``/``start`` changed ("" when all are defaults)."""
        values = {"split": split or self.split, "start": start or 0, "allow_untrusted": self.show_untrusted}
        pairs = [(name, value) for name, value in values.items() if value and value != "train"]
        return "?" + urlencode([(n, "1" if v is True else v) for n, v in pairs]) if pairs else ""


def written_datasets(workspace: Workspace) -> list[dict[str, Any]]:
    """One entry per dataset folder the workspace's runs wrote and that is still complete, newest first.

    Runs that wrote the same folder are one dataset, under the newest run that published it; the
    counts are what that run wrote (train, validation, rejected), as the journal recorded them.
    """
    with RunJournal(workspace) as journal:
        runs = journal.runs(limit=200)
    folders: dict[str, list[RunRecord]] = {}
    for run in runs:  # newest first
        folders.setdefault(os.path.realpath(run.out), []).append(run)
    found = []
    for runs_here in folders.values():
        published = [run for run in runs_here if run.written is not None]
        if not published or not (Path(published[0].out) / "manifest.json").is_file():
            continue
        run = published[0]
        written = run.written or {}
        train, validation = int(written.get("record_count", 0)), int(written.get("validation_count", 0))
        found.append(
            {
                "run_id": run.id,
                "runs": [r.id for r in runs_here],
                "out": run.out,
                "name": Path(run.out).name,
                "accepted": train + validation,
                "train": train,
                "validation": validation,
                "rejected": int(written.get("rejected_count", 0)),
                "created_at": run.created_at,
            }
        )
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
