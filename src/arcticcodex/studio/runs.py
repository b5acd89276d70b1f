"""The Studio's runs: every distill run of the workspace, and starting, following, stopping, resuming
and publishing one from the browser — with the library calls ``arcticcodex distill`` makes.

* ``/runs`` lists the runs with their counts and the actions that apply to each;
* ``/runs/new`` is the form that starts one (:mod:`.run_form` reads and checks it; the run executes
  on a thread of its own, :mod:`.run_launcher`);
* ``/runs/{run_id}`` shows one run, refreshing itself while it runs when scripts are off, and
  ``/runs/{run_id}/events`` is its live feed (:mod:`.run_events`), which ``static/runs.js`` follows;
* ``POST /runs/{run_id}/stop|resume|publish`` act on it (each form carries the form token).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from ..distill.journal import RunJournal
from ..errors import ArcticCodexError, UserError
from ..human_review import HumanReview
from ..workspace import Workspace
from .datasets import written_datasets
from .pages import page, without_paths
from .run_events import RunFeeds, run_snapshot
from .run_form import MAX_PROMPTS_BYTES, RunForm, StartRequest
from .run_launcher import RunLauncher
from .workers import VaultWorkers

__all__ = ["RunPages"]

MULTIPART_OVERHEAD = 64_000  # the form around the prompts file: boundaries, headers, the other fields
REFRESH_SECONDS = 3


class RunPages:
    """``/runs`` and its pages, served from the worker threads; runs execute on threads of their own."""

    def __init__(self, workspace: Workspace, workers: VaultWorkers) -> None:
        self.workspace = workspace
        self.workers = workers
        self.launcher = RunLauncher(workspace)
        self.feeds = RunFeeds(workspace, workers)
        self.form = RunForm(workspace)

    def routes(self) -> list[Route]:
        return [
            Route("/runs", self.listing),
            Route("/runs/new", self.new, methods=["GET", "POST"]),
            Route("/runs/{run_id}", self.run),
            Route("/runs/{run_id}/events", self.events),
            Route("/runs/{run_id}/stop", self.stop, methods=["POST"]),
            Route("/runs/{run_id}/resume", self.resume, methods=["POST"]),
            Route("/runs/{run_id}/publish", self.publish, methods=["POST"]),
        ]

    def body_limits(self) -> dict[str, int]:
        """Paths whose request bodies may be larger than a plain form's (uploads), and their limits."""
        return {"/runs/new": MAX_PROMPTS_BYTES + MULTIPART_OVERHEAD}

    async def aclose(self) -> None:
        """The Studio is shutting down: its runs are asked to stop (and left resumable), the feeds end."""
        await self.feeds.aclose()
        await self.launcher.aclose()

    # -- pages --------------------------------------------------------------------------------------

    async def listing(self, request: Request) -> Response:
        return await self.workers.run(self._listing)

    async def run(self, request: Request) -> Response:
        return await self.workers.run(self._run_page, request.path_params["run_id"])

    async def events(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        await self.workers.run(self._known, run_id)  # an unknown run is a 404 page, not an empty stream
        return StreamingResponse(
            self.feeds.stream(run_id),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    async def new(self, request: Request) -> Response:
        if request.method == "GET":
            return await self.workers.run(self._new_page, {}, [], "", 200)
        async with request.form(max_files=1, max_fields=40) as form:  # closing deletes the spooled upload
            fields = {key: str(value) for key, value in form.multi_items() if not isinstance(value, UploadFile)}
            teachers = [str(value) for value in form.getlist("teachers")]
            upload = form.get("prompts")
            filename = upload.filename if isinstance(upload, UploadFile) and upload.filename else ""
            data = await upload.read(MAX_PROMPTS_BYTES + 1) if isinstance(upload, UploadFile) and filename else b""
        fields.pop("csrf_token", None)
        started: StartRequest | None = None
        try:
            started = await self.workers.run(self.form.read, fields, teachers, filename, data)
            run_id = await self.launcher.start(started.begin)
        except ArcticCodexError as error:
            if error.http_status >= 500:
                raise
            message = without_paths(started.shown(str(error)) if started else str(error), self.workspace.root)
            if started is not None:
                await self.workers.run(started.discard)
            return await self.workers.run(self._new_page, fields, teachers, message, 400)
        return RedirectResponse(f"/runs/{run_id}", status_code=303)

    # -- actions (urlencoded forms: a mistake is shown beside the form, see form_errors.py) -----------

    async def stop(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        await self.workers.run(self.launcher.stop, run_id)
        return RedirectResponse(f"/runs/{run_id}", status_code=303)

    async def resume(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        async with request.form() as form:
            budget = str(form.get("budget_usd", "")).strip()
        budget_usd = self.form.budget(budget) if budget else None
        await self.workers.run(self.launcher.resume, run_id, budget_usd=budget_usd)
        return RedirectResponse(f"/runs/{run_id}", status_code=303)

    async def publish(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        await self.workers.run(self._publish, run_id)
        return RedirectResponse(f"/runs/{run_id}", status_code=303)

    # -- in a worker --------------------------------------------------------------------------------

    def _known(self, run_id: str) -> None:
        with RunJournal(self.workspace) as journal:
            journal.run(run_id)

    def _publish(self, run_id: str) -> None:
        """A reviewed run whose pairs are all decided: resuming it publishes the approved ones."""
        snapshot = run_snapshot(self.workspace, run_id)
        if not snapshot["human_review"]:
            raise UserError(f"run {run_id} was made without human review; it publishes as it runs (resume it)")
        if snapshot["awaiting_review"]:
            raise UserError(
                f"{snapshot['awaiting_review']} pair(s) of run {run_id} still await review; decide on them "
                "under Review, then publish"
            )
        self.launcher.resume(run_id)

    def _new_page(self, fields: dict[str, str], teachers: list[str], error: str, status: int) -> Response:
        return page(
            "run_new.html",
            "Start a run",
            "Runs",
            status_code=status,
            error=error,
            **self.form.context(fields, teachers),
        )

    def _run_page(self, run_id: str) -> Response:
        snapshot = run_snapshot(self.workspace, run_id)
        with RunJournal(self.workspace) as journal:
            run = journal.run(run_id)
        return page(
            "run.html",
            f"Run {run_id}",
            "Runs",
            run=snapshot,
            settings=[
                (name, without_paths(value, self.workspace.root)) for name, value in _settings_shown(run.settings)
            ],
            actions=self._actions(snapshot),
            live=snapshot["status"] == "running",
            refresh_seconds=REFRESH_SECONDS,
        )

    def _actions(self, snapshot: dict[str, Any]) -> list[str]:
        """What may be done with the run now: stop, resume, publish."""
        if snapshot["status"] == "running":
            return ["stop"]
        if snapshot["status"] != "stopped":
            return []
        if snapshot["human_review"] and not snapshot["awaiting_review"] and not snapshot["pending"]:
            return ["publish"]
        return ["resume"] if not snapshot["awaiting_review"] or snapshot["pending"] else []

    def _listing(self) -> Response:
        with (
            RunJournal(self.workspace) as journal,
            HumanReview(self.workspace, by="studio", vault=self.workers.vault) as review,
        ):
            runs = journal.runs(limit=100)
            datasets = {run_id: d["name"] for d in written_datasets(self.workspace) for run_id in d["runs"]}
            rows = []
            for run in runs:
                counts = journal.counts(run.id)
                reviewed = bool(run.settings.get("human_review"))
                review_counts = review.run_counts(run.id) if reviewed else None
                snapshot = {
                    "status": run.status,
                    "human_review": reviewed,
                    "awaiting_review": review_counts["pending"] if review_counts else 0,
                    "pending": counts["pending"],
                }
                rows.append(
                    {
                        "run": run,
                        "counts": counts,
                        "review": review_counts,
                        "dataset": datasets.get(run.id),
                        "actions": self._actions(snapshot),
                    }
                )
        live = any(run.status == "running" for run in runs)  # a running run: the page follows it
        return page("runs.html", "Runs", "Runs", runs=rows, refresh=REFRESH_SECONDS if live else None)


def _settings_shown(settings: dict[str, Any]) -> list[tuple[str, str]]:
    """The settings a person chose, in words, for the run's page."""
    budget = settings.get("budget_usd")
    return [
        ("source", str(settings.get("source", ""))),
        ("teachers", ", ".join(settings.get("teachers") or ()) or "the workspace's teachers"),
        ("threshold", str(settings.get("threshold"))),
        ("max rounds", str(settings.get("max_rounds"))),
        ("budget", f"${budget:.2f}" if budget is not None else "none"),
        ("human review", "on" if settings.get("human_review") else "off"),
    ]
