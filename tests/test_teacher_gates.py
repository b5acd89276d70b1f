"""The gates a teacher's requests pass (issue 15, item 3): fixed, and adaptive (AIMD).

The AIMD governor is driven by a fake clock whose ``sleep`` only returns when the test moves time on,
so "nobody starts before the Retry-After deadline" is checked by which waits are still pending, not
by a stopwatch.  The teacher's use of a gate is checked against the fake OpenAI server: the request a
second call sends is logged no earlier than the deadline the first call's 429 set.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from arcticcodex.teachers.entries import TeacherConfig
from arcticcodex.teachers.gates import AimdGate, AimdGovernor, FixedGate, GateSlot
from arcticcodex.teachers.openai_compat import OpenAICompatibleTeacher
from fakes.openai_server import FakeOpenAIServer


def synchronous(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """An async test run in its own event loop (the project's tests take no asyncio plug-in)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), timeout=60))  # type: ignore[arg-type]

    return run


class FakeClock:
    """A monotonic clock that moves only when told; ``sleep`` returns once time has reached its end."""

    def __init__(self) -> None:
        self.now = 100.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        waiting: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, waiting))
        await waiting

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        for due, waiting in list(self._sleepers):
            if due <= self.now:
                self._sleepers.remove((due, waiting))
                waiting.set_result(None)
        await settle()


async def settle() -> None:
    """Let every task that can run, run (a few rounds of the event loop)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def holders(governor: AimdGovernor, count: int) -> tuple[list[asyncio.Task[int]], int]:
    """Start ``count`` acquisitions; return them and how many got a place at once."""
    tasks = [asyncio.create_task(governor.acquire()) for _ in range(count)]
    await settle()
    return tasks, sum(task.done() for task in tasks)


async def succeed(governor: AimdGovernor, times: int, latency: float = 0.1) -> None:
    for _ in range(times):
        epoch = await governor.acquire()
        governor.report(epoch, latency)
        governor.release()


@synchronous
async def test_the_limit_grows_by_one_per_window_while_latency_holds_and_never_above_the_maximum() -> None:
    governor = AimdGovernor(5, start=2)
    await succeed(governor, 1)
    assert governor.limit == 2  # a window is as many successes as the limit
    await succeed(governor, 1)
    assert governor.limit == 3
    await succeed(governor, 3)
    assert governor.limit == 4
    await succeed(governor, 100)
    assert (governor.limit, governor.increases) == (5, 3)
    tasks, started = await holders(governor, 7)
    assert started == 5  # the maximum in flight, the others wait
    for _ in range(2):
        governor.release()
    await settle()
    assert all(task.done() for task in tasks)


@synchronous
async def test_a_429_halves_the_limit_once_per_round_trip_and_never_below_one() -> None:
    governor = AimdGovernor(8)
    tasks, started = await holders(governor, 8)
    epochs = [task.result() for task in tasks]
    for epoch in epochs:  # the burst of 429s one too-high limit caused: one decrease, not eight
        governor.report(epoch, 0.1, throttled=True)
    assert (governor.limit, governor.decreases, governor.throttled) == (4, 1, 8)
    for _ in epochs:
        governor.release()
    for expected in (2, 1, 1, 1):  # each a request started after the last decrease
        epoch = await governor.acquire()
        governor.report(epoch, 0.1, throttled=True)
        governor.release()
        assert governor.limit == expected
    tasks, started = await holders(governor, 3)
    assert started == 1  # one at a time, but never none
    for task in tasks:
        task.cancel()


@synchronous
async def test_a_latency_that_degrades_stops_the_growth_without_halving_and_jitter_does_not() -> None:
    """Slower answers are no reason to halve (a busy client's own queueing looks the same); they hold the limit."""
    governor = AimdGovernor(8, start=2)
    await succeed(governor, 1, latency=0.2)
    await succeed(governor, 1, latency=0.9)  # more than twice the best: the window starts again
    assert (governor.limit, governor.decreases, governor.increases) == (2, 0, 0)
    await succeed(governor, 1, latency=0.35)  # within twice the best: latency holds
    assert governor.limit == 2
    await succeed(governor, 1, latency=0.3)  # a whole window of two that held: one more
    assert (governor.limit, governor.increases) == (3, 1)
    fast = AimdGovernor(8, start=2)
    await succeed(fast, 1, latency=0.002)
    await succeed(fast, 1, latency=0.01)  # five times the best, but 8 ms: jitter, not a signal
    assert (fast.limit, fast.increases) == (3, 1)


@synchronous
async def test_nobody_starts_a_request_before_the_retry_after_deadline() -> None:
    clock = FakeClock()
    governor = AimdGovernor(4, clock=clock, sleep=clock.sleep)
    gate = AimdGate(governor)
    async with gate.slot() as throttled:
        await throttled.before_attempt()
        await throttled.report(0.05, throttled=True, retry_after=5.0)
        retry = asyncio.create_task(throttled.before_attempt())  # the throttled call's own next attempt
        newcomer = asyncio.create_task(_take(gate))  # a call that has not started
        await settle()
        assert not retry.done() and not newcomer.done()
        await clock.advance(4.9)
        assert not retry.done() and not newcomer.done()
        await clock.advance(0.2)
        assert retry.done() and newcomer.done()
    assert governor.limit == 2 and governor.in_flight == 0


async def _take(gate: AimdGate) -> None:
    async with gate.slot():
        pass


@synchronous
async def test_the_fixed_gate_holds_its_limit_whatever_is_reported() -> None:
    gate = FixedGate(2)
    entered = asyncio.Event()
    leave = asyncio.Event()
    inside = 0

    async def call() -> None:
        nonlocal inside
        async with gate.slot() as slot:
            inside += 1
            await slot.report(9.0, throttled=True, retry_after=60.0)  # learnt nothing: today's semaphore
            await slot.before_attempt()
            if inside == 2:
                entered.set()
            await leave.wait()

    tasks = [asyncio.create_task(call()) for _ in range(3)]
    await asyncio.wait_for(entered.wait(), timeout=10)
    await settle()
    assert inside == 2
    leave.set()
    await asyncio.gather(*tasks)
    assert inside == 3


def test_the_governor_refuses_a_start_beyond_its_maximum() -> None:
    with pytest.raises(ValueError, match="start must be between 1 and maximum"):
        AimdGovernor(4, start=5)
    with pytest.raises(ValueError, match="maximum must be at least 1"):
        AimdGovernor(0)


@contextlib.asynccontextmanager
async def teacher(server: FakeOpenAIServer, governor: AimdGovernor) -> AsyncIterator[OpenAICompatibleTeacher]:
    config = TeacherConfig(name="gpu", preset="vllm", model="fake-model", base_url=server.base_url, concurrency=4)
    built = OpenAICompatibleTeacher(config, api_key="sk-test")
    built.use_gates(lambda: AimdGate(governor))
    try:
        yield built
    finally:
        await built.aclose()


@synchronous
async def test_a_teacher_waits_out_a_429s_retry_after_before_any_other_request(server: FakeOpenAIServer) -> None:
    governor = AimdGovernor(4)
    server.inject("429:retry-after=1")
    async with teacher(server, governor) as gpu:
        first = asyncio.create_task(gpu.complete(gpu.request_body([{"role": "user", "content": "one, in json"}])))
        for _ in range(1000):  # until the 429 has been reported to the gate (a freeze would end the test)
            if governor.throttled or first.done():
                break
            await asyncio.sleep(0.01)
        assert governor.throttled == 1
        await gpu.complete(gpu.request_body([{"role": "user", "content": "two, in json"}]))
        await first
    sent = [request for request in server.requests if request.path.endswith("/chat/completions")]
    assert [request.fault for request in sent][:1] == ["429:retry-after=1"] and len(sent) == 3
    throttled_at = sent[0].timestamp
    assert all(request.timestamp >= throttled_at + 1.0 for request in sent[1:])  # the newcomer waited too
    # halved to 2 by the 429, then one more after a window of two successes
    assert (governor.limit, governor.decreases, governor.increases, governor.in_flight) == (3, 1, 1, 0)


@synchronous
async def test_a_slot_is_given_back_when_its_call_is_cancelled() -> None:
    governor = AimdGovernor(1)
    gate = AimdGate(governor)
    held = asyncio.Event()

    async def hold() -> None:
        async with gate.slot():
            held.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(hold())
    await held.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert governor.in_flight == 0
    slot: GateSlot
    async with gate.slot() as slot:
        await slot.before_attempt()
