"""The timings the tests no longer assert: refusals that must be instant, waits that must be just long enough.

Run: ``.venv/bin/python benchmarks/waits.py [--repeats 3]``

The tests check each behaviour by what happened (a message, a count, the server's log); how long it took
is measured here, where a noisy machine makes a figure worse instead of making a test fail.

(a) **Runaway arithmetic is refused up front.**  The agent's ``calculate`` tool refuses ``9**9**9`` and
    the other runaway expressions of ``tests/test_agent_tools.py`` by checking the operands, not by
    computing (``9**9**9`` would take minutes and 150 MB).  The slowest refusal, per call, against a
    bound of 1 ms; a plain ``(1 + 2) * 3`` is timed beside it.
(b) **Requests overlap their latency.**  200 chat completions, 64 at a time, through the SDK's default
    client against the fake OpenAI server (its own process) answering each after 50 ms: 0.16 s if they
    overlap perfectly, 10 s one at a time.  Bound: 2.5 s.
(c) **A client's timeout is its own, not the server's.**  The fake holds a reply back ("timeout:5");
    a client with ``timeout=0.3`` gives up: the time to ``APITimeoutError``, bound 3 s.
(d) **Retry-After is honoured, and no more.**  A teacher told ``429`` with ``Retry-After: 1`` retries:
    the gap between the two requests in the server's own log, bound 1.0–1.25 s.

Medians of ``--repeats`` runs; peak RSS of this process is printed.  Exit status 1 when a bound is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import time
import urllib.request
from typing import Any

import httpx2 as httpx
import openai

from arcticcodex._sync import run_sync
from arcticcodex.agent.calculator import calculate
from arcticcodex.errors import ToolError
from arcticcodex.teachers.entries import TeacherConfig
from arcticcodex.teachers.faults import RetryPolicy
from arcticcodex.teachers.openai_compat import OpenAICompatibleTeacher
from arcticcodex.teachers.pool import TeacherPool
from arcticcodex.teachers.results import Rubric
from teachers import FakeServer  # benchmarks/teachers.py: the fake in its own process

RUNAWAY = ["9**9**9", "2**100000", "10**5000", "(10**1000) * (10**1000)", "1e308 * 10", "99999999 ** 99999999"]
MESSAGES = [{"role": "system", "content": "You are the critic. Reply in JSON."}, {"role": "user", "content": "x"}]


def control(server: FakeServer, path: str, payload: object | None = None) -> Any:
    """The fake's /_fake/* API: POST with a payload, GET without."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(server.root + path, data=data, method="GET" if data is None else "POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def refusal_seconds(expression: str, calls: int) -> float:
    """Seconds per refusal (or per evaluation, for an expression that is allowed)."""
    start = time.perf_counter()
    for _ in range(calls):
        with contextlib.suppress(ToolError):
            calculate(expression)
    return (time.perf_counter() - start) / calls


async def overlapping(base_url: str, requests: int, concurrency: int) -> float:
    """Seconds for ``requests`` completions, ``concurrency`` at a time, through the SDK's default client."""
    gate = asyncio.Semaphore(concurrency)
    async with openai.AsyncOpenAI(base_url=base_url, api_key="sk", max_retries=0) as client:

        async def one() -> None:
            async with gate:
                await client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(requests)))
        return time.perf_counter() - start


def timed_out(server: FakeServer) -> float:
    """Seconds from the request to the client's APITimeoutError, the reply held back 5 s."""
    control(server, "/_fake/faults", {"faults": ["timeout:5"]})
    with openai.OpenAI(base_url=server.base_url, api_key="sk", max_retries=0, http_client=httpx.Client()) as client:
        start = time.perf_counter()
        try:
            client.chat.completions.create(model="m", messages=MESSAGES, timeout=0.3)  # type: ignore[arg-type]
        except openai.APITimeoutError:
            return time.perf_counter() - start
    raise SystemExit("the client did not time out")


def retry_gap(server: FakeServer) -> float:
    """Seconds between a 429 with Retry-After: 1 and the teacher's retry, by the server's log."""
    control(server, "/_fake/faults", {"faults": ["429:retry-after=1"]})
    config = TeacherConfig(name="a", preset="vllm", model="fake-model", base_url=server.base_url, timeout=5.0)
    pool = TeacherPool([OpenAICompatibleTeacher(config, retry=RetryPolicy(max_attempts=2, base_delay=0.01))])

    async def critique() -> None:
        try:
            await pool.critique("text", [], Rubric())
        finally:
            await pool.aclose()

    run_sync(critique())
    refused, retried = control(server, "/_fake/requests")[-2:]
    if (refused["fault"], retried["fault"]) != ("429:retry-after=1", None):
        raise SystemExit(f"unexpected requests: {refused['fault']}, {retried['fault']}")
    return float(retried["timestamp"]) - float(refused["timestamp"])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000, help="refusals timed per expression and repeat")
    args = parser.parse_args()
    ok = True

    refusals = {e: statistics.median(refusal_seconds(e, args.calls) for _ in range(args.repeats)) for e in RUNAWAY}
    plain = statistics.median(refusal_seconds("(1 + 2) * 3", args.calls) for _ in range(args.repeats))
    slowest = max(refusals, key=refusals.__getitem__)
    met = refusals[slowest] <= 1e-3
    ok &= met
    print("(a) runaway arithmetic, refused per call:")
    for expression, seconds in refusals.items():
        print(f"      {expression:26} {seconds * 1e6:7.1f} µs")
    worst = refusals[slowest]
    print(f"    slowest {worst * 1e6:.1f} µs against 1 ms: {worst / 1e-3:.3f}× bound, {verdict(met)}")
    print(f"    (1 + 2) * 3, evaluated: {plain * 1e6:.1f} µs")

    server = FakeServer(latency=0.05)
    try:
        times = [run_sync(overlapping(server.base_url, 200, 64)) for _ in range(args.repeats)]
        elapsed = statistics.median(times)
        met = elapsed <= 2.5
        ok &= met
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(f"(b) 200 requests, 64 at a time, 50 ms each: {elapsed:.2f} s (runs {runs}; ideal 0.16 s, serial 10 s)")
        print(f"    against 2.5 s: {elapsed / 2.5:.2f}× bound, {verdict(met)}")
    finally:
        server.close()

    server = FakeServer(latency=0.0)
    try:
        waits = [timed_out(server) for _ in range(args.repeats)]
        waited = statistics.median(waits)
        met = waited <= 3.0
        ok &= met
        print(f"(c) client timeout 0.3 s, reply held 5 s: APITimeoutError after {waited:.3f} s")
        print(f"    {waited / 0.3:.2f}× the timeout; against 3 s: {waited / 3.0:.2f}× bound, {verdict(met)}")
        gaps = [retry_gap(server) for _ in range(args.repeats)]
        gap = statistics.median(gaps)
        met = all(1.0 <= g <= 1.25 for g in gaps)
        ok &= met
        runs = ", ".join(f"{g:.3f}" for g in gaps)
        print(f"(d) Retry-After: 1 → the retry {gap:.3f} s later by the server's log (runs {runs})")
        print(f"    {gap / 1.0:.3f}× Retry-After; bound 1.0–1.25 s, {verdict(met)}")
    finally:
        server.close()

    print(f"peak RSS {peak_rss_mb():.0f} MB")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
