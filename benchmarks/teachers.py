"""Teacher-loop throughput against the fake OpenAI-compatible server, in its own process.

Run: ``.venv/bin/python benchmarks/teachers.py [--repeats 3]``  (distilabel: ``pip install -e '.[bench]'``)

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
import textwrap
import time
import urllib.request
from pathlib import Path

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
from arcticcodex.teachers.results import EvidenceItem, Rubric
from arcticcodex.teachers.trust import TrustedTeachers
from arcticcodex.workspace import Workspace

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
) -> float:
    """Calls per second through TeacherRouter and the pool."""
    fake = teacher(base_url, concurrency)
    pool = TeacherPool([fake], ledger=fake.ledger)
    router = TeacherRouter(pool=pool, max_rounds=rounds)
    try:
        start = time.perf_counter()
        results = await asyncio.gather(*(router.refine(text, evidence) for text in texts))
        elapsed = time.perf_counter() - start
    finally:
        await pool.aclose()
    if any(result.status == "failed" for result in results):
        raise SystemExit("a loop failed against the fake server")
    calls = sum(stats.calls for stats in pool.ledger.stats.values())
    return calls / elapsed


async def run_bare_sdk(base_url: str, texts: list[str], concurrency: int, *, aiohttp: bool = False) -> float:
    """Calls per second of a bare SDK loop: its default HTTP client, or its aiohttp one."""
    http = openai.DefaultAioHttpClient(limits=httpx.Limits(max_connections=concurrency)) if aiohttp else None
    client = openai.AsyncOpenAI(base_url=base_url, api_key="not-needed", max_retries=0, timeout=60.0, http_client=http)
    gate = asyncio.Semaphore(concurrency)

    async def one(text: str) -> None:
        async with gate:
            await client.chat.completions.create(
                model="fake-model",
                messages=critique_messages(text, [], Rubric(), ""),  # type: ignore[arg-type]
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


DISTILABEL_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from distilabel.models import OpenAILLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts
    from distilabel.steps.tasks import TextGeneration

    base_url, concurrency, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    with Pipeline(name=f"arcticcodex-bench-{len(rows)}-{concurrency}") as pipeline:
        load = LoadDataFromDicts(data=rows, batch_size=concurrency)
        generate = TextGeneration(
            llm=OpenAILLM(model="fake-model", base_url=base_url, api_key="not-needed", max_retries=0, timeout=60,
                          generation_kwargs={"max_new_tokens": 2048, "temperature": 0.2}),
            system_prompt=rows[0]["system"],
            input_batch_size=concurrency,
            add_raw_output=False,
            add_raw_input=False,
        )
        load >> generate

    if __name__ == "__main__":
        start = time.perf_counter()
        distiset = pipeline.run(use_cache=False)
        elapsed = time.perf_counter() - start
        done = sum(1 for row in distiset["default"]["train"] if row["generation"] is not None)
        print("RESULT " + json.dumps({"done": done, "seconds": elapsed}), flush=True)
    """
)


def run_distilabel(base_url: str, texts: list[str], concurrency: int) -> float | None:
    try:
        import distilabel  # noqa: F401
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as folder:
        script, data = Path(folder) / "bench.py", Path(folder) / "rows.jsonl"
        script.write_text(DISTILABEL_SCRIPT, encoding="utf-8")
        with data.open("w", encoding="utf-8") as out:
            for text in texts:
                system, user = critique_messages(text, [], Rubric(), "")
                out.write(json.dumps({"system": system["content"], "instruction": user["content"]}) + "\n")
        env = {"DISTILABEL_CACHE_DIR": folder, "DISTILABEL_LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin"}
        completed = subprocess.run(
            [sys.executable, str(script), base_url, str(concurrency), str(data)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"distilabel run failed:\n{completed.stderr[-3000:]}")
    result = json.loads(line[len("RESULT ") :])
    return float(result["done"]) / float(result["seconds"])


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--batch-prompts", type=int, default=200)
    parser.add_argument("--only-batch", action="store_true", help="run (c) alone")
    args = parser.parse_args()
    ok = True

    server = FakeServer(latency=0.02)
    try:
        online, batch, online_wall, batch_wall = batch_versus_online(server, args.batch_prompts, args.repeats)
        print(f"(c) {args.batch_prompts} prompts distilled online and with batch, median of {args.repeats}:")
        print(
            f"    cost per 1,000 accepted pairs ${online * 1000:.4f} online vs ${batch * 1000:.4f} batch"
            f"   batch ÷ online {batch / online:.3f} (bound ≤ {BATCH_COST_BOUND})"
        )
        print(
            f"    wall {online_wall:.2f} s online vs {batch_wall:.2f} s batch ({batch_wall - online_wall:+.2f} s),"
            f" ratio {batch_wall / online_wall:.2f}"
        )
        ok = ok and batch / online <= BATCH_COST_BOUND
    finally:
        server.close()
    if args.only_batch:
        print(f"peak RSS {peak_rss_mb():.0f} MB")
        print("PASS" if ok else "FAIL: a bound was missed")
        return 0 if ok else 1

    server = FakeServer(latency=0.2)
    try:
        texts = [f"Draft {i}: otters eat mostly fish." for i in range(args.texts)]
        rates = []
        for _ in range(args.repeats):
            server.reset()
            rates.append(run_sync(run_loop(server.base_url, texts, 64, EVIDENCE, rounds=3)))
        rate = statistics.median(rates)
        print(f"(a) loop over {args.texts} texts, 200 ms latency, concurrency 64, median of {args.repeats}:")
        print(f"    {rate:6.1f} calls/s = {rate / 320:.2f} × the ideal 320 calls/s (bound ≥ 0.9)")
        ok = ok and rate / 320 >= 0.9
    finally:
        server.close()

    server = FakeServer(latency=0.02)
    try:
        texts = [f"Answer {i}: otters eat mostly fish." for i in range(args.requests)]
        ours, bare, bare_aiohttp, peer = [], [], [], []
        for _ in range(args.repeats):
            server.reset()
            ours.append(run_sync(run_loop(server.base_url, texts, 128, [], rounds=1)))
            server.reset()
            bare.append(run_sync(run_bare_sdk(server.base_url, texts, 128)))  # same event loop as ours
            server.reset()
            bare_aiohttp.append(run_sync(run_bare_sdk(server.base_url, texts, 128, aiohttp=True)))
            server.reset()
            measured = run_distilabel(server.base_url, texts, 128)
            if measured is not None:
                peer.append(measured)
        ours_rate, bare_rate = statistics.median(ours), statistics.median(bare)
        print(f"(b) {args.requests} critique requests, 20 ms latency, concurrency 128, median of {args.repeats}:")
        print(
            f"    pool + loop {ours_rate:6.1f} calls/s   bare AsyncOpenAI {bare_rate:6.1f} calls/s"
            f"   ratio {ours_rate / bare_rate:.2f} (bound ≥ 0.8)"
        )
        ok = ok and ours_rate / bare_rate >= 0.8
        aiohttp_rate = statistics.median(bare_aiohttp)
        print(
            f"    bare AsyncOpenAI over DefaultAioHttpClient {aiohttp_rate:6.1f} calls/s"
            f"   ratio {ours_rate / aiohttp_rate:.2f}"
        )
        if peer:
            peer_rate = statistics.median(peer)
            print(f"    distilabel 1.5.3 {peer_rate:6.1f} calls/s   ratio {ours_rate / peer_rate:.2f} (bound ≥ 1.4)")
            ok = ok and ours_rate / peer_rate >= 1.4
        else:
            print("    distilabel not installed (pip install -e '.[bench]'): peer comparison skipped")
            ok = False
    finally:
        server.close()
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    print("PASS" if ok else "FAIL: a bound was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
