"""Teacher-loop throughput against the fake OpenAI-compatible server, in its own process.

Run: ``.venv/bin/python benchmarks/teachers.py [--repeats 3] [--only a|b|c|d ...]``.  The peers,
distilabel and Curator, run in their own processes from ``.venv-peers`` (Curator cannot be installed
beside ArcticCodex; the command that makes it is in :mod:`peers`); distilabel from this interpreter
where the ``bench`` extra installed it.

(a) **Loop at scale.**  200 ms latency, concurrency 64, the draft → critique → verify loop over
    1,000 texts (the fake accepts each in round one: two calls per text).  Achieved calls/s as a
    ratio of the ideal 64 ÷ 0.2 s = 320 calls/s.  Bound: ≥ 0.9.
(b) **Overhead against peers.**  20 ms latency, concurrency 128, 3,000 identical critique requests
    sent three ways: through the pool and the loop; by a bare ``AsyncOpenAI`` loop with a semaphore
    (the SDK's own ceiling on this 2-core machine, where client and server share the CPU); and by
    distilabel 1.5.3 (``TextGeneration`` + ``OpenAILLM``, ``input_batch_size`` 128, in its own process
    as it requires).  Bounds: ≥ 0.8 × the bare SDK and ≥ 1.4 × distilabel.  The bare loop is also
    timed over the SDK's aiohttp client (``DefaultAioHttpClient``, what the teachers use), for reference.

(c) **Batch pricing.**  The same 200 prompts distilled twice in fresh workspaces against the fake (20 ms
    latency) as an ``openai``-preset teacher: online (concurrency 16), and with ``batch`` (each round of
    all the tasks one batch through ``/v1/files`` and ``/v1/batches``, polled every 50 ms; the fake moves a
    batch one status a poll).  Cost per accepted pair, batch ÷ online: bound ≤ 0.55 (the preset's
    discount is 0.5; a line paid twice or a price not discounted shows here).  The wall time the batch
    path adds is printed as a ratio too (no bound: a real provider takes minutes to hours per batch).

(d) **Ahead of Curator.**  3,000 critique requests, the very bodies the teacher sends (messages,
    temperature, max_tokens, response_format), at 20 ms latency / concurrency 128 and at 200 ms /
    concurrency 64: ours (the pool + teacher client path a distill run's loop takes, as in (b)) in this
    process, and Curator 0.1.31 (``curator.LLM``, ``openai`` backend at the fake's base URL, the same
    concurrency, its rate limits lifted) in its own.  Each side's calls/s and the CPU seconds its
    process spent per 1,000 calls (``getrusage``).  Bounds: calls/s ≥ 1.2 × Curator's and CPU per call
    ≤ Curator's, at both settings.  A bare aiohttp loop (no SDK) is timed beside them: the most this
    machine and the fake allow any Python client.

Medians of ``--repeats`` runs; peak RSS of this process is printed.  Exit status 1 when a bound is
missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai

from arcticcodex._sync import run_sync
from arcticcodex.distill import Distiller, RunSettings
from arcticcodex.distill.tasks import prompt_tasks
from arcticcodex.provenance import KeyStore
from arcticcodex.refine import TeacherRouter
from arcticcodex.teachers.entries import TeacherConfig, load_teachers
from arcticcodex.teachers.openai_compat import OpenAICompatibleTeacher
from arcticcodex.teachers.pool import TeacherPool
from arcticcodex.teachers.prompts import critique_messages
from arcticcodex.teachers.reply_schemas import reply_schema
from arcticcodex.teachers.results import EvidenceItem, Rubric
from arcticcodex.teachers.trust import TrustedTeachers
from arcticcodex.workspace import Workspace
from peers import PeerRun, run_bare_aiohttp, run_peer

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "tests" / "fakes" / "openai_server.py"
EVIDENCE = [EvidenceItem(number=1, text="Otters eat mostly fish. They also eat crabs and frogs.")]


class FakeServer:
    """The fake in its own process (client and server still share this machine's two cores)."""

    def __init__(self, latency: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), "--port", "0", "--latency", str(latency)], stdout=subprocess.PIPE, text=True
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("LISTENING "):
            raise SystemExit(f"fake server did not start: {line!r}")
        self.root = line.split()[1]
        self.base_url = self.root + "/v1"

    def reset(self) -> None:
        request = urllib.request.Request(self.root + "/_fake/reset", data=b"{}", method="POST")
        urllib.request.urlopen(request, timeout=10).read()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def teacher(base_url: str, concurrency: int) -> OpenAICompatibleTeacher:
    config = TeacherConfig(
        name="fake", preset="vllm", model="fake-model", base_url=base_url, concurrency=concurrency, timeout=60.0
    )
    return OpenAICompatibleTeacher(config)


async def run_loop(
    base_url: str, texts: list[str], concurrency: int, evidence: list[EvidenceItem], rounds: int
) -> PeerRun:
    """Calls through TeacherRouter and the pool (what a distill run's loop does): how many, in how many
    seconds, and the CPU seconds this process spent on them (every thread; the fake is another process)."""
    fake = teacher(base_url, concurrency)
    pool = TeacherPool([fake], ledger=fake.ledger)
    router = TeacherRouter(pool=pool, max_rounds=rounds)
    try:
        cpu, start = cpu_seconds(), time.perf_counter()
        results = await asyncio.gather(*(router.refine(text, evidence) for text in texts))
        elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    finally:
        await pool.aclose()
    if any(result.status == "failed" for result in results):
        raise SystemExit("a loop failed against the fake server")
    calls = sum(stats.calls for stats in pool.ledger.stats.values())
    return PeerRun(calls, elapsed, cpu)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def critique_bodies(texts: list[str], concurrency: int) -> list[dict[str, Any]]:
    """The bodies the teacher sends for ``texts``' critiques (what the peers are asked to send too)."""
    fake = teacher("http://127.0.0.1:9/v1", concurrency)
    schema = reply_schema("critic", Rubric())
    return [fake.request_body(critique_messages(text, [], Rubric(), ""), schema) for text in texts]


async def run_bare_sdk(base_url: str, texts: list[str], concurrency: int, *, aiohttp: bool = False) -> float:
    """Calls per second of a bare SDK loop: its default HTTP client, or its aiohttp one."""
    http = openai.DefaultAioHttpClient(limits=httpx.Limits(max_connections=concurrency)) if aiohttp else None
    client = openai.AsyncOpenAI(base_url=base_url, api_key="not-needed", max_retries=0, timeout=60.0, http_client=http)
    gate = asyncio.Semaphore(concurrency)

    async def one(text: str) -> None:
        async with gate:
            await client.chat.completions.create(  # type: ignore[call-overload]
                model="fake-model",
                messages=critique_messages(text, [], Rubric(), ""),
                temperature=0.2,
                max_tokens=2048,
                response_format={"type": "json_object"},
            )

    try:
        start = time.perf_counter()
        await asyncio.gather(*(one(text) for text in texts))
        return len(texts) / (time.perf_counter() - start)
    finally:
        await client.close()


BATCH_COST_BOUND = 0.55


def distill_once(base_url: str, prompts: Path, folder: Path, *, batch: bool) -> tuple[float, float, int]:
    """One run in a fresh workspace: (wall seconds, dollars spent, accepted pairs)."""
    workspace, _ = Workspace.init(folder / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(
        config.read_text()
        + '\n[vault]\nembedding_model = "hashing-256"\n'
        + f'\n[[teachers]]\nname = "gpt"\npreset = "openai"\nbase_url = "{base_url}"\nmodel = "fake-model"\n'
    )
    workspace = Workspace.open(workspace.root)
    os.environ["ARCTICCODEX_CONFIG_DIR"] = str(folder / "user-config")  # trust recorded apart from the user's
    trusted = TrustedTeachers.for_user()
    (entry,), _ = load_teachers(workspace.config, trusted=trusted)
    trusted.trust(entry, workspace=workspace.root, origin="benchmark")
    KeyStore(workspace.keys_dir).create("dataset")
    settings = RunSettings(concurrency=16, teachers=("gpt",), source="benchmark", batch=batch, batch_poll_seconds=0.05)
    environ = {"OPENAI_API_KEY": "sk-benchmark"}
    with Distiller(workspace, environ=environ) as distiller:
        record = distiller.create(prompt_tasks(prompts), settings, folder / "dataset")
        started = time.perf_counter()
        summary = distiller.execute_sync(record.id)
        wall = time.perf_counter() - started
    if summary.status != "complete" or summary.failed:
        raise SystemExit(f"the {'batch' if batch else 'online'} run did not complete: {summary.to_json()}")
    return wall, summary.cost_usd, summary.accepted


def batch_versus_online(server: FakeServer, count: int, repeats: int) -> tuple[float, float, float, float]:
    """Medians of (online $/pair, batch $/pair, online wall s, batch wall s) over ``repeats`` pairs of runs."""
    online_cost: list[float] = []
    batch_cost: list[float] = []
    online_wall: list[float] = []
    batch_wall: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        prompts = Path(scratch) / "prompts.jsonl"
        prompts.write_text(
            "".join(
                json.dumps(
                    {
                        "instruction": f"How much rain fell at station {n}?",
                        "evidence": f"Station {n} recorded {n % 37 + 1} millimetres of rain on day {n % 365 + 1}.",
                    }
                )
                + "\n"
                for n in range(count)
            )
        )
        for repeat in range(repeats):
            for batch, costs, walls in ((False, online_cost, online_wall), (True, batch_cost, batch_wall)):
                server.reset()
                wall, spent, accepted = distill_once(
                    server.base_url, prompts, Path(scratch) / f"{repeat}-{batch}", batch=batch
                )
                costs.append(spent / accepted)
                walls.append(wall)
    median = statistics.median
    return median(online_cost), median(batch_cost), median(online_wall), median(batch_wall)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def loop_at_scale(texts: int, repeats: int) -> bool:
    """(a): the loop at 200 ms latency, concurrency 64, against the ideal 320 calls/s."""
    server = FakeServer(latency=0.2)
    try:
        drafts = [f"Draft {i}: otters eat mostly fish." for i in range(texts)]
        rates = []
        for _ in range(repeats):
            server.reset()
            rates.append(run_sync(run_loop(server.base_url, drafts, 64, EVIDENCE, rounds=3)).rate)
    finally:
        server.close()
    rate = statistics.median(rates)
    print(f"(a) loop over {texts} texts, 200 ms latency, concurrency 64, median of {repeats}:")
    print(f"    {rate:6.1f} calls/s = {rate / 320:.2f} × the ideal 320 calls/s (bound ≥ 0.9)")
    return rate / 320 >= 0.9


def overhead_against_peers(requests: int, repeats: int) -> bool:
    """(b): pool + loop against the bare SDK (both of its HTTP clients) and distilabel, 20 ms, concurrency 128."""
    server = FakeServer(latency=0.02)
    try:
        texts = [f"Answer {i}: otters eat mostly fish." for i in range(requests)]
        bodies = critique_bodies(texts, 128)
        ours: list[PeerRun] = []
        bare: list[float] = []
        bare_aiohttp: list[float] = []
        peer: list[PeerRun] = []
        for _ in range(repeats):
            server.reset()
            ours.append(run_sync(run_loop(server.base_url, texts, 128, [], rounds=1)))
            server.reset()
            bare.append(run_sync(run_bare_sdk(server.base_url, texts, 128)))  # same event loop as ours
            server.reset()
            bare_aiohttp.append(run_sync(run_bare_sdk(server.base_url, texts, 128, aiohttp=True)))
            server.reset()
            measured = run_peer("distilabel", server.base_url, bodies, 128)
            if measured is not None:
                peer.append(measured)
    finally:
        server.close()
    ours_rate, bare_rate = statistics.median(run.rate for run in ours), statistics.median(bare)
    print(f"(b) {requests} critique requests, 20 ms latency, concurrency 128, median of {repeats}:")
    print(
        f"    pool + loop {ours_rate:6.1f} calls/s   bare AsyncOpenAI {bare_rate:6.1f} calls/s"
        f"   ratio {ours_rate / bare_rate:.2f} (bound ≥ 0.8)"
    )
    ok = ours_rate / bare_rate >= 0.8
    aiohttp_rate = statistics.median(bare_aiohttp)
    over_aiohttp = ours_rate / aiohttp_rate
    print(f"    bare AsyncOpenAI over DefaultAioHttpClient {aiohttp_rate:6.1f} calls/s   ratio {over_aiohttp:.2f}")
    if not peer:
        print("    distilabel not installed ('.[bench]', or .venv-peers: see peers.py): peer comparison skipped")
        return False
    peer_rate = statistics.median(run.rate for run in peer)
    print(
        f"    distilabel 1.5.3 {peer_rate:6.1f} calls/s   ratio {ours_rate / peer_rate:.2f} (bound ≥ 1.4)"
        f"   CPU s per 1,000 calls: ours {statistics.median(run.cpu_per_1000 for run in ours):.2f},"
        f" distilabel {statistics.median(run.cpu_per_1000 for run in peer):.2f}"
    )
    return ok and ours_rate / peer_rate >= 1.4


CURATOR_SETTINGS = ((0.02, 128), (0.2, 64))  # (latency s, concurrency) of (d)
CURATOR_RATE_BOUND = 1.2  # ours ÷ Curator, calls/s: at least
CURATOR_CPU_BOUND = 1.0  # ours ÷ Curator, CPU seconds per 1,000 calls: at most


def ahead_of_curator(requests: int, repeats: int) -> bool:
    """(d): pool + loop against Curator, the same bodies to the same fake, at each of CURATOR_SETTINGS."""
    ok = True
    texts = [f"Answer {i}: otters eat mostly fish." for i in range(requests)]
    for latency, concurrency in CURATOR_SETTINGS:
        bodies = critique_bodies(texts, concurrency)
        server = FakeServer(latency=latency)
        ours: list[PeerRun] = []
        theirs: list[PeerRun] = []
        floor: list[float] = []
        try:
            for _ in range(repeats):
                server.reset()
                ours.append(run_sync(run_loop(server.base_url, texts, concurrency, [], rounds=1)))
                server.reset()
                measured = run_peer("curator", server.base_url, bodies, concurrency)
                if measured is None:
                    print("(d) Curator is not installed: see benchmarks/peers.py for its environment, .venv-peers")
                    return False
                theirs.append(measured)
                server.reset()
                floor.append(run_sync(run_bare_aiohttp(server.base_url, bodies, concurrency)))
        finally:
            server.close()
        median = statistics.median
        rate, their_rate = median(run.rate for run in ours), median(run.rate for run in theirs)
        cpu, their_cpu = median(run.cpu_per_1000 for run in ours), median(run.cpu_per_1000 for run in theirs)
        ceiling = median(floor)
        print(
            f"(d) {requests} critique requests, {latency * 1000:g} ms latency, concurrency {concurrency},"
            f" median of {repeats} (ideal {concurrency / latency:g} calls/s):"
        )
        print(
            f"    pool + loop {rate:6.1f} calls/s   Curator 0.1.31 {their_rate:6.1f} calls/s"
            f"   ratio {rate / their_rate:.2f} (bound ≥ {CURATOR_RATE_BOUND})"
        )
        print(
            f"    CPU s per 1,000 calls: ours {cpu:.2f}   Curator {their_cpu:.2f}"
            f"   ratio {cpu / their_cpu:.2f} (bound ≤ {CURATOR_CPU_BOUND})"
        )
        print(
            f"    bare aiohttp (no SDK) {ceiling:6.1f} calls/s: ours {rate / ceiling:.2f} of it,"
            f" Curator {their_rate / ceiling:.2f}; bare ÷ Curator {ceiling / their_rate:.2f} (the most a client shows)"
        )
        each = "  ".join(f"{a.rate:.0f}/{b.rate:.0f}/{c:.0f}" for a, b, c in zip(ours, theirs, floor, strict=True))
        print(f"    each run, ours / Curator / bare: {each}")
        ok = ok and rate / their_rate >= CURATOR_RATE_BOUND and cpu / their_cpu <= CURATOR_CPU_BOUND
    return ok


def batch_pricing(prompts: int, repeats: int) -> bool:
    """(c): the same prompts online and with batch; cost per accepted pair and wall time."""
    server = FakeServer(latency=0.02)
    try:
        online, batch, online_wall, batch_wall = batch_versus_online(server, prompts, repeats)
    finally:
        server.close()
    print(f"(c) {prompts} prompts distilled online and with batch, median of {repeats}:")
    print(
        f"    cost per 1,000 accepted pairs ${online * 1000:.4f} online vs ${batch * 1000:.4f} batch"
        f"   batch ÷ online {batch / online:.3f} (bound ≤ {BATCH_COST_BOUND})"
    )
    print(
        f"    wall {online_wall:.2f} s online vs {batch_wall:.2f} s batch ({batch_wall - online_wall:+.2f} s),"
        f" ratio {batch_wall / online_wall:.2f}"
    )
    return batch / online <= BATCH_COST_BOUND


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--batch-prompts", type=int, default=200)
    parser.add_argument("--only", choices=["a", "b", "c", "d"], action="append", help="run these parts alone")
    parser.add_argument("--only-batch", action="store_true", help="run (c) alone (the same as --only c)")
    args = parser.parse_args()
    parts = set(args.only or []) | ({"c"} if args.only_batch else set()) or set("abcd")
    results = []
    if "c" in parts:
        results.append(batch_pricing(args.batch_prompts, args.repeats))
    if "a" in parts:
        results.append(loop_at_scale(args.texts, args.repeats))
    if "b" in parts:
        results.append(overhead_against_peers(args.requests, args.repeats))
    if "d" in parts:
        results.append(ahead_of_curator(args.requests, args.repeats))
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    ok = all(results)
    print("PASS" if ok else "FAIL: a bound was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
