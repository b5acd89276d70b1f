"""The Studio's loop pages: each ``arcticcodex loop`` with its students side by side, and its chart.

A loop is listed on the Models page (status, iterations done, the best student's win rate, what the
teachers cost) and has a page of its own: one column per student (0 is the base model), one row per
figure — who drafted, what was accepted, the method and DPO pairs, the held-out loss, the evaluation's
metrics with their intervals, the cost per accepted pair — each trained student linked to its model
page (receipt verdicts, evaluations), and the chart of quality per iteration beside the cost per pair.
Everything comes from the workspace's journal (:mod:`arcticcodex.loop.journal`); a running loop's
page refreshes itself.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from ..evaluation.chart import LABELS
from ..loop.journal import LoopJournal, LoopRecord
from ..loop.report import QUALITY, loop_json, loop_svg
from ..training.runs import TrainingRuns
from ..workspace import Workspace
from .pages import page
from .workers import VaultWorkers

__all__ = ["LoopPages", "loop_rows"]

LISTED = 20


class LoopPages:
    """The ``/models/loops/ID`` page of one workspace, served from the worker threads."""

    def __init__(self, workspace: Workspace, workers: VaultWorkers) -> None:
        self.workspace = workspace
        self.workers = workers

    async def loop(self, request: Request) -> Response:
        return await self.workers.run(self._loop, request.path_params["loop_id"])

    def _loop(self, loop_id: str) -> Response:
        record = LoopJournal(self.workspace).get(loop_id)
        summary = loop_json(record)
        runs = {run.out: run.id for run in TrainingRuns(self.workspace).list()}
        students = [
            {
                "label": "0 (base)" if row["iteration"] == 0 else str(row["iteration"]),
                "best": row["iteration"] == summary["best_iteration"],
                "model": str(row["model"] or ""),
                "model_link": runs.get(str(row["model"] or "").removesuffix("/model")),
            }
            for row in summary["iterations"]
        ]
        return page(
            "loop.html",
            f"Loop {record.id}",
            "Models",
            loop=summary,
            students=students,
            figures=_figures(summary["iterations"]),
            chart=Markup(loop_svg(record)),  # noqa: S704 - loop_svg escapes every text it writes
            refresh=5 if record.status == "running" else None,
        )


def loop_rows(workspace: Workspace) -> list[dict[str, Any]]:
    """The newest loops as the Models page lists them."""
    rows = []
    for record in LoopJournal(workspace).newest(limit=LISTED):
        summary = loop_json(record)
        best = next((row for row in summary["iterations"] if row["iteration"] == summary["best_iteration"]), None)
        rows.append(
            {
                "id": record.id,
                "out": str(record.out),
                "status": record.status.replace("_", " "),
                "state": _state(record),
                "note": record.note,
                "done": max((row["iteration"] for row in summary["iterations"]), default=0),
                "iterations": record.settings.iterations,
                "best": summary["best_iteration"],
                "win_rate": _interval((best or {}).get("metrics", {}).get("win_rate") if best else None),
                "spent_usd": f"{summary['spent_usd']:.4f}",
            }
        )
    return rows


def _state(record: LoopRecord) -> str:
    return {"complete": "ok", "stopped_early": "ok", "failed": "bad"}.get(record.status, "warn")


def _figures(rows: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    def count(value: Any) -> str:
        return "—" if value is None else str(value)

    def loss(row: dict[str, Any]) -> str:
        before, after = row.get("heldout_loss_before"), row.get("heldout_loss_after")
        return f"{before:.3f} → {after:.3f}" if before is not None and after is not None else "—"

    figures = [
        ("drafted by", [row.get("drafter") or "—" for row in rows]),
        ("accepted pairs", [count(row.get("accepted")) for row in rows]),
        ("method", [row.get("method") or "—" for row in rows]),
        ("DPO pairs", [count(row.get("dpo_pairs")) for row in rows]),
        ("held-out loss", [loss(row) for row in rows]),
    ]
    for metric in (*QUALITY, "exact_match", "grounded_contradicted"):
        figures.append((LABELS[metric], [_interval((row.get("metrics") or {}).get(metric)) for row in rows]))
    figures.append(("teacher $", [f"{row['teacher_usd']:.4f}" for row in rows]))
    cost = [row.get("usd_per_accepted_pair") for row in rows]
    figures.append(("$ per accepted pair", ["—" if value is None else f"{value:.4f}" for value in cost]))
    return figures


def _interval(shown: dict[str, Any] | None) -> str:
    if not shown or shown.get("mean") is None:
        return "—"
    return f"{shown['mean']:.2f} [{shown['low']:.2f}, {shown['high']:.2f}]"
