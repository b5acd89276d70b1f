"""The Studio's dataset pages: the list, one dataset with its verdicts and its records, one record.

A dataset is shown only after it is verified, and its two verdicts are always on the page, in words
and colour: **intact, signer trusted** (green); **intact, signer NOT trusted** (amber: its records
stay hidden until the visitor asks for them, as ``dataset export`` needs ``--allow-untrusted``);
**NOT intact** (red: the problems are listed and no record, statistic or chart is shown, since none
of them can be believed).  Verdicts come from a :class:`~arcticcodex.dataset.verdicts.VerdictCache`,
so a 100k-record dataset is verified once, not on every view, and again as soon as a file changes.

Records are listed, searched (words of the instruction or the answer) and filtered (quality range,
source; for rejected pairs the step that rejected them) from a record index
(:mod:`arcticcodex.dataset.record_index`) built once per folder state in the workspace's cache, so a
page of a 100k-pair dataset is a few SQLite lookups; the counts and the histogram come from it too.
The index is only opened once the verdict allows the records to be shown, and only used if it
describes the very files that were verified.

The list has one row per dataset *folder*: runs that wrote the same folder (an ``--append`` run, a
run published again) are one dataset, shown under the run that wrote it last.  Comparing two
datasets is :mod:`.dataset_compare`; exporting one is :mod:`.dataset_export`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..dataset.comparison import Comparisons
from ..dataset.export import FORMAT_NAMES, SPLITS
from ..dataset.record_index import (
    SPLIT_FILES,
    STAGES,
    RecordIndex,
    RecordIndexes,
    RecordQuery,
    folder_identity,
)
from ..dataset.sensitive_gate import sensitive_data_text
from ..dataset.verdicts import VerdictCache
from ..dataset.verify import VerificationReport
from ..distill.journal import RunJournal, RunRecord
from ..errors import RecordNotFoundError, UserError
from ..provenance.keystore import KeyStore
from ..provenance.trust import KeyRing
from ..workspace import Workspace
from .charts import histogram
from .pages import page
from .workers import VaultWorkers

__all__ = ["DatasetPages", "written_datasets"]

RECORDS_SHOWN = 50
VERIFY_WORKERS = max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1, 8))
PROBLEMS_SHOWN = 50
EXPORT_FORMATS = tuple(name for name in FORMAT_NAMES if name != "raft")  # raft needs the vault's passages: CLI
CACHE_FOLDER = "cache"


class DatasetPages:
    """The ``/datasets`` pages of one workspace, served from the worker threads."""

    def __init__(self, workspace: Workspace, workers: VaultWorkers, verdicts: VerdictCache | None = None) -> None:
        self.workspace = workspace
        self.workers = workers
        self.verdicts = verdicts or VerdictCache()
        self.keyring = KeyRing.for_user(KeyStore(workspace.keys_dir))  # the user's trusted keys, as the CLI's
        self.cache = workspace.data_dir / CACHE_FOLDER
        self.indexes = RecordIndexes(self.cache / "dataset-index")
        self.comparisons = Comparisons()

    def routes(self) -> list[Route]:
        from .dataset_compare import DatasetComparePage
        from .dataset_export import DatasetExport

        return [
            Route("/datasets", self.listing),
            Route("/datasets/compare", DatasetComparePage(self).compare),
            Route("/datasets/{run_id}", self.dataset),
            Route("/datasets/{run_id}/records/{index:int}", self.record),
            Route("/datasets/{run_id}/export", DatasetExport(self).export, methods=["POST"]),
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

    def shown(self, directory: Path, show_untrusted: bool) -> tuple[VerificationReport, RecordIndex | None]:
        """The verdicts on ``directory`` and, when they allow its records to be shown, its record index.

        The index must describe the files that were verified: a folder that changed in between is
        refused (the next view verifies it again)."""
        before = folder_identity(directory)
        report = self.verdicts.verify(directory, keyring=self.keyring, workers=VERIFY_WORKERS)
        if not report.ok or (not report.trusted and not show_untrusted):
            return report, None
        index = self.indexes.open(directory)
        if index.identity != before:
            index.close()
            raise UserError(f"the dataset in {directory} changed while it was being read; open the page again")
        return report, index

    def _dataset(self, run_id: str, view: _View) -> Response:
        dataset = self.find(run_id)
        directory = Path(dataset["out"])
        report, index = self.shown(directory, view.show_untrusted)
        context: dict[str, Any] = {
            "dataset": dataset,
            "run_id": run_id,
            "verdict": verdict_words(report),
            "shown": False,
            "export_formats": EXPORT_FORMATS,
            "export_splits": SPLITS,
            "export_action": f"/datasets/{run_id}/export",
        }
        if index is None:
            return page("dataset.html", f"Dataset {dataset['name']}", "Datasets", **context)
        with index:
            summary = index.summary()
            query = view.record_query(RECORDS_SHOWN)
            records, matches, more_than = index.page(query)
        counts = {
            **{name: summary[name] for name in ("accepted", "train", "validation", "rejected")},
            "quality_mean": f"{summary['quality_mean']:.3f}" if summary["quality_mean"] is not None else "—",
        }
        sensitive = summary["sensitive_data"]
        last = view.start + len(records)
        return page(
            "dataset.html",
            f"Dataset {dataset['name']}",
            "Datasets",
            **{**context, "shown": True},
            counts=counts,
            chart=histogram(summary["accepted_histogram"]),
            sensitive_text=sensitive_data_text(sensitive),
            sensitive_findings=sorted(((sensitive or {}).get("findings") or {}).items()),
            records=records,
            split=view.split,
            view=view,
            stages=STAGES,
            sources=list(summary["sources"]),
            filtered=query.filtered,
            matches=f"{matches:,}+" if more_than else f"{matches:,}",
            tabs=[(name, view.query(split=name, start=0, filters=False)) for name in SPLIT_FILES],
            record_query=view.query(start=view.start),  # "Back" returns to this page of the list
            clear_query=view.query(start=0, filters=False),
            next_page=view.query(start=last) if last < matches or more_than else None,
            previous_page=view.query(start=max(0, view.start - RECORDS_SHOWN)) if view.start else None,
            first=view.start + 1 if records else 0,
            last=last,
        )

    def _record(self, run_id: str, index: int, view: _View) -> Response:
        directory = Path(self.find(run_id)["out"])
        report, records = self.shown(directory, view.show_untrusted)
        if records is None:
            return self._dataset(run_id, view)  # the verdict page, which says why nothing is shown
        with records:
            try:
                record = records.record(view.split, index)
            except RecordNotFoundError:
                message = f"the {view.split} split of the dataset of run {run_id} has no record {index}"
                # from None: the index's own not-found names its file; this one names the page's record
                raise RecordNotFoundError(message) from None
        back = f"/datasets/{run_id}{view.query(start=view.start)}"
        title = f"Record {index} ({view.split})"
        return page("record.html", title, "Datasets", record=record, verdict=verdict_words(report), back=back)

    def find(self, run_id: str) -> dict[str, Any]:
        for dataset in written_datasets(self.workspace):
            if run_id in dataset["runs"]:
                return dataset
        raise RecordNotFoundError(f"no dataset written by run {run_id!r}; the Datasets page lists them")


class _View:
    """What a dataset page shows: which split, which records (words, quality, stage, source), from
    which one, and untrusted records if asked."""

    def __init__(self, split: str, start: int, show_untrusted: bool, filters: dict[str, str]) -> None:
        self.split, self.start, self.show_untrusted = split, start, show_untrusted
        self.filters = filters  # as typed: q, min, max, stage, source ("" when not given)

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
        filters = {name: params.get(name, "").strip()[:200] for name in ("q", "min", "max", "stage", "source")}
        view = cls(split, start, params.get("allow_untrusted") == "1", filters)
        view.record_query(RECORDS_SHOWN)  # a wrong filter is the visitor's mistake (400), found before any work
        return view

    def record_query(self, limit: int) -> RecordQuery:
        """The index query of this view."""
        stage = self.filters["stage"] if self.split == "rejected" else ""
        if stage and stage not in STAGES:
            raise UserError(f"there is no stage {stage!r}; pairs are rejected by {', '.join(STAGES)}")
        return RecordQuery(
            split=self.split,
            text=self.filters["q"],
            quality_min=_quality(self.filters["min"], "min"),
            quality_max=_quality(self.filters["max"], "max"),
            stage=stage,
            source=self.filters["source"],
            start=self.start,
            limit=limit,
        )

    def query(self, *, split: str | None = None, start: int | None = 0, filters: bool = True) -> str:
        """The query string of this view with ``split``/``start`` changed ("" when all are defaults)."""
        values: dict[str, object] = {"split": split or self.split}
        if filters:
            values.update(self.filters)
        values.update({"start": start or 0, "allow_untrusted": self.show_untrusted})
        pairs = [(name, value) for name, value in values.items() if value and (name, value) != ("split", "train")]
        return "?" + urlencode([(n, "1" if v is True else v) for n, v in pairs]) if pairs else ""


def _quality(text: str, name: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise UserError(f"the {name} quality must be a number from 0 to 1, not {text!r}")
    return value


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


def verdict_words(report: VerificationReport) -> dict[str, Any]:
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
