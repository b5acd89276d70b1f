"""Distill runs the Studio starts and resumes: each on a thread of its own, with its own event loop.

A run takes minutes to hours and makes many teacher calls; it must not hold one of the page workers
(:mod:`.workers`) nor the server's event loop.  So each run gets a thread that opens its own
:class:`~arcticcodex.distill.run.Distiller` (its own database connections) and runs it with
``run_sync`` — the same library calls as ``arcticcodex distill``: :meth:`Distiller.start` to check
and create it, :meth:`Distiller.execute` to work through it and publish.  At most ``max_active`` run
at once in one Studio.

Starting waits only for the run to be created (every check done, the tasks in the journal): a
mistake — an unknown teacher, a prompts file whose line 3 is not JSON — comes back to the form that
asked, and nothing was created.  Stopping writes a stop request (:mod:`arcticcodex.distill.stop`),
which the process executing the run notices, whichever process that is: this Studio, or
``arcticcodex distill`` in a terminal.  When the Studio shuts down it asks its own runs to stop
and waits a while for them, so each is left ``stopped`` and resumable.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from .._sync import run_sync
from ..distill.journal import RunJournal
from ..distill.run import Distiller, StartedRun
from ..distill.stop import StopRequests, stopped_note
from ..errors import UserError
from ..workspace import Workspace

__all__ = ["RunLauncher"]

log = logging.getLogger(__name__)

MAX_ACTIVE_RUNS = 3
SHUTDOWN_WAIT_SECONDS = 30.0

Begin = Callable[[Distiller], Coroutine[Any, Any, StartedRun]]
"""Creates the run: a :meth:`Distiller.start` call with the form's source, settings and folder."""
Work = Callable[[Distiller, "_Job"], Coroutine[Any, Any, None]]


@dataclass(eq=False)
class _Job:
    """One run on its thread: created (the run id, or the error that stopped its creation), then executed."""

    created: Future[str] = field(default_factory=Future)
    run_id: str | None = None
    stop_wanted: bool = False
    thread: threading.Thread | None = None


class RunLauncher:
    """The runs this Studio executes, on threads of their own."""

    def __init__(self, workspace: Workspace, *, max_active: int = MAX_ACTIVE_RUNS) -> None:
        self.workspace = workspace
        self.max_active = max_active
        self.stop_requests = StopRequests(workspace)
        self._jobs: set[_Job] = set()
        self._lock = threading.Lock()

    def active(self) -> set[str]:
        """The runs executing in this Studio now."""
        with self._lock:
            return {job.run_id for job in self._jobs if job.run_id is not None}

    async def start(self, begin: Begin) -> str:
        """Create a run with ``begin(distiller)`` (a :meth:`Distiller.start` call) on a new thread, then
        execute it there; return its id once it exists, or raise what refused it."""
        job = self._launch(lambda distiller, job: self._start_and_execute(distiller, job, begin))
        return await asyncio.wrap_future(job.created)

    def resume(self, run_id: str, *, budget_usd: float | None = None) -> None:
        """Execute a stopped run again (with a new budget, if given): its pending work, then publishing —
        which, for a reviewed run whose pairs are all decided, publishes the approved ones."""
        with RunJournal(self.workspace) as journal:
            run = journal.run(run_id)
            if run_id in self.active() or run.status == "running":
                raise UserError(f"run {run_id} is running; stop it first, or wait for it to finish")
            if run.status == "complete":
                raise UserError(f"run {run_id} is complete; there is nothing to resume (start a new run instead)")
            self._launch(lambda distiller, job: self._execute(distiller, job, run_id, budget_usd), run_id=run_id)
            # running from now on, as its page and feed say at once (execute sets it again on its thread)
            journal.set_status(run_id, "running", run.note)

    def stop(self, run_id: str) -> None:
        """Ask the run to stop, wherever it executes (see :mod:`arcticcodex.distill.stop`)."""
        with RunJournal(self.workspace) as journal:
            run = journal.run(run_id)
        with self._lock:
            ours = [job for job in self._jobs if job.run_id == run_id]
            for job in ours:
                job.stop_wanted = True
        if run.status != "running" and not ours:
            raise UserError(f"run {run_id} is {run.status}, not running; there is nothing to stop")
        self.stop_requests.request(run_id)

    def close(self, wait_seconds: float = SHUTDOWN_WAIT_SECONDS) -> None:
        """Ask every run of this Studio to stop and wait (up to ``wait_seconds`` each) until they have."""
        with self._lock:
            jobs = list(self._jobs)
            for job in jobs:
                job.stop_wanted = True
        for job in jobs:
            if job.run_id is not None:
                self.stop_requests.request(job.run_id)
        for job in jobs:
            if job.thread is not None:
                job.thread.join(wait_seconds)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    # -- on the run's thread ------------------------------------------------------------------------

    def _launch(self, work: Work, *, run_id: str | None = None) -> _Job:
        job = _Job(run_id=run_id)
        if run_id is not None:  # a run that exists already (a resume)
            job.created.set_result(run_id)
        with self._lock:
            if run_id is not None and any(job.run_id == run_id for job in self._jobs):
                raise UserError(f"run {run_id} is running in this Studio already")
            if len(self._jobs) >= self.max_active:
                raise UserError(
                    f"this Studio is running {len(self._jobs)} run(s) already, its most at once ({self.max_active}); "
                    "stop one or wait for one to finish, then start this one again"
                )
            self._jobs.add(job)
        job.thread = threading.Thread(target=self._main, args=(job, work), name="studio run", daemon=True)
        job.thread.start()
        return job

    def _main(self, job: _Job, work: Work) -> None:
        try:
            with Distiller(self.workspace) as distiller:
                run_sync(work(distiller, job))
        except BaseException as error:
            if not job.created.done():
                job.created.set_exception(error)
            else:
                log.exception("run %s failed", job.run_id)
                self._record_failure(job, error)
        finally:
            with self._lock:
                self._jobs.discard(job)

    async def _start_and_execute(self, distiller: Distiller, job: _Job, begin: Begin) -> None:
        started = await begin(distiller)
        job.run_id = started.record.id
        job.created.set_result(started.record.id)
        await self._execute(distiller, job, started.record.id, None)

    async def _execute(self, distiller: Distiller, job: _Job, run_id: str, budget_usd: float | None) -> None:
        if job.stop_wanted:  # stopped before it began to work
            pending = distiller.journal.counts(run_id)["pending"]
            distiller.journal.set_status(run_id, "stopped", stopped_note(run_id, pending))
            return
        await distiller.execute(run_id, budget_usd=budget_usd)

    def _record_failure(self, job: _Job, error: BaseException) -> None:
        """A run that crashed here is left ``stopped`` with why, not ``running`` with nobody working on it."""
        if job.run_id is None:
            return
        try:
            with RunJournal(self.workspace) as journal:
                journal.set_status(
                    job.run_id,
                    "stopped",
                    f"the run failed: {error}; fix the cause, then resume it (`arcticcodex distill --resume "
                    f"{job.run_id}` or the Studio's Resume button)",
                )
        except Exception:  # the journal itself failed: the log has both errors
            log.exception("could not record the failure of run %s", job.run_id)
