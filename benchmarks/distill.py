"""A whole distillation run against the fake OpenAI-compatible server, in its own process.

Run: ``.venv/bin/python benchmarks/distill.py [--prompts 1000] [--repeats 3]``

1,000 prompts (each with its evidence), 200 ms latency per call, concurrency 64, the offline
extractive drafter and the fake as critic and verifier (it accepts each answer in round one: two
calls per prompt).  Every run starts in a fresh workspace, so the request cache answers nothing.
Timed: ``Distiller.execute`` — every task journaled, then the signed dataset written (near-duplicate
check included) and verified afterwards.  Printed: the wall time as a ratio of the ideal
(calls × latency ÷ concurrency; bound ≤ 1.25), the journal-to-dataset part on its own, and the
peak RSS.  Medians of ``--repeats`` runs; exit status 1 when the bound is missed.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from arcticcodex.dataset import verify_dataset
from arcticcodex.distill import Distiller, RunSettings
from arcticcodex.distill.tasks import prompt_tasks
from arcticcodex.provenance import KeyStore
from arcticcodex.teachers.entries import load_teachers
from arcticcodex.teachers.trust import TrustedTeachers
from arcticcodex.workspace import Workspace
from child_runs import write_rain_prompts
from teachers import FakeServer  # benchmarks/teachers.py: the fake in its own process

LATENCY = 0.2
CONCURRENCY = 64
BOUND = 1.25
CALLS_PER_PROMPT = 2  # critique + claim check; the fake accepts in round one


def one_run(base_url: str, prompts: Path, folder: Path) -> tuple[float, float, int]:
    workspace, _ = Workspace.init(folder / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(
        config.read_text()
        + '\n[vault]\nembedding_model = "hashing-256"\n'
        + f'\n[[teachers]]\nname = "fake"\npreset = "vllm"\nbase_url = "{base_url}"\nmodel = "fake-model"\n'
        + f"concurrency = {CONCURRENCY}\ntimeout = 60.0\n"
    )
    workspace = Workspace.open(workspace.root)  # read the configuration just written
    for entry in load_teachers(workspace.config)[0]:  # a hand-written entry waits for trust (`teachers trust`)
        TrustedTeachers.for_user().trust(entry, workspace=workspace.root, origin="benchmarks/distill.py")
    KeyStore(workspace.keys_dir).create("dataset")
    settings = RunSettings(concurrency=CONCURRENCY, teachers=("fake",), source="benchmark")
    with Distiller(workspace) as distiller:
        record = distiller.create(prompt_tasks(prompts), settings, folder / "dataset")
        started = time.perf_counter()
        publish_started = 0.0

        def progress(counts: dict[str, int], spent: float) -> None:
            nonlocal publish_started
            if counts["pending"] == 0:
                publish_started = time.perf_counter()

        summary = distiller.execute_sync(record.id, progress=progress)
        finished = time.perf_counter()
    if summary.status != "complete" or summary.failed:
        raise SystemExit(f"the run did not complete: {summary.to_json()}")
    report = verify_dataset(folder / "dataset")
    if not report.ok:
        raise SystemExit(f"the dataset does not verify: {report.problems[:3]}")
    return finished - started, finished - publish_started, summary.accepted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    server = FakeServer(LATENCY)
    walls, publishes = [], []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            prompts = write_rain_prompts(Path(scratch) / "prompts.jsonl", args.prompts)
            for repeat in range(args.repeats):
                server.reset()
                wall, publish, accepted = one_run(server.base_url, prompts, Path(scratch) / f"r{repeat}")
                walls.append(wall)
                publishes.append(publish)
                print(f"  run {repeat + 1}: {wall:.2f} s ({publish:.2f} s writing the dataset), {accepted} accepted")
    finally:
        server.close()
    ideal = args.prompts * CALLS_PER_PROMPT * LATENCY / CONCURRENCY
    wall = statistics.median(walls)
    ratio = wall / ideal
    print(
        f"{args.prompts} prompts, {CALLS_PER_PROMPT} calls each, {LATENCY * 1000:.0f} ms latency, concurrency "
        f"{CONCURRENCY}, median of {args.repeats}: {wall:.2f} s; ideal {ideal:.2f} s; ratio {ratio:.2f} "
        f"(bound ≤ {BOUND}); writing the dataset {statistics.median(publishes):.2f} s of it"
    )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0 if ratio <= BOUND else 1


if __name__ == "__main__":
    sys.exit(main())
