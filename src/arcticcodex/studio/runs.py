"""The Studio's runs: every distill run of the workspace, with its counts, review and dataset."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..distill.journal import RunJournal
from ..human_review import HumanReview
from ..workspace import Workspace
from .datasets import written_datasets
from .pages import page
from .workers import VaultWorkers

__all__ = ["RunPages"]


class RunPages:
    """``/runs`` and its pages, served from the worker threads."""

    def __init__(self, workspace: Workspace, workers: VaultWorkers) -> None:
        self.workspace = workspace
        self.workers = workers

    def routes(self) -> list[Route]:
        return [Route("/runs", self.listing)]

    def body_limits(self) -> dict[str, int]:
        """Paths whose request bodies may be larger than a plain form's (uploads), and their limits."""
        return {}

    async def listing(self, request: Request) -> Response:
        return await self.workers.run(self._listing)

    # -- in a worker --------------------------------------------------------------------------------

    def _listing(self) -> Response:
        with (
            RunJournal(self.workspace) as journal,
            HumanReview(self.workspace, by="studio", vault=self.workers.vault) as review,
        ):
            runs = journal.runs(limit=100)
            datasets = {run_id: d["name"] for d in written_datasets(self.workspace) for run_id in d["runs"]}
            rows = [
                {
                    "run": run,
                    "counts": journal.counts(run.id),
                    "review": review.run_counts(run.id) if run.settings.get("human_review") else None,
                    "dataset": datasets.get(run.id),
                }
                for run in runs
            ]
        live = any(run.status == "running" for run in runs)  # a running run: the page follows it
        return page("runs.html", "Runs", "Runs", runs=rows, refresh=3 if live else None)
