"""How many requests go to one endpoint at once: the gate every teacher request passes through.

Why a gate object and not a bare semaphore: a single process knows its own load, and a fixed limit
(the teacher's ``concurrency``) is all it needs — :class:`FixedGate`, the default.  A run spread over
many processes (``distill --engine ray``) shares each endpoint among them, and the endpoint's
sustainable rate is found, not configured: :class:`AimdGovernor` grows the limit by one for every
window of requests that came back without the latency degrading (slower answers only stop the
growth), halves it on a 429, and holds every new request until a ``Retry-After`` deadline has passed.  The
teacher does not care which it has: it takes a :meth:`RequestGate.slot` per call, waits
:meth:`GateSlot.before_attempt` before each attempt, and reports how each attempt went
(:meth:`GateSlot.report`).  A Ray run's gate reaches one governor per endpoint through a Ray actor
(:mod:`arcticcodex.distill.ray_actors`), which wraps this module's :class:`AimdGovernor`.

One decrease per round trip: a request that started before the last decrease says nothing new
when it comes back throttled (the burst of 429s a limit that was too high causes halves the limit
once, not once per 429); each attempt carries the ``epoch`` it started in for that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

__all__ = ["AimdGate", "AimdGovernor", "FixedGate", "GateSlot", "RequestGate"]


class GateSlot(Protocol):
    """One call's place at the endpoint, held across its attempts (retries included)."""

    async def before_attempt(self) -> None:
        """Wait until the endpoint may be asked again (a ``Retry-After`` deadline has passed)."""

    async def report(self, latency_s: float, *, throttled: bool = False, retry_after: float | None = None) -> None:
        """How one attempt went: its latency, whether the endpoint throttled it (429), its ``Retry-After``."""


class RequestGate(Protocol):
    """Where a teacher's requests wait their turn."""

    def slot(self) -> contextlib.AbstractAsyncContextManager[GateSlot]:
        """A place for one call, given back when the context ends."""


class _Unreported:
    """A fixed gate's slot: nothing to wait for and nothing learnt from a report."""

    async def before_attempt(self) -> None:
        return None

    async def report(self, latency_s: float, *, throttled: bool = False, retry_after: float | None = None) -> None:
        return None


class FixedGate:
    """At most ``concurrency`` calls at once (a semaphore): a single process's run, as it always was.

    Bound to the event loop it is first used in, as asyncio's primitives are: a teacher makes one
    per loop.
    """

    def __init__(self, concurrency: int) -> None:
        self._semaphore = asyncio.Semaphore(concurrency)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[GateSlot]:
        async with self._semaphore:
            yield _Unreported()


class AimdGovernor:
    """The adaptive limit of one endpoint: additive increase, multiplicative decrease (AIMD).

    ``start`` requests at once at first (``maximum`` when None), never more than ``maximum`` and never
    fewer than one.  After each window of ``limit`` successful requests whose latency stayed within
    ``factor`` times the best of the last ``memory`` ones, the limit grows by one; a latency beyond that
    (and more than ``slack_s`` above the best, so that jitter of a few milliseconds is no signal)
    starts the window again; a 429 halves it.  A ``Retry-After`` holds every request — new or
    retried — until its deadline.
    ``clock`` and ``sleep`` are the monotonic clock and how to wait on it (tests pass a fake pair).
    """

    def __init__(
        self,
        maximum: int,
        *,
        start: int | None = None,
        factor: float = 2.0,
        slack_s: float = 0.05,
        memory: int = 64,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if maximum < 1:
            raise ValueError(f"maximum must be at least 1, not {maximum}")
        if start is not None and not 1 <= start <= maximum:
            raise ValueError(f"start must be between 1 and maximum ({maximum}), not {start}")
        self.maximum = maximum
        self.limit = maximum if start is None else start
        self.factor = factor
        self.slack_s = slack_s
        self.in_flight = 0
        self.peak_in_flight = 0
        self.epoch = 0  # one more for every decrease (see the module docstring)
        self.throttled = self.decreases = self.increases = 0
        self._clock = clock
        self._sleep = sleep
        self._latencies: deque[float] = deque(maxlen=memory)
        self._successes = 0  # in the current window
        self._deadline = -math.inf
        self._changed = asyncio.Event()  # set (and replaced) whenever a waiter may now go ahead

    async def acquire(self) -> int:
        """Wait for a place (under the limit, past any deadline); return the epoch the request starts in."""
        while True:
            await self.ready()
            if self.in_flight < self.limit:
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                return self.epoch
            changed = self._changed
            await changed.wait()

    async def ready(self) -> int:
        """Wait out a ``Retry-After`` deadline (a retry's next attempt); return the epoch it starts in."""
        while (wait := self._deadline - self._clock()) > 0:
            await self._sleep(wait)
        return self.epoch

    def release(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self._wake()

    def report(
        self, epoch: int, latency_s: float, *, throttled: bool = False, retry_after: float | None = None
    ) -> None:
        """One attempt's outcome (``epoch``: what :meth:`acquire` or :meth:`ready` returned before it)."""
        if retry_after is not None:
            self._deadline = max(self._deadline, self._clock() + retry_after)
        if throttled:
            self.throttled += 1
            self._decrease(epoch)
            return
        if retry_after is not None:  # a pause asked for (a 503 with Retry-After): no sample of latency
            return
        best = min(self._latencies, default=latency_s)
        self._latencies.append(latency_s)
        if latency_s > best * self.factor and latency_s - best > self.slack_s:
            # slower answers stop the growth but do not halve it: measured, a busy client's own queueing
            # (two cores, several shards) looked like a slow endpoint and halved a healthy limit over and
            # over — Ray ran at half speed; the endpoint's own word (429, Retry-After) is what backs off
            self._successes = 0
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            if self.limit < self.maximum:
                self.limit += 1
                self.increases += 1
                self._wake()

    @property
    def deadline(self) -> float:
        """Until when (on the clock) nobody may ask the endpoint: the latest ``Retry-After``."""
        return self._deadline

    def stats(self) -> dict[str, float | int]:
        """Where the governor stands, for a run's report: the limit and what it took to get there."""
        return {
            "limit": self.limit,
            "maximum": self.maximum,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "throttled": self.throttled,
            "decreases": self.decreases,
            "increases": self.increases,
            "best_latency_s": round(min(self._latencies, default=0.0), 4),
        }

    def _decrease(self, epoch: int) -> None:
        if epoch < self.epoch:  # started before the last decrease: already counted
            return
        self.limit = max(1, self.limit // 2)
        self.epoch += 1
        self.decreases += 1
        self._successes = 0

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


class _GovernedSlot:
    def __init__(self, governor: AimdGovernor, epoch: int) -> None:
        self._governor = governor
        self._epoch = epoch

    async def before_attempt(self) -> None:
        self._epoch = await self._governor.ready()

    async def report(self, latency_s: float, *, throttled: bool = False, retry_after: float | None = None) -> None:
        self._governor.report(self._epoch, latency_s, throttled=throttled, retry_after=retry_after)


class AimdGate:
    """A :class:`RequestGate` over an :class:`AimdGovernor` in this process (one event loop)."""

    def __init__(self, governor: AimdGovernor) -> None:
        self.governor = governor

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[GateSlot]:
        epoch = await self.governor.acquire()
        try:
            yield _GovernedSlot(self.governor, epoch)
        finally:
            self.governor.release()
