"""Crash test: kill -9 the run process at random moments, resume each time, and lose or repeat nothing.

The run is a real ``arcticcodex distill`` process talking to the fake teacher server over HTTP; it is
killed (SIGKILL: no cleanup of any kind) at ≥ 10 random moments — while creating the run, while
teachers answer, while the journal is written, while the dataset is published — and resumed each time.
The final dataset must equal an uninterrupted run's, verify, hold no duplicate, and no teacher
request may have been sent twice unless a kill came between the two sends while its reply was not
in the request cache (read from the database after each kill: no clock windows, so a slow machine
that takes long to store a reply is judged by what it stored, not by how fast).  The run's recorded
spend must be exactly what the replies in the request cache cost: a cost written apart from its reply
is lost (or counted twice) by a kill between the two writes.
"""

from __future__ import annotations

import json
import math
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.dataset import verify_dataset
from arcticcodex.teachers.cache import request_key
from arcticcodex.teachers.entries import TeacherConfig
from arcticcodex.teachers.results import Usage
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer

KILLS = 10
LATENCY = 0.05
CONCURRENCY = 3
ARCTICCODEX = str(Path(sys.executable).with_name("arcticcodex"))
PRICES = {"price_input": 0.27, "price_cached_input": 0.07, "price_output": 1.10}  # $ per million tokens
PLACES = ["harbour", "mill", "bridge", "chapel", "market", "tower", "school", "garden", "station", "library"]


def make_workspace(acx: Acx, root: Path, base_url: str) -> Path:
    workspace, _ = Workspace.init(root)
    config = workspace.root / "arcticcodex.toml"
    config.write_text(
        config.read_text()
        + '\n[vault]\nembedding_model = "hashing-64"\n'
        + f'\n[[teachers]]\nname = "gpu"\npreset = "vllm"\nbase_url = "{base_url}"\nmodel = "fake-model"\n'
        + "".join(f"{name} = {price}\n" for name, price in PRICES.items())  # priced, so a lost cost shows
    )
    for command in (["keys", "new", "dataset"], ["teachers", "trust", "gpu"]):  # a hand-written entry: trusted
        acx("-w", workspace.root, *command)
    return workspace.root


def prompts_file(path: Path, count: int) -> Path:
    lines = []
    for n in range(count):
        place = PLACES[n % len(PLACES)]
        fact = f"The {place} of village {n} was built in {1700 + 7 * n} by {n % 13} masons from the coast."
        lines.append(json.dumps({"instruction": f"When was the {place} of village {n} built?", "evidence": fact}))
    path.write_text("\n".join(lines) + "\n")
    return path


def command(root: Path, *args: str) -> list[str]:
    return [ARCTICCODEX, "-w", str(root), "distill", *args]


def run_ids(root: Path) -> list[str]:
    database = root / ".arcticcodex" / "arcticcodex.db"
    if not database.exists():
        return []
    with sqlite3.connect(database) as conn:
        try:
            return [row[0] for row in conn.execute("SELECT id FROM distill_runs ORDER BY created_at")]
        except sqlite3.OperationalError:  # killed before the tables were made
            return []


def accepted(out: Path) -> set[tuple[str, str, str, float]]:
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    return {(r["id"], r["instruction"], r["completion"], r["quality"]) for r in rows}


def spend_and_cached_cost(root: Path, run_id: str) -> tuple[float, float]:
    """The run's recorded spend, and what the replies in the workspace's request cache cost at the prices."""
    prices = TeacherConfig(
        name="gpu",
        preset="vllm",
        model="fake-model",
        base_url="http://127.0.0.1",
        price_input=PRICES["price_input"],
        price_cached_input=PRICES["price_cached_input"],
        price_output=PRICES["price_output"],
    )
    conn = sqlite3.connect(root / ".arcticcodex" / "arcticcodex.db")
    try:
        (spent,) = conn.execute("SELECT spent_usd FROM distill_runs WHERE id = ?", (run_id,)).fetchone()
        usages = [Usage.model_validate_json(usage) for (usage,) in conn.execute("SELECT usage FROM teacher_cache")]
    finally:
        conn.close()
    cached = math.fsum(prices.cost(u.prompt_tokens, u.cache_hit_tokens, u.completion_tokens) for u in usages)
    return spent, cached


def cached_keys(root: Path) -> frozenset[str]:
    """The request keys whose replies are in the workspace's request cache (empty before the tables exist)."""
    database = root / ".arcticcodex" / "arcticcodex.db"
    if not database.exists():
        return frozenset()
    with sqlite3.connect(database) as conn:
        try:
            return frozenset(key for (key,) in conn.execute("SELECT request_sha256 FROM teacher_cache"))
        except sqlite3.OperationalError:  # killed before the tables were made
            return frozenset()


def bodies(server: FakeOpenAIServer, since: float = 0.0) -> list[tuple[str, float]]:
    return [
        (json.dumps(request.body, sort_keys=True), request.timestamp)
        for request in server.requests
        if request.role is not None and request.role != "generic" and request.timestamp >= since
    ]


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_loses_and_repeats_nothing(tmp_path: Path, acx: Acx) -> None:
    rng = random.Random(20261125)
    with FakeOpenAIServer(model="fake-model", latency=LATENCY) as server:
        prompts = prompts_file(tmp_path / "prompts.jsonl", 150)
        start = ["--prompts", str(prompts), "--concurrency", str(CONCURRENCY), "--teachers", "gpu", "--json"]

        reference_root = make_workspace(acx, tmp_path / "reference", server.base_url)
        reference_out = tmp_path / "reference-out"
        done = subprocess.run(command(reference_root, *start, "--out", str(reference_out)), capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
        reference_calls = bodies(server)
        assert len(reference_calls) == len({body for body, _ in reference_calls}) == 300  # critic + verifier each
        spent, cached = spend_and_cached_cost(reference_root, json.loads(done.stdout)["run_id"])
        assert cached > 0 and spent == pytest.approx(cached, rel=1e-9)
        reference_keys = {request_key(server.base_url, json.loads(body)) for body, _ in reference_calls}
        assert reference_keys == cached_keys(reference_root)  # the keys below are computed as the run computes them

        root = make_workspace(acx, tmp_path / "crashing", server.base_url)
        out = tmp_path / "out"
        crash_started = time.time()
        kill_times: list[float] = []
        cached_at_kill: list[frozenset[str]] = []  # the request cache as each killed process left it
        attempts = 0
        summary: dict[str, Any] | None = None
        while summary is None:
            attempts += 1
            assert attempts < 60, "the run never finished"
            ids = run_ids(root)
            args = ["--resume", ids[0], "--json"] if ids else [*start, "--out", str(out)]
            process = subprocess.Popen(command(root, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if len(kill_times) < KILLS:
                time.sleep(rng.uniform(0.2, 1.6))
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                    kill_times.append(time.time())
                    process.communicate()  # reaps it and closes its pipes
                    cached_at_kill.append(cached_keys(root))
                    continue
            stdout, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr.decode()
            summary = json.loads(stdout)

        assert len(kill_times) >= KILLS
        assert summary["status"] == "complete" and summary["pending"] == 0 and summary["failed"] == 0
        assert accepted(out) == accepted(reference_out)
        report = verify_dataset(out)
        assert report.ok, report.problems
        assert report.records == summary["written"] == len(accepted(out))

        calls = bodies(server, since=crash_started)
        assert {body for body, _ in calls} == {body for body, _ in reference_calls}  # the same questions were asked
        counts = Counter(body for body, _ in calls)
        for body in (body for body, count in counts.items() if count > 1):
            key = request_key(server.base_url, json.loads(body))
            sends = sorted(when for sent, when in calls if sent == body)
            for asked, asked_again in pairwise(sends):
                # asked again only after a process died between the two sends with no reply to it stored
                assert any(
                    asked <= killed <= asked_again and key not in cached_at_kill[n]
                    for n, killed in enumerate(kill_times)
                ), f"paid twice: {body[:120]}"
        repeats = sum(count - 1 for count in counts.values())
        assert repeats <= CONCURRENCY * len(kill_times)
        spent, cached = spend_and_cached_cost(root, summary["run_id"])  # no cost lost or counted twice
        assert spent == pytest.approx(cached, rel=1e-9), f"recorded spend ${spent:.6f}, cached replies ${cached:.6f}"

        before = len(server.requests)  # a finished run resumed again asks nothing and rewrites nothing
        again = subprocess.run(command(root, "--resume", summary["run_id"], "--json"), capture_output=True)
        assert again.returncode == 0 and json.loads(again.stdout)["status"] == "complete"
        assert len(server.requests) == before
