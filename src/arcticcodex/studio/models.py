"""The Studio's Models page: every training run of the workspace, and each model's receipt, checked.

The runs come from the workspace's record (:mod:`arcticcodex.training.runs`): running, complete or
failed, with the dataset (a link to its page when the Studio lists it), the base model, the method and
the held-out loss before → after each stage.  A model is shown with its receipt's two verdicts, in words
and colour, as datasets are: **intact, signer trusted** (green), **intact, signer NOT trusted** (amber),
**NOT intact** (red, with every problem: the receipt edited, a file changed or added, not the dataset
it names).  Integrity includes "trained on the dataset it names" whenever that dataset is still where
the receipt says; when it is not, the page says the check could not be made.

Checking a receipt hashes every model file, so verdicts come from a
:class:`~arcticcodex.training.receipt_verdicts.ReceiptVerdicts` cache keyed by the files' identity and
times — the same choice as the dataset pages: the verdict is on the page every time it is opened (no
button to forget to press, never a stale "intact"), a model is hashed once rather than on every view,
and again as soon as any file under it changes.  Trust is decided afresh on every view.

Evaluations: the model page shows every ``arcticcodex eval`` of the model, found by its receipt's
SHA-256 — a table of each metric with its 95 % interval, student beside baseline, and the chart.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from ..errors import UnsafeFileError
from ..evaluation.chart import LABELS, chart_svg
from ..evaluation.store import Evals
from ..fileio import read_plain_file
from ..provenance.keystore import KeyStore
from ..provenance.trust import KeyRing
from ..training.receipt import MAX_RECEIPT_BYTES, RECEIPT_FILE, ReceiptReport
from ..training.receipt_verdicts import ReceiptVerdicts
from ..training.runs import TrainingRun, TrainingRuns
from ..workspace import Workspace
from .datasets import written_datasets
from .loops import loop_rows
from .pages import page
from .workers import VaultWorkers

__all__ = ["ModelPages"]

PROBLEMS_SHOWN = 50


class ModelPages:
    """The ``/models`` pages of one workspace, served from the worker threads."""

    def __init__(self, workspace: Workspace, workers: VaultWorkers, verdicts: ReceiptVerdicts | None = None) -> None:
        self.workspace = workspace
        self.workers = workers
        self.verdicts = verdicts or ReceiptVerdicts()
        self.keyring = KeyRing.for_user(KeyStore(workspace.keys_dir))  # the user's trusted keys, as the CLI's

    async def listing(self, request: Request) -> Response:
        return await self.workers.run(self._listing)

    async def model(self, request: Request) -> Response:
        return await self.workers.run(self._model, request.path_params["run_id"])

    # -- in a worker --------------------------------------------------------------------------------

    def _listing(self) -> Response:
        runs = TrainingRuns(self.workspace).list()
        datasets = _dataset_pages(self.workspace)
        rows = [self._row(run, datasets) for run in runs]
        loops = loop_rows(self.workspace)
        live = any(run.status == "running" for run in runs) or any(row["status"] == "running" for row in loops)
        return page("models.html", "Models", "Models", models=rows, loops=loops, refresh=5 if live else None)

    def _model(self, run_id: str) -> Response:
        run = TrainingRuns(self.workspace).get(run_id)
        row = self._row(run, _dataset_pages(self.workspace))
        return page(
            "model.html",
            f"Model {row['name']}",
            "Models",
            model=row,
            settings=sorted(run.settings.items()),
            receipt_sha256=run.receipt_sha256 or "",
            evaluations=_evaluations(self.workspace, run.receipt_sha256),
            metric_names=list(LABELS.values()),
            refresh=5 if run.status == "running" else None,
        )

    def _row(self, run: TrainingRun, datasets: dict[str, str]) -> dict[str, Any]:
        """A run as the pages show it: its fields, the link to its dataset, and its receipt's verdicts."""
        folder = Path(run.out)
        has_receipt = (folder / RECEIPT_FILE).is_file()
        verdict = self._verdict(run, folder) if has_receipt else None
        return {
            "id": run.id,
            "name": folder.name,
            "out": run.out,
            "status": run.status,
            "state": {"complete": "ok", "running": "warn", "failed": "bad"}.get(run.status, "warn"),
            "dataset_name": Path(run.dataset_path).name,
            "dataset_path": run.dataset_path,
            "dataset_link": datasets.get(os.path.realpath(run.dataset_path)),
            "merkle_root": run.dataset_merkle_root or "",
            "base": run.base_model,
            "method": run.method,
            "losses": [
                {"stage": stage, "before": _loss(before), "after": _loss(after)}
                for stage, before, after in run.held_out_losses()
            ],
            "started_at": run.started_at,
            "finished_at": run.finished_at or "",
            "error": run.error,
            "verdict": verdict,
        }

    def _verdict(self, run: TrainingRun, folder: Path) -> dict[str, Any]:
        """The receipt's two verdicts as the page shows them (see :func:`_verdict_words`)."""
        raw = _receipt_bytes(folder)
        named = _named_dataset(raw)
        dataset = Path(named) if named and (Path(named) / "manifest.json").is_file() else None
        report = self.verdicts.check(folder, keyring=self.keyring, dataset=dataset)
        notes = []
        if named and dataset is None:
            notes.append(f"the dataset it names is no longer at {named}, so that it is the one was not checked")
        if run.receipt_sha256 and raw and hashlib.sha256(raw).hexdigest() != run.receipt_sha256:
            notes.append(f"{RECEIPT_FILE} is not the one this run wrote (it was replaced after training)")
        return _verdict_words(report) | {"notes": notes}


def _dataset_pages(workspace: Workspace) -> dict[str, str]:
    """The Studio's dataset pages by folder: where a run's dataset links to."""
    return {os.path.realpath(d["out"]): d["run_id"] for d in written_datasets(workspace)}


def _verdict_words(report: ReceiptReport) -> dict[str, Any]:
    """The two verdicts: a state for the colour, words, and every problem (integrity: receipt, files, dataset)."""
    if not report.ok:
        state = "bad"
    elif report.trusted:
        state = "ok"
    else:
        state = "warn"
    total = len(report.problems)
    return {
        "state": state,
        "words": report.verdict,
        "integrity": "intact" if report.ok else f"NOT intact: {total} problem{'s' if total != 1 else ''}",
        "trust": f"signer trusted ({report.trusted_as})" if report.trusted else "signer NOT trusted",
        "trust_note": report.trust_note,
        "key_id": report.key_id,
        "problems": report.problems[:PROBLEMS_SHOWN],
        "more_problems": max(0, total - PROBLEMS_SHOWN),
    }


def _receipt_bytes(folder: Path) -> bytes:
    """The receipt as it is now (b"" when it is not a plain file within the size a receipt has)."""
    try:
        return read_plain_file(folder / RECEIPT_FILE, limit=MAX_RECEIPT_BYTES)
    except (OSError, UnsafeFileError):
        return b""


def _named_dataset(raw: bytes) -> str:
    """The dataset folder the receipt names ("" when it names none or cannot be read)."""
    try:
        path = json.loads(raw)["receipt"]["dataset"]["path"]
    except (ValueError, TypeError, KeyError):
        return ""
    return path if isinstance(path, str) else ""


def _loss(value: float | None) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "—"


def _evaluations(workspace: Workspace, receipt_sha256: str | None) -> list[dict[str, Any]]:
    """The ``eval`` results of the model with this receipt, newest first: a table and a chart each."""
    if not receipt_sha256:
        return []
    shown = []
    for record in Evals(workspace).for_receipt(receipt_sha256):
        rows = []
        for label, model in record.report.get("models", {}).items():
            cells = []
            for metric in LABELS:
                value = model.get("metrics", {}).get(metric, {})
                mean = value.get("mean")
                cells.append(
                    "–" if mean is None else f"{mean:.2f} [{value.get('low', mean):.2f}, {value.get('high', mean):.2f}]"
                )
            rows.append((label, cells))
        shown.append(
            {
                "id": record.id,
                "created_at": record.created_at,
                "questions": record.questions,
                "judges": ", ".join(record.judges) or "the offline local judge",
                "rows": rows,
                "chart": Markup(chart_svg(record.report)),  # noqa: S704 - chart_svg escapes every text it writes
            }
        )
    return shown
