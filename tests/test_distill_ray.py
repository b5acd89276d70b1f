"""`arcticcodex distill --engine ray` (issue 15): a run's tasks in shards on a local Ray, exactly once.

A local Ray (started by the run on 127.0.0.1, no dashboard) runs each shard as a task against the
shard's own journal and request cache; the driver merges them and publishes in task order.  The
fake OpenAI server is the teacher, and its request log is what proves that nothing was asked twice.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest

from arcticcodex.dataset import verify_dataset
from arcticcodex.distill.shards import shard_of
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import make_root, records, write_prompts

pytestmark = pytest.mark.slow
PLACES = ["harbour", "mill", "bridge", "chapel", "market", "tower", "school", "garden", "station", "library"]
VOLATILE = ("created_at", "integrity")  # when it was signed, and by which workspace's key


def prompts(count: int) -> list[dict[str, Any]]:
    return [
        {
            "instruction": f"When was the {PLACES[n % len(PLACES)]} of town {n} built?",
            "evidence": f"The {PLACES[n % len(PLACES)]} of town {n} was built in {1700 + n}. It still stands.",
        }
        for n in range(count)
    ]


def comparable(folder: Path) -> list[dict[str, Any]]:
    """The dataset's records in order, without what differs between two runs of the same prompts."""
    rows = records(folder / "train.jsonl") + records(folder / "validation.jsonl")
    return [{name: value for name, value in row.items() if name not in VOLATILE} for row in rows]


def chat_bodies(server: FakeOpenAIServer) -> list[str]:
    return [json.dumps(r.body, sort_keys=True) for r in server.requests if r.path.endswith("/chat/completions")]


def test_four_shards_on_ray_publish_what_a_single_process_run_publishes(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    pytest.importorskip("ray")
    root = make_root(acx, tmp_path, server)
    given = write_prompts(tmp_path / "prompts.jsonl", prompts(200))
    assert sorted(Counter(shard_of(f"p{n}", 4) for n in range(200)).values())[0] > 0  # the hash spreads keys
    args = ["distill", "--prompts", given, "--teachers", "gpu", "--drafter", "gpu", "--validation", "0.1"]
    single = json.loads(acx("-w", root, *args, "--out", tmp_path / "single", "--json").stdout)
    assert single["status"] == "complete" and single["written"] == 200

    other = make_root(acx, tmp_path / "other", server)  # a fresh workspace: no request answered from a cache
    server.clear()
    sharded = acx("-w", other, *args, "--out", tmp_path / "ray", "--engine", "ray", "--shards", "4", "--json")
    summary = json.loads(sharded.stdout)
    assert summary["status"] == "complete" and (summary["accepted"], summary["written"]) == (200, 200)
    assert comparable(tmp_path / "ray") == comparable(tmp_path / "single")
    assert verify_dataset(tmp_path / "ray").ok
    sent = chat_bodies(server)
    assert len(sent) == len(set(sent)) and Counter(r.role for r in server.requests)["drafter"] == 200
    shards = sorted((Workspace.open(other).runs_dir / summary["run_id"] / "shards").glob("shard-*.sqlite"))
    assert [path.name for path in shards] == [f"shard-{index}.sqlite" for index in range(4)]


ARCTICCODEX = str(Path(sys.executable).with_name("arcticcodex"))
IN_FLIGHT = 8  # the run's concurrency: what one shard can have asked and not yet been answered when killed


def reference_run(acx: Acx, tmp_path: Path, server: FakeOpenAIServer, given: Path) -> Path:
    """The dataset a single-process run publishes from ``given``, in a workspace of its own."""
    root = make_root(acx, tmp_path / "reference", server)
    args = ["distill", "--prompts", given, "--teachers", "gpu", "--drafter", "gpu", "--validation", "0.1"]
    acx("-w", root, *args, "--out", tmp_path / "single", "--json")
    return tmp_path / "single"


def shard_workers(driver: int) -> list[psutil.Process]:
    """The worker processes of ``driver``'s own Ray running a shard now (Ray titles them after the task);
    never another run's on the same machine."""
    found = []
    with contextlib.suppress(psutil.NoSuchProcess):
        for process in psutil.Process(driver).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "ray::run_shard" in " ".join(process.cmdline()):
                    found.append(process)
    return found


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def answered(server: FakeOpenAIServer) -> int:
    return sum(1 for r in server.requests if r.path.endswith("/chat/completions"))


def paid_twice(server: FakeOpenAIServer) -> int:
    """Requests sent again with the same body: each is a teacher call paid a second time."""
    return sum(count - 1 for count in Counter(chat_bodies(server)).values())


def test_a_shard_whose_worker_is_killed_is_run_again_and_the_dataset_is_unchanged(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    given = write_prompts(tmp_path / "prompts.jsonl", prompts(200))
    single = reference_run(acx, tmp_path, server, given)
    root = make_root(acx, tmp_path / "sharded", server)
    server.latency = 0.05  # slow enough that a kill lands inside a shard
    server.clear()
    args = ["distill", "--prompts", str(given), "--teachers", "gpu", "--drafter", "gpu", "--validation", "0.1"]
    args += ["--out", str(tmp_path / "ray"), "--engine", "ray", "--shards", "4", "--json"]
    log = tmp_path / "driver.log"
    with log.open("wb") as sink:
        driver = subprocess.Popen([ARCTICCODEX, "-w", str(root), *args], stdout=subprocess.PIPE, stderr=sink)
    killed: list[int] = []
    for _ in range(3000):  # a guard against a run that never gets there, not a timing assertion
        if driver.poll() is not None or killed:
            break
        workers = shard_workers(driver.pid)
        if workers and answered(server) >= 40:
            workers[0].kill()
            killed.append(workers[0].pid)
        time.sleep(0.05)
    stdout, _ = driver.communicate(timeout=600)
    assert killed, f"no shard worker was seen to kill\n{log.read_text()[-2000:]}"
    assert driver.returncode == 0, log.read_text()[-2000:]
    summary = json.loads(stdout)
    assert summary["status"] == "complete" and summary["written"] == 200
    assert comparable(tmp_path / "ray") == comparable(single)
    assert paid_twice(server) <= IN_FLIGHT  # only what the killed worker had in flight was asked again
    assert verify_dataset(tmp_path / "ray").ok


def test_a_driver_killed_mid_run_is_resumed_and_pays_for_no_call_twice(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    given = write_prompts(tmp_path / "prompts.jsonl", prompts(200))
    single = reference_run(acx, tmp_path, server, given)
    root = make_root(acx, tmp_path / "sharded", server)
    server.latency = 0.05
    server.clear()
    args = ["distill", "--prompts", str(given), "--teachers", "gpu", "--drafter", "gpu", "--validation", "0.1"]
    args += ["--out", str(tmp_path / "ray"), "--engine", "ray", "--shards", "4", "--json"]
    log = tmp_path / "driver.log"
    with log.open("wb") as sink:
        driver = subprocess.Popen([ARCTICCODEX, "-w", str(root), *args], stdout=subprocess.DEVNULL, stderr=sink)
    for _ in range(3000):
        if driver.poll() is not None or answered(server) >= 120:
            break
        time.sleep(0.05)
    assert driver.poll() is None, log.read_text()[-2000:]
    workers = shard_workers(driver.pid)
    driver.kill()  # SIGKILL: the driver runs no code; its local Ray goes down with it
    driver.wait()
    for _ in range(600):  # the killed run's workers finish dying (their shard locks die with them)
        if not any(alive(worker) for worker in workers):
            break
        time.sleep(0.05)
    before = answered(server)
    assert 0 < before < 600 and not (tmp_path / "ray" / "manifest.json").exists()

    resumed = json.loads(acx("-w", root, "distill", "--resume", "latest", "--json").stdout)
    assert resumed["status"] == "complete" and resumed["written"] == 200
    assert comparable(tmp_path / "ray") == comparable(single)
    assert paid_twice(server) <= 2 * IN_FLIGHT  # two shards ran at once on 2 CPUs: their calls in flight, at most
    assert verify_dataset(tmp_path / "ray").ok
