"""A run publishes while its workers teach, and its dataset is the one publishing afterwards writes (issue 19).

The publisher follows the journal in task order from a thread of its own (``distill/publish.py``,
:meth:`RunJournal.follow_pairs`).  What can go wrong, and is tried here: a pair read before an
earlier task finished (order, hence the near-duplicate winner and the split, would change); a run
stopped with tasks left pending (a spent budget) must publish what an after-the-fact publish does;
work that fails must leave nothing under ``--out``; and a process killed (SIGKILL) while it publishes
must, once resumed, write the identical dataset.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.dataset import verify_dataset
from arcticcodex.distill.journal import RunJournal, TaskOutcome
from arcticcodex.distill.publish import publish_dataset
from arcticcodex.distill.run import Distiller
from arcticcodex.distill.settings import RunSettings
from arcticcodex.distill.tasks import prompt_tasks
from arcticcodex.vault.store import Vault
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_crash import command, make_workspace, prompts_file, run_ids

FILES = ("train.jsonl", "validation.jsonl", "rejected.jsonl")


def republished(root: Path, run_id: str, into: Path) -> dict[str, bytes]:
    """The run's dataset written again from its journal, after the fact, by the same publishing code."""
    workspace = Workspace.open(root)
    with RunJournal(workspace) as journal, Vault(workspace) as vault:
        record = journal.run(run_id)
        publish_dataset(
            journal,
            replace(record, out=str(into)),
            RunSettings.from_json(record.settings),
            workspace,
            workspace.runs_dir / run_id,
            embedder=vault.embedder,
        )
    return file_bytes(into)


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in FILES if (folder / name).exists()}


def outcome(position: int) -> TaskOutcome:
    pair = {"n": position}
    return TaskOutcome(status="accepted", pair=pair, reason=None, retryable=False, cost_usd=0.0)


@pytest.mark.parametrize("extra", [[], ["--validation", "0.25"], ["--keep-near-duplicates"]])
def test_a_run_published_while_it_ran_equals_its_journal_published_afterwards(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx, extra: list[str]
) -> None:
    root = make_workspace(acx, tmp_path / "ws", server.base_url)
    prompts = prompts_file(tmp_path / "prompts.jsonl", 300)
    with (tmp_path / "prompts.jsonl").open("a") as handle:  # near-duplicates of earlier prompts, for the filter
        for n in range(0, 300, 30):
            fact = f"The harbour of village {n} was built in {1700 + 7 * n} by {n % 13} masons from the coast."
            handle.write(json.dumps({"instruction": f"When was the harbour of village {n} built ?", "evidence": fact}))
            handle.write("\n")
    out = tmp_path / "out"
    done = acx("-w", root, "distill", "--prompts", prompts, "--out", out, "--concurrency", "8", "--json", *extra)
    summary = json.loads(done.output)
    assert summary["status"] == "complete" and summary["written"] > 0
    if not extra:
        assert summary["near_duplicates_removed"] > 0  # the filter ran on what the publisher followed
    if extra[:1] == ["--validation"]:
        assert summary["validation"] > 0
    assert file_bytes(out) == republished(root, summary["run_id"], tmp_path / "again")
    assert verify_dataset(out).ok
    assert not list(tmp_path.glob(".out.*.partial"))  # the staging folder was moved into place


def test_following_a_run_yields_pairs_in_task_order_only_once_every_earlier_task_is_done(
    workspace: Workspace, tmp_path: Path
) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"instruction": f"Question {n}?"}) + "\n" for n in range(600)))
    with RunJournal(workspace) as journal:
        run_id = journal.create_run({}, str(tmp_path / "out"), prompt_tasks(prompts)).id
    order = list(range(600))
    random.Random(19).shuffle(order)  # workers finish out of order
    finished: set[int] = set()
    lock = threading.Lock()
    ended = threading.Event()

    def finish_all() -> None:
        with RunJournal(workspace) as writer:
            for position in order[:550]:  # the last 50 stay pending: a budget ran out
                with lock:
                    writer.finish_task(run_id, position, outcome(position), 0.0)
                    finished.add(position)
        ended.set()

    seen: list[int] = []
    worker = threading.Thread(target=finish_all)
    with RunJournal(workspace) as reader:
        worker.start()
        for position, pair in reader.follow_pairs(run_id, ended, poll_seconds=0.001):
            assert pair == {"n": position}
            with lock:  # never a pair past a task that is still pending, while the work goes on
                assert ended.is_set() or all(earlier in finished for earlier in range(position))
            seen.append(position)
        worker.join()
        assert seen == sorted(order[:550])
        assert seen == [position for position, _ in reader.finished_pairs(run_id)]


class InterruptedWorkError(Exception):
    """What the progress callback raises: the work fails part way."""


def test_work_that_fails_leaves_nothing_under_out_and_a_resume_publishes_it(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_workspace(acx, tmp_path / "ws", server.base_url)
    out = tmp_path / "out"
    prompts = prompts_file(tmp_path / "prompts.jsonl", 400)
    calls: list[int] = []
    writing: list[bool] = []

    def fail_part_way(counts: dict[str, int], spent: float) -> None:
        calls.append(1)
        if len(calls) == 380:
            writing.append(staging_file(out) is not None)  # the dataset was being written while the work went on
            raise InterruptedWorkError("stop here")

    workspace = Workspace.open(root)
    settings = RunSettings(teachers=("gpu",), concurrency=4)
    with Distiller(workspace) as distiller:
        record = distiller.create(prompt_tasks(prompts), settings, out)
        with pytest.raises(ExceptionGroup) as failure:  # the workers' task group
            distiller.execute_sync(record.id, progress=fail_part_way)
        assert failure.group_contains(InterruptedWorkError) and writing == [True]
        assert not out.exists() and not list(tmp_path.glob(".out.*"))  # nothing half-published
        assert distiller.journal.counts(record.id)["pending"] > 0
        summary = distiller.execute_sync(record.id)
    assert summary.status == "complete" and summary.written == 400
    assert verify_dataset(out).ok
    assert file_bytes(out) == republished(root, record.id, tmp_path / "again")


def staging_file(out: Path) -> Path | None:
    for folder in out.parent.glob(f".{out.name}.*.partial"):
        for name in ("train.jsonl.partial", "train.jsonl"):
            if (folder / name).is_file() and (folder / name).stat().st_size > 0:
                return folder / name
    return None


@pytest.mark.slow
def test_kill_9_while_publishing_then_resume_writes_the_identical_dataset(tmp_path: Path, acx: Acx) -> None:
    rng = random.Random(20261204)
    with FakeOpenAIServer(model="fake-model", latency=0.01) as server:
        prompts = prompts_file(tmp_path / "prompts.jsonl", 3000)
        start = ["--prompts", str(prompts), "--concurrency", "16", "--teachers", "gpu", "--json"]
        reference_root = make_workspace(acx, tmp_path / "reference", server.base_url)
        done = subprocess.run(command(reference_root, *start, "--out", str(tmp_path / "ref")), capture_output=True)
        assert done.returncode == 0, done.stderr.decode()

        root = make_workspace(acx, tmp_path / "crashing", server.base_url)
        out = tmp_path / "out"
        kills = 0
        summary: dict[str, Any] | None = None
        while summary is None:
            ids = run_ids(root)
            args = ["--resume", ids[0], "--json"] if ids else [*start, "--out", str(out)]
            process = subprocess.Popen(command(root, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if kills < 3:
                deadline = time.monotonic() + 120
                while staging_file(out) is None and process.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.01)  # wait until the dataset is being written …
                time.sleep(rng.uniform(0.0, 1.5))  # … then kill it at some moment of that
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                    process.communicate()
                    kills += 1
                    assert not (out / "manifest.json").exists()  # never a published dataset before the end
                    continue
            stdout, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stderr.decode()
            summary = json.loads(stdout)
        assert kills == 3
        assert summary["status"] == "complete" and summary["written"] == 3000
        assert verify_dataset(out).ok
        assert not list(tmp_path.glob(".out.*.partial"))
        published = file_bytes(out)
        assert published == republished(root, summary["run_id"], tmp_path / "again")  # byte for byte
        reference = [json.loads(line) for line in (tmp_path / "ref" / "train.jsonl").read_text().splitlines()]
        crashed = [json.loads(line) for line in published["train.jsonl"].decode().splitlines()]
        fields = ("id", "index", "instruction", "completion", "quality")
        assert [[r[f] for f in fields] for r in crashed] == [[r[f] for f in fields] for r in reference]
