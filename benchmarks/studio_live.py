"""The live run page under load: ``viewers`` browsers follow one run while it writes (used by ``studio.py``).

Two identical runs of ``prompts`` rain prompts are distilled by the command line in a child process
against the fake teacher (its own process, ``latency`` seconds a call): one with nobody watching, one
while the Studio (uvicorn on 127.0.0.1, in this process) serves ``viewers`` concurrent
``/runs/{id}/events`` streams of it and, beside them, the run's page is requested again and again.
Measured: the watched run's wall time over the unwatched one's (the cost of the viewers to the run:
the Studio polls the journal once per run, whatever the number of viewers), the page's p50/p95 while
the viewers are connected, how many progress events each viewer received, and that every viewer got the
final ``end`` event (a stream that ends without it — the Studio closes each after a minute — is reopened,
as a browser's ``EventSource`` does).
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import uvicorn

from arcticcodex.distill.journal import RunJournal
from arcticcodex.studio import create_app
from arcticcodex.workspace import Workspace
from child_runs import fake_teacher_workspace, run_cli, write_rain_prompts
from teachers import FakeServer  # benchmarks/teachers.py: the fake in its own process

CONCURRENCY = 8


@dataclass
class LiveResult:
    alone_s: float
    watched_s: float
    page_ms: list[float]
    events: list[int]
    ended: int
    viewers: int
    reconnects: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def slowdown(self) -> float:
        return self.watched_s / self.alone_s


def _distill(scratch: Path, root: Path, prompts: Path) -> float:
    started = time.perf_counter()
    _, stdout = run_cli(
        scratch, "-w", str(root), "distill", "--prompts", str(prompts), "--out", str(root / "dataset"),
        "--teachers", "fake", "--drafter", "extractive", "--concurrency", str(CONCURRENCY), "--json",
    )  # fmt: skip
    summary = json.loads(stdout)
    if summary["status"] != "complete" or summary["failed"]:
        raise SystemExit(f"the live benchmark's run did not complete: {stdout[:2000]}")
    return time.perf_counter() - started


class _Served:
    """The Studio of ``root`` served by uvicorn on a free port of 127.0.0.1, in a thread."""

    def __init__(self, root: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        app = create_app(Workspace.open(root))
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        for _ in range(400):
            if self.server.started:
                return f"http://127.0.0.1:{self.port}"
            time.sleep(0.05)
        raise SystemExit("the Studio did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


async def _viewer(client: httpx.AsyncClient, path: str, counts: list[int], index: int) -> tuple[bool, int]:
    """Follow the stream until its ``end`` event (reopening it as EventSource does); (ended, reopened)."""
    reopened = 0
    while True:
        async with client.stream("GET", path, timeout=None) as response:
            if response.status_code != 200:
                raise SystemExit(f"{path} answered {response.status_code}")
            async for line in response.aiter_lines():
                if line == "event: progress":
                    counts[index] += 1
                elif line == "event: end":
                    return True, reopened
        reopened += 1
        if reopened > 20:
            return False, reopened


async def _watch(url: str, run_id: str, viewers: int, page_every_s: float) -> tuple[list[int], int, int, list[float]]:
    counts = [0] * viewers
    page_ms: list[float] = []
    limits = httpx.Limits(max_connections=viewers + 4, max_keepalive_connections=viewers + 4)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        watching = [asyncio.create_task(_viewer(client, f"/runs/{run_id}/events", counts, n)) for n in range(viewers)]
        while not all(task.done() for task in watching):
            started = time.perf_counter()
            response = await client.get(f"/runs/{run_id}")
            page_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"/runs/{run_id} answered {response.status_code}")
            await asyncio.sleep(page_every_s)
        outcomes = [task.result() for task in watching]
    return counts, sum(ended for ended, _ in outcomes), sum(again for _, again in outcomes), page_ms


def live_viewers(scratch: Path, *, prompts: int, viewers: int, latency: float) -> LiveResult:
    server = FakeServer(latency)
    try:
        given = write_rain_prompts(scratch / "live-prompts.jsonl", prompts)
        alone_root = fake_teacher_workspace(scratch, "live-alone", server.base_url, CONCURRENCY)
        alone = _distill(scratch, alone_root, given)
        watched_root = fake_teacher_workspace(scratch, "live-watched", server.base_url, CONCURRENCY)
        with _Served(watched_root) as url:
            result: dict[str, Any] = {}
            runner = threading.Thread(target=lambda: result.update(wall=_distill(scratch, watched_root, given)))
            runner.start()
            run_id = _first_run(Workspace.open(watched_root))
            counts, ended, reopened, page_ms = asyncio.run(_watch(url, run_id, viewers, 0.05))
            runner.join()
        return LiveResult(alone, result["wall"], page_ms, counts, ended, viewers, reopened)
    finally:
        server.close()


def _first_run(workspace: Workspace) -> str:
    """The id of the workspace's run, as soon as the child has created it."""
    for _ in range(2400):
        with RunJournal(workspace) as journal:
            runs = journal.runs(limit=1)
        if runs:
            return runs[0].id
        time.sleep(0.025)
    raise SystemExit("the live benchmark's run never started")


def summary_lines(result: LiveResult, bound_ms: float, slowdown_bound: float) -> list[str]:
    ordered = sorted(result.page_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return [
        f"  run alone {result.alone_s:6.1f} s   watched by {result.viewers} viewers {result.watched_s:6.1f} s"
        f"   = {result.slowdown:.2f}× (bound {slowdown_bound:.2f}×)",
        f"  GET /runs/{{id}} while watched: {len(ordered)} requests, p50 {statistics.median(ordered):6.1f} ms"
        f"   p95 {p95:6.1f} ms = {p95 / bound_ms:.2f}× the bound",
        f"  progress events a viewer: min {min(result.events)}, median {statistics.median(result.events):.0f},"
        f" max {max(result.events)};   viewers that got the end: {result.ended} of {result.viewers}"
        f" (streams reopened: {result.reconnects})",
    ]
