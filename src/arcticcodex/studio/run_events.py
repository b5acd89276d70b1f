"""A run's progress as the Studio shows it, and the live feed its pages follow (server-sent events).

:func:`run_snapshot` reads one run's state from the journal — counts, cost, the rate of the last
minute and the time left at that rate, failures with their reasons, status and note — for the page
and for the feed alike, so both always say the same.  It reads the journal only, so a run started by
``arcticcodex distill`` in another process is followed as well as one this Studio started.

:class:`RunFeeds` is the broadcaster behind ``/runs/{run_id}/events``: one poll of the journal per
run, however many viewers follow it (each poll on a worker thread), and each viewer gets the newest
snapshot when it changes — a slow viewer skips states instead of queueing them, so fifty open tabs
cost fifty small writes per change and one query per second.  A comment line every
``heartbeat_seconds`` keeps proxies and the browser from closing a quiet stream; a viewer that goes
away unsubscribes (and the poll stops with the last one); once the run is no longer ``running`` a
final ``end`` event is sent and every stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from typing import Any

from ..distill.journal import RunJournal
from ..distill.settings import RunSettings
from ..workspace import Workspace
from .pages import without_paths
from .workers import VaultWorkers

__all__ = ["RunFeeds", "run_snapshot"]

RATE_WINDOW_SECONDS = 60.0
RECONNECT_MILLISECONDS = 1000
FAILURES_SHOWN = 20


def run_snapshot(workspace: Workspace, run_id: str) -> dict[str, Any]:
    """The run's state as JSON-ready values (blocking: call it on a worker thread)."""
    with RunJournal(workspace) as journal:
        run = journal.run(run_id)
        counts = journal.counts(run_id)
        reviewed = bool(RunSettings.from_json(run.settings).human_review)
        awaiting = journal.awaiting_review_count(run_id) if reviewed else 0
        since = (datetime.now(UTC) - timedelta(seconds=RATE_WINDOW_SECONDS)).isoformat(timespec="milliseconds")
        recent, first, last = journal.conn.execute(
            "SELECT count(*), min(finished_at), max(finished_at) FROM distill_tasks"
            " WHERE run_id = ? AND finished_at >= ?",
            (run_id, since),
        ).fetchone()
        failures = journal.failures(run_id, limit=FAILURES_SHOWN)
    rate = _rate(recent, first, last) if run.status == "running" else 0.0
    eta = round(counts["pending"] / rate) if rate > 0 and counts["pending"] else None
    return {
        "run_id": run.id,
        "status": run.status,
        "note": run.note or "",
        "tasks": run.task_count,
        "done": run.task_count - counts["pending"],
        **counts,
        "spent_usd": round(run.spent_usd, 6),
        "spent": f"${run.spent_usd:.4f}",
        "rate": f"{rate * 60:.1f} per minute" if rate else "—",
        "eta": _duration(eta) if eta is not None else "—",
        "human_review": reviewed,
        "awaiting_review": awaiting,
        "failures": [{"position": position, "reason": reason} for position, reason in failures],
        "out": run.out,
    }


def _rate(count: int, first: str | None, last: str | None) -> float:
    """Tasks per second over the last minute: between its first and last finished task (a run that
    started, or resumed, a moment ago has no minute behind it yet); 0 until two tasks have finished."""
    if count < 2 or first is None or last is None:
        return 0.0
    seconds = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()
    return (count - 1) / seconds if seconds > 0 else 0.0


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class _Viewer:
    """One open stream: the newest snapshot not yet sent, and an event set when there is one."""

    def __init__(self) -> None:
        self.latest: dict[str, Any] | None = None
        self.changed = asyncio.Event()

    def offer(self, snapshot: dict[str, Any]) -> None:
        self.latest = snapshot
        self.changed.set()


class _Feed:
    """The viewers of one run and the one task that polls its journal for them."""

    def __init__(self) -> None:
        self.viewers: set[_Viewer] = set()
        self.latest: dict[str, Any] | None = None
        self.ended = False
        self.poller: asyncio.Task[None] | None = None


class RunFeeds:
    """The live feeds of the Studio's runs (see the module docstring); used on the event loop only."""

    def __init__(
        self,
        workspace: Workspace,
        workers: VaultWorkers,
        *,
        poll_seconds: float = 1.0,
        heartbeat_seconds: float = 15.0,
        stream_seconds: float = 60.0,
    ) -> None:
        """``stream_seconds``: how long one stream lasts before it ends without a final event and the
        browser's ``EventSource`` connects again (at once, as ``retry`` says) — so a server that is
        shutting down, which waits for open responses to finish, waits at most that long for viewers."""
        self.workspace = workspace
        self.workers = workers
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.stream_seconds = stream_seconds
        self.polls = 0
        """How many journal polls all feeds have made (one per run per interval, whatever the viewers)."""
        self._feeds: dict[str, _Feed] = {}

    def viewers(self, run_id: str) -> int:
        feed = self._feeds.get(run_id)
        return len(feed.viewers) if feed else 0

    async def stream(self, run_id: str) -> AsyncGenerator[str, None]:
        """The server-sent events of one viewer: ``progress`` on each change, heartbeats, then ``end``."""
        viewer = _Viewer()
        feed = self._subscribe(run_id, viewer)
        loop = asyncio.get_running_loop()
        until = loop.time() + self.stream_seconds
        try:
            yield f"retry: {RECONNECT_MILLISECONDS}\n\n"
            while True:
                left = until - loop.time()
                if left <= 0:
                    return  # the browser connects again; the feed's newest snapshot greets it
                try:
                    await asyncio.wait_for(viewer.changed.wait(), min(self.heartbeat_seconds, left))
                except TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
                viewer.changed.clear()
                snapshot = viewer.latest
                if snapshot is not None:
                    final = snapshot["status"] != "running" or "error" in snapshot
                    yield _event("end" if final else "progress", snapshot)
                    if final:
                        return
        finally:
            self._unsubscribe(run_id, feed, viewer)

    def _subscribe(self, run_id: str, viewer: _Viewer) -> _Feed:
        feed = self._feeds.get(run_id)
        if feed is None or feed.ended:
            feed = self._feeds[run_id] = _Feed()
            feed.poller = asyncio.create_task(self._poll(run_id, feed), name=f"feed {run_id}")
        feed.viewers.add(viewer)
        if feed.latest is not None:
            viewer.offer(feed.latest)
        return feed

    def _unsubscribe(self, run_id: str, feed: _Feed, viewer: _Viewer) -> None:
        feed.viewers.discard(viewer)
        if not feed.viewers:
            if feed.poller is not None and not feed.ended:
                feed.poller.cancel()
            if self._feeds.get(run_id) is feed:
                del self._feeds[run_id]

    async def _poll(self, run_id: str, feed: _Feed) -> None:
        while True:
            self.polls += 1
            try:
                snapshot = await self.workers.run(run_snapshot, self.workspace, run_id)
            except Exception as error:  # a run that is not there (any more): the viewers hear why, then the end
                snapshot = {
                    "run_id": run_id,
                    "status": "missing",
                    "error": without_paths(str(error), self.workspace.root),
                }
            if snapshot != feed.latest:
                feed.latest = snapshot
                for viewer in list(feed.viewers):
                    viewer.offer(snapshot)
            if snapshot["status"] != "running":
                feed.ended = True
                return
            await asyncio.sleep(self.poll_seconds)

    async def aclose(self) -> None:
        """Stop every poll (the Studio is shutting down)."""
        pollers = [feed.poller for feed in self._feeds.values() if feed.poller is not None]
        for poller in pollers:
            poller.cancel()
        for poller in pollers:
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        self._feeds.clear()


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
