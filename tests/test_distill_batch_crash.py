"""Crash test for ``distill --batch``: SIGKILL the run while its batch is in flight, resume, pay nothing twice.

The run is a real ``arcticcodex distill --batch`` process talking to the fake server over HTTP, killed with
SIGKILL (no cleanup of any kind) at the two moments that matter: while the batch is in flight (the fake holds
every batch ``in_progress``, and the run has polled it), and after the provider created the batch but before
the run learned its id (the fake holds its answer to ``POST /v1/batches``).
``distill --resume`` must attach to the journaled batch instead of submitting its lines again; the fake's
recorded requests show that no line was submitted twice, that each was answered once, that nothing went
to the chat endpoint one by one, and the dataset holds every pair once and verifies.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from arcticcodex.dataset import verify_dataset
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer

PROMPTS = 6
ARCTICCODEX = str(Path(sys.executable).with_name("arcticcodex"))


def journaled_batches(root: Path) -> list[tuple[str, str | None, str]]:
    with sqlite3.connect(root / ".arcticcodex" / "arcticcodex.db") as conn:
        try:
            return list(conn.execute("SELECT input_file_id, batch_id, status FROM teacher_batches"))
        except sqlite3.OperationalError:  # not made yet
            return []


def wait_for(what: str, ready: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    """Wait until ``ready()`` — an event seen in the fake's state, with a deadline that only a freeze trips."""
    deadline = time.monotonic() + 60
    while not ready():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {process.communicate()[1].decode()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the run never got to {what}")
        time.sleep(0.01)


def make_root(acx: Acx, root: Path, server: FakeOpenAIServer) -> tuple[Path, Path]:
    workspace, _ = Workspace.init(root)
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    acx("-w", root, "keys", "new", "dataset")
    acx("-w", root, "teachers", "add", "gpt", "--preset", "openai", "--base-url", server.base_url, "--model", "m")
    prompts = root / "prompts.jsonl"
    questions = [
        {"instruction": f"When was bridge {n} built?", "evidence": f"Bridge {n} was built in {1800 + n}."}
        for n in range(PROMPTS)
    ]
    prompts.write_text("".join(json.dumps(question) + "\n" for question in questions))
    return workspace.root, prompts


def polls(server: FakeOpenAIServer) -> int:
    return len([r for r in server.requests if r.method == "GET" and "/batches/" in r.path])


def killed_while(
    server: FakeOpenAIServer, root: Path, prompts: Path, out: Path, what: str, moment: Callable[[], bool]
) -> None:
    """Start the run in its own process and SIGKILL it once ``moment()`` holds."""
    args = ["-w", str(root), "distill", "--prompts", str(prompts), "--out", str(out), "--teachers", "gpt"]
    process = subprocess.Popen(
        [ARCTICCODEX, *args, "--batch", "--batch-poll", "0.02", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(what, moment, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    assert process.returncode == -signal.SIGKILL


def resumed_without_resubmitting(acx: Acx, server: FakeOpenAIServer, root: Path, out: Path) -> None:
    """Resume the killed run; check from the fake's records that no line went up twice, and the dataset."""
    (in_flight_batch,) = server.batch_api.batches
    run_id = json.loads(acx("-w", root, "runs", "list", "--json").stdout)[0]["run_id"]
    summary = json.loads(acx("-w", root, "distill", "--resume", run_id, "--json").stdout)
    assert summary["status"] == "complete" and summary["accepted"] == PROMPTS and summary["written"] == PROMPTS

    lines = server.batch_api.submitted_lines()
    keys = [key for _, key in lines]
    assert len(keys) == len(set(keys)), "a line was submitted twice"
    assert [key for batch, key in lines if batch == in_flight_batch] == keys[:PROMPTS]  # attached, not resubmitted
    posts = [r for r in server.requests if r.method == "POST" and r.path == "/v1/batches"]
    assert len(posts) == len(Counter(batch for batch, _ in lines)) == 2  # critiques (the one in flight), verifications
    answered = Counter(r.path.rsplit("/", 1)[1] for r in server.requests if "/lines/" in r.path)
    assert answered == Counter(keys)  # each line answered (and paid) exactly once
    assert not [r for r in server.requests if r.path.endswith("/chat/completions")]

    train = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert sorted(r["instruction"] for r in train) == sorted(f"When was bridge {n} built?" for n in range(PROMPTS))
    report = verify_dataset(out)
    assert report.ok and report.records == PROMPTS, report.problems
    assert {status for _, _, status in journaled_batches(root)} == {"completed"}


@pytest.mark.slow
def test_kill_9_while_a_batch_is_in_flight_then_resume_attaches_to_it(
    tmp_path: Path, acx: Acx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-batch")
    with FakeOpenAIServer(model="fake-model") as server:
        root, prompts = make_root(acx, tmp_path / "ws", server)
        out = tmp_path / "out"
        server.batch_api.hold = True  # every batch stays in_progress: in flight until released

        def polled_in_flight() -> bool:
            return (
                any(b["status"] == "in_progress" for b in list(server.batch_api.batches.values()))
                and polls(server) >= 2
            )

        killed_while(server, root, prompts, out, "a batch in flight, polled", polled_in_flight)

        ((batch_id, batch),) = server.batch_api.batches.items()
        assert journaled_batches(root) == [(batch["input_file_id"], batch_id, "submitted")]
        assert len(server.batch_api.submitted_lines()) == PROMPTS and not list(out.glob("*.jsonl"))
        server.batch_api.hold = False
        resumed_without_resubmitting(acx, server, root, out)


@pytest.mark.slow
def test_kill_9_after_the_batch_was_created_and_before_its_id_was_written(
    tmp_path: Path, acx: Acx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-batch")
    with FakeOpenAIServer(model="fake-model") as server:
        root, prompts = make_root(acx, tmp_path / "ws", server)
        out = tmp_path / "out"
        server.batch_api.create_gate = threading.Event()  # the provider makes the batch; its answer waits

        killed_while(server, root, prompts, out, "the batch created", lambda: bool(server.batch_api.batches))

        ((file_id, batch_id, status),) = journaled_batches(root)
        assert batch_id is None and status == "uploaded"  # the run never learned the batch's id
        server.batch_api.create_gate.set()
        resumed_without_resubmitting(acx, server, root, out)  # found by its input file in the provider's list
        assert journaled_batches(root)[0][:2] == (file_id, next(iter(server.batch_api.batches)))
