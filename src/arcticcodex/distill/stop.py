"""Asking a running distill run to stop, from any process: a request file its workers look for.

A run executes in whichever process started or resumed it (``arcticcodex distill`` in a terminal, or
the Studio on a thread of its own), so a stop cannot be a signal sent to a known thread.  Instead the
request is written into the run's folder (``.arcticcodex/runs/RUN/stop-requested``); the run's
:meth:`~arcticcodex.distill.run.Distiller.execute` watches for it every :data:`STOP_POLL_SECONDS`, and
when it appears cancels the teacher calls in flight (those already answered are in the request cache,
so a resume does not pay for them twice), lets each finished task's journal record stand, abandons
live publishing (nothing is left under ``--out``), and records the run as ``stopped`` with a note that
says how to resume it.  Starting or resuming the run clears a request left over from before.

A file, not a journal column: the journal's schema is shared with every migration, and a request
file costs one ``stat`` per poll and nothing at all for a run nobody stops.  A run on Ray (``engine =
"ray"``) is not watched: its shards work in other processes; stop it with Ctrl-C where it was started.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ..workspace import Workspace

__all__ = ["STOP_POLL_SECONDS", "StopRequests", "stopped_note"]

STOP_POLL_SECONDS = 0.2
REQUEST_FILE = "stop-requested"


def stopped_note(run_id: str, pending: int) -> str:
    """The note of a run stopped on request: what is left, and the two ways to finish it."""
    return (
        f"stopped on request with {pending} task(s) left; finish it with `arcticcodex distill --resume {run_id}` "
        "or the Studio's Resume button (teacher calls already answered are not paid again)"
    )


class StopRequests:
    """The stop requests of one workspace's runs."""

    def __init__(self, workspace: Workspace) -> None:
        self.runs_dir = workspace.runs_dir

    def _path(self, run_id: str) -> Path:
        return self.runs_dir / run_id / REQUEST_FILE

    def request(self, run_id: str) -> None:
        """Ask the run to stop; the process executing it notices within :data:`STOP_POLL_SECONDS`."""
        path = self._path(run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def requested(self, run_id: str) -> bool:
        return self._path(run_id).exists()

    def clear(self, run_id: str) -> None:
        self._path(run_id).unlink(missing_ok=True)

    async def wait(self, run_id: str) -> None:
        """Return once the run is asked to stop (polling every :data:`STOP_POLL_SECONDS`)."""
        while not self.requested(run_id):
            await asyncio.sleep(STOP_POLL_SECONDS)
