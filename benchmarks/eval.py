"""`arcticcodex eval` throughput against the bare endpoint, the fake OpenAI-compatible server in its own process.

Run: ``.venv/bin/python benchmarks/eval.py [--repeats 3] [--questions 300] [--concurrency 16] [--latency 0.02]``

A signed dataset of ``--questions`` held-out questions (no evidence, so no verifier calls) is
evaluated through ``run_eval`` — dataset verification, the teacher client with its request cache,
ledger and budget checks, the offline local judge in both orders, metrics, bootstrap intervals and
the stored report — with the student a configured teacher on the fake (``--latency`` seconds per
answer, ``--concurrency`` questions at once).  The same questions are then sent by a bare
``openai.AsyncOpenAI`` loop (over the SDK's aiohttp client, the teachers' transport) with a semaphore
of the same size.  Questions/s, eval ÷ bare: bound
≥ 0.7 (the evaluation's own work — verification, judging, bootstrap, storing — costs at most 30 %
of the endpoint's rate).  Each repeat uses a fresh workspace (an answer cached by an earlier repeat
would flatter the eval).  Medians of ``--repeats`` runs; peak RSS of this process is printed.  Exit
status 1 when the bound is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import openai
from click.testing import CliRunner

from arcticcodex.cli import cli
from arcticcodex.dataset import DatasetWriter, PairSource, Revision, TrainingPair, pair_id_for
from arcticcodex.dataset.split import PlannedSplit
from arcticcodex.evaluation.session import EvalRequest, run_eval
from arcticcodex.provenance.keystore import KeyStore
from arcticcodex.provenance.trust import KeyRing
from arcticcodex.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "tests" / "fakes" / "openai_server.py"
BOUND = 0.7


def question(number: int) -> str:
    return f"What do the otters of river {number} eat in winter?"


def workspace_with_dataset(folder: Path, questions: int, base_url: str) -> tuple[Workspace, Path]:
    runner = CliRunner()
    for args in (
        ["init", str(folder / "ws")],
        ["-w", str(folder / "ws"), "teachers", "add", "bench", "--preset", "vllm", "--base-url", base_url,
         "--model", "fake-model", "--concurrency", "256"],
    ):  # fmt: skip
        result = runner.invoke(cli, args, catch_exceptions=False)
        if result.exit_code != 0:
            raise SystemExit(result.output)
    workspace = Workspace.open(folder / "ws")
    pairs = []
    for number in range(questions + 2):  # two more for the train split
        asked, answer = question(number), f"The otters of river {number} eat fish and crabs in winter."
        pairs.append(
            TrainingPair(
                id=pair_id_for(asked, answer, ()),
                index=number,
                instruction=asked,
                completion=answer,
                quality=Decimal("0.9"),
                signer_id="bench",
                created_at="2026-12-04T00:00:00+00:00",
                source=PairSource("prompts", f"bench:{number}"),
                revisions=(Revision(1, answer, 0.9),),
            )
        )
    held = [pair.id for pair in pairs[:questions]]
    signer = KeyStore(workspace.keys_dir).signer("dataset")
    with DatasetWriter(folder / "ds", signer, validation_fraction=0.5, split=PlannedSplit(held)) as writer:
        writer.add_many(pairs)
    return workspace, folder / "ds"


async def through_eval(workspace: Workspace, dataset: Path, questions: int, concurrency: int) -> float:
    request = EvalRequest(student="bench", heldout=dataset, concurrency=concurrency, max_tokens=64)
    keyring = KeyRing.for_user(KeyStore(workspace.keys_dir))
    started = time.perf_counter()
    report = await run_eval(workspace, request, keyring=keyring)
    elapsed = time.perf_counter() - started
    if len(report["questions"]) != questions:
        raise SystemExit(f"eval answered {len(report['questions'])} of {questions} questions")
    return questions / elapsed


async def bare(base_url: str, questions: int, concurrency: int) -> float:
    # the SDK's aiohttp client, the transport the teachers use: the ratio is then the evaluation's own cost
    client = openai.AsyncOpenAI(
        base_url=base_url, api_key="bench", max_retries=0, http_client=openai.DefaultAioHttpClient()
    )
    gate = asyncio.Semaphore(concurrency)

    async def one(number: int) -> str:
        async with gate:
            reply = await client.chat.completions.create(
                model="fake-model",
                messages=[{"role": "user", "content": question(number)}],
                temperature=0.0,
                max_tokens=64,
            )
            return reply.choices[0].message.content or ""

    try:
        started = time.perf_counter()
        await asyncio.gather(*(one(number) for number in range(questions)))
        return questions / (time.perf_counter() - started)
    finally:
        await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.02)
    options = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0", "--latency", str(options.latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline() if server.stdout else ""
        if not line.startswith("LISTENING "):
            raise SystemExit(f"fake server did not start: {line!r}")
        base_url = line.split()[1] + "/v1"
        ours, theirs = [], []
        for repeat in range(options.repeats):
            with tempfile.TemporaryDirectory() as scratch:
                workspace, dataset = workspace_with_dataset(Path(scratch), options.questions, base_url)
                ours.append(asyncio.run(through_eval(workspace, dataset, options.questions, options.concurrency)))
            theirs.append(asyncio.run(bare(base_url, options.questions, options.concurrency)))
            print(
                f"repeat {repeat + 1}: eval {ours[-1]:.1f} questions/s, bare AsyncOpenAI {theirs[-1]:.1f} questions/s"
            )
    finally:
        server.terminate()
        server.wait(timeout=10)
    ratio = statistics.median(ours) / statistics.median(theirs)
    ideal = options.concurrency / options.latency if options.latency else float("inf")
    print(
        f"median of {options.repeats}: eval {statistics.median(ours):.1f} q/s, "
        f"bare {statistics.median(theirs):.1f} q/s (ideal {ideal:.0f}); "
        f"ratio {ratio:.2f} (bound >= {BOUND}) {'met' if ratio >= BOUND else 'MISSED'}"
    )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0 if ratio >= BOUND else 1


if __name__ == "__main__":
    sys.exit(main())
