"""The live feed of a run (``studio/run_events.py``): one journal poll per run, however many viewers.

The polls go through a stand-in for the Studio's worker pool that answers each poll with the next
snapshot the test hands it, so the test decides exactly when the run changes and counts the polls.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.studio.run_events import RunFeeds
from arcticcodex.workspace import Workspace

VIEWERS = 50


class ScriptedPolls:
    """Stands in for :class:`VaultWorkers`: each ``run`` (a poll) waits for the snapshot the test gives."""

    def __init__(self) -> None:
        self.snapshots: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.polls = 0

    async def run(self, function: Any, *args: Any) -> dict[str, Any]:
        self.polls += 1
        return await self.snapshots.get()


def snapshot(status: str, done: int) -> dict[str, Any]:
    return {"run_id": "run-x", "status": status, "done": done, "pending": 10 - done}


async def read_events(stream: AsyncIterator[str], into: list[tuple[str, dict[str, Any]]]) -> None:
    async for chunk in stream:
        if chunk.startswith("event: "):
            name, data = chunk.split("\n", 2)[:2]
            into.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
        elif chunk.startswith(":"):
            into.append(("heartbeat", {}))


def feeds(workspace: Workspace, polls: ScriptedPolls, **options: Any) -> RunFeeds:
    return RunFeeds(workspace, polls, poll_seconds=0.0, **options)  # type: ignore[arg-type]


async def settle(condition: Any) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the condition was never met")


def test_fifty_viewers_share_one_poll_and_all_get_every_change_then_the_end(workspace: Workspace) -> None:
    async def scenario() -> None:
        polls = ScriptedPolls()
        feed = feeds(workspace, polls)
        seen: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in range(VIEWERS)]
        readers = [asyncio.create_task(read_events(feed.stream("run-x"), into)) for into in seen]
        await settle(lambda: feed.viewers("run-x") == VIEWERS)
        for done in (1, 2, 3):
            await polls.snapshots.put(snapshot("running", done))
            await settle(lambda done=done: all(into and into[-1][1].get("done") == done for into in seen))
        await polls.snapshots.put(snapshot("stopped", 3))
        await asyncio.wait_for(asyncio.gather(*readers), 10)
        assert polls.polls == 4  # one poll per change, not one per viewer
        for into in seen:
            assert [(name, data["done"]) for name, data in into] == [
                ("progress", 1),
                ("progress", 2),
                ("progress", 3),
                ("end", 3),
            ]
        assert feed.viewers("run-x") == 0

    asyncio.run(scenario())


def test_a_quiet_stream_sends_heartbeats_and_a_viewer_that_leaves_unsubscribes(workspace: Workspace) -> None:
    async def scenario() -> None:
        polls = ScriptedPolls()
        feed = feeds(workspace, polls, heartbeat_seconds=0.01)
        seen: list[tuple[str, dict[str, Any]]] = []
        stream = feed.stream("run-x")
        reader = asyncio.create_task(read_events(stream, seen))
        await settle(lambda: sum(name == "heartbeat" for name, _ in seen) >= 2)  # nothing changed: heartbeats
        assert feed.viewers("run-x") == 1 and polls.polls == 1
        reader.cancel()  # the browser went away
        with pytest.raises(asyncio.CancelledError):
            await reader
        await stream.aclose()
        assert feed.viewers("run-x") == 0
        await feed.aclose()

    asyncio.run(scenario())


def test_a_viewer_of_a_finished_run_gets_its_final_event_at_once(tmp_path: Path, workspace: Workspace) -> None:
    async def scenario() -> None:
        polls = ScriptedPolls()
        feed = feeds(workspace, polls)
        await polls.snapshots.put(snapshot("complete", 10))
        seen: list[tuple[str, dict[str, Any]]] = []
        await asyncio.wait_for(read_events(feed.stream("run-x"), seen), 10)
        assert seen == [("end", snapshot("complete", 10))]

    asyncio.run(scenario())


def test_a_run_that_is_not_there_ends_the_stream_saying_why(workspace: Workspace) -> None:
    async def scenario() -> None:
        class Missing(ScriptedPolls):
            async def run(self, function: Any, *args: Any) -> dict[str, Any]:
                found: dict[str, Any] = function(*args)  # the real snapshot: the journal has no such run
                return found

        feed = RunFeeds(workspace, Missing(), poll_seconds=0.0)  # type: ignore[arg-type]
        seen: list[tuple[str, dict[str, Any]]] = []
        await asyncio.wait_for(read_events(feed.stream("run-gone"), seen), 10)
        assert [name for name, _ in seen] == ["end"]
        assert "no distillation run 'run-gone'" in seen[0][1]["error"]

    asyncio.run(scenario())


def test_a_stream_ends_after_its_time_and_the_next_one_starts_from_the_newest_snapshot(workspace: Workspace) -> None:
    async def scenario() -> None:
        polls = ScriptedPolls()
        feed = feeds(workspace, polls, stream_seconds=0.05)
        await polls.snapshots.put(snapshot("running", 4))
        first: list[tuple[str, dict[str, Any]]] = []
        await asyncio.wait_for(read_events(feed.stream("run-x"), first), 10)  # ends on its own, no final event
        assert first and first[0] == ("progress", snapshot("running", 4))
        assert all(name in ("progress", "heartbeat") for name, _ in first)
        await polls.snapshots.put(snapshot("stopped", 6))
        again: list[tuple[str, dict[str, Any]]] = []
        await asyncio.wait_for(read_events(feed.stream("run-x"), again), 10)  # as EventSource reconnects
        assert again[-1] == ("end", snapshot("stopped", 6))
        await feed.aclose()

    asyncio.run(scenario())
