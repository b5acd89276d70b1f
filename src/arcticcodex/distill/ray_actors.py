"""What a Ray run's shards share: one governor per teacher endpoint, and the run's one budget.

Why actors: each shard is a process of its own, so a semaphore or a ledger in one of them knows
nothing of the others — N shards would put N times a teacher's ``concurrency`` in flight at one
endpoint, and each would spend against a budget of its own.  So the driver (:mod:`.ray_engine`)
starts, for the run,

* an :class:`EndpointGovernor` per API teacher endpoint (named from the run and a hash of the
  endpoint's base URL and model): the endpoint's one AIMD limit (:class:`~arcticcodex.teachers.gates.AimdGovernor`,
  at most the teacher's ``concurrency`` in flight across all shards), shared out among the shards,
  each of which gates its own requests with its share (:class:`LeasedGate`); and
* a :class:`RunBudget` when the run has a budget: the run's one ledger, which admits a call only
  while what every shard has spent is below the budget, so the run exceeds it by at most the calls
  in flight.  Each shard's own :class:`~arcticcodex.teachers.ledger.Ledger` still counts its spend
  (its journal is charged from it, as in a single-process run) and consults this one before each
  attempt (``Ledger.shared``).

The actors are not detached: they belong to the driver and die with it (and the driver kills them
when the run ends).  A shard's share is held under its name (``shard-K``) and the id of the run of
it that holds it: a shard that Ray runs again after its worker died replaces the dead one at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BudgetExceededError
from ..fileio import write_atomically
from ..teachers.entries import TeacherConfig
from ..teachers.gates import AimdGovernor, GateSlot, RequestGate
from ..teachers.openai_compat import OpenAICompatibleTeacher
from ..teachers.pool import TeacherPool
from ..teachers.replicas import ReplicatedTeacher
from ..workspace import Workspace
from .journal import RunJournal
from .settings import RunSettings
from .shards import ShardPlan

__all__ = [
    "EndpointGovernor",
    "LeasedGate",
    "RunActors",
    "RunBudget",
    "RunShare",
    "SharedBudget",
    "budget_name",
    "endpoint_limits",
    "governor_name",
    "hand_budget",
    "start_actors",
    "stop_actors",
]

# calls a governor serves at once (every shard's sync), on one event loop
WAITING_CALLS = 1_000
SYNC_SECONDS = 0.25  # how often a shard tells a governor how its requests went, and learns its share
HOLDER_TTL_SECONDS = 10.0  # a shard's run not heard from this long is taken for dead


def governor_name(run_id: str, base_url: str, model: str) -> str:
    """The actor that governs one endpoint and model in one run (the same name in every shard)."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\n{model}".encode()).hexdigest()[:16]
    return f"arcticcodex-{run_id}-endpoint-{digest}"


def budget_name(run_id: str) -> str:
    return f"arcticcodex-{run_id}-budget"


class EndpointGovernor:
    """A Ray actor (async): one endpoint's AIMD limit, shared out among the shards working on it.

    Why shares and not a place per call: a round trip to an actor for every request cost a Ray run
    more than half its speed on a 2-core machine (benchmarks/ray.py: 58.6 s against 36.2 s without).
    So each shard holds a share of the limit (split evenly among the shards that are working) and
    gates its own requests with it (:class:`LeasedGate`), and every :data:`SYNC_SECONDS` it tells the
    governor how its requests went (their latencies; the 429s and ``Retry-After`` it met) and learns
    its share and any deadline: two messages a second a shard, whatever the request rate.  A 429
    halves the limit (once per round trip, :class:`~arcticcodex.teachers.gates.AimdGovernor`); the
    shard that met it halves its own share at once, the others at their next sync.

    A share is granted only out of what the other holders cannot be using: each holder is bounded by
    the most it may have in flight until its next sync — its requests in flight when it synced, the
    share it held while the reply travelled back, and the share it is given — so a shard that joins
    (or a limit that is halved) waits for the others to shrink before it grows, and the endpoint never
    sees more than ``maximum`` at once, even for the moment between two syncs (an even split handed
    out at once let four shards reach 6 of 4 while the later ones joined).

    A shard's worker can die without leaving: each run of a shard joins under a new ``holder`` id,
    which replaces the shard's earlier holder at once, and a holder not heard from for
    :data:`HOLDER_TTL_SECONDS` is dropped, so its share goes back to the others.
    """

    def __init__(self, maximum: int, start: int | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._governor = AimdGovernor(maximum, start=start, clock=clock)
        self._clock = clock
        self._seen: dict[str, float] = {}  # holder -> when it last synced
        self._in_flight: dict[str, int] = {}  # holder -> its requests in flight at its last sync
        self._granted: dict[str, int] = {}  # holder -> the share it was last given
        self._bound: dict[str, int] = {}  # holder -> the most it may have in flight until its next sync
        self._current: dict[str, str] = {}  # shard -> the holder running it now
        self.peak_in_flight = 0

    async def join(self, shard: str, holder: str) -> None:
        """``holder`` now runs ``shard`` (its predecessor, if any, is gone); it is counted in the split
        from now on, and given its share at its first sync."""
        previous = self._current.get(shard)
        if previous is not None:
            self._drop(previous)
        self._current[shard] = holder
        self._seen[holder] = self._clock()

    async def sync(
        self, holder: str, latencies: list[float], throttled: list[float | None], in_flight: int
    ) -> tuple[int, float]:
        """How ``holder``'s requests went since its last sync; its share, and how long nobody may ask."""
        if holder not in self._seen:  # dropped (its shard runs again under a new holder): nothing for it
            return 0, 0.0
        self._seen[holder] = self._clock()
        self._in_flight[holder] = in_flight
        self.peak_in_flight = max(self.peak_in_flight, sum(self._in_flight.values()))
        epoch = self._governor.epoch
        for retry_after in throttled:
            self._governor.report(epoch, 0.0, throttled=True, retry_after=retry_after)
        for latency in latencies:
            self._governor.report(self._governor.epoch, latency)
        self._expire()
        share = self._grant(holder)
        # until its next sync the holder may have in flight what it had, what its old share let it start
        # while this reply travelled, and what the new share lets it start
        self._bound[holder] = max(in_flight, self._granted.get(holder, 0), share)
        self._granted[holder] = share
        return share, max(0.0, self._governor.deadline - self._clock())

    async def leave(self, shard: str, holder: str) -> None:
        if self._current.get(shard) == holder:
            del self._current[shard]
        self._drop(holder)

    async def stats(self) -> dict[str, float | int]:
        return {**self._governor.stats(), "peak_in_flight": self.peak_in_flight, "holders": len(self._seen)}

    def _grant(self, holder: str) -> int:
        """``holder``'s even split of the limit (the first ``limit % holders`` get one more), as far as
        the other holders' bounds leave room for it under the limit."""
        holders = sorted(self._seen)
        base, extra = divmod(self._governor.limit, len(holders))
        even = base + (1 if holders.index(holder) < extra else 0)
        others = sum(bound for other, bound in self._bound.items() if other != holder)
        return max(0, min(even, self._governor.limit - others))

    def _expire(self) -> None:
        now = self._clock()
        for holder in [h for h, seen in self._seen.items() if now - seen > HOLDER_TTL_SECONDS]:
            self._drop(holder)

    def _drop(self, holder: str) -> None:
        for held in (self._seen, self._in_flight, self._granted, self._bound):
            held.pop(holder, None)


class RunBudget:
    """A Ray actor: the run's one budget across its shards (``spent_usd``: what the run had spent before)."""

    def __init__(self, budget_usd: float, spent_usd: float) -> None:
        self.budget_usd = budget_usd
        self.spent_usd = spent_usd

    def admit(self) -> float | None:
        """None: one more call may start; else what the run has spent, which has reached the budget."""
        return None if self.spent_usd < self.budget_usd else self.spent_usd

    def spend(self, cost_usd: float) -> None:
        self.spent_usd += cost_usd

    def spent(self) -> float:
        return self.spent_usd


class _LeasedSlot:
    def __init__(self, gate: LeasedGate) -> None:
        self._gate = gate
        self._first = True  # the slot was given past any deadline: the first attempt need not wait

    async def before_attempt(self) -> None:
        if self._first:
            self._first = False
            return
        await self._gate.past_deadline()

    async def report(self, latency_s: float, *, throttled: bool = False, retry_after: float | None = None) -> None:
        self._gate.heard(latency_s, throttled, retry_after)


class LeasedGate:
    """A teacher's :class:`~arcticcodex.teachers.gates.RequestGate` in a shard: its share of the endpoint's
    limit, kept up to date by a sync with the :class:`EndpointGovernor` every :data:`SYNC_SECONDS`."""

    def __init__(self, actor: Any, holder: str, *, period_s: float | None = None) -> None:
        self._actor = actor
        self._holder = holder
        self._period_s = SYNC_SECONDS if period_s is None else period_s
        self._share = 0
        self._in_flight = 0
        self._deadline = -math.inf
        self._latencies: list[float] = []
        self._throttled: list[float | None] = []
        self._changed = asyncio.Event()
        self._starting: asyncio.Task[None] | None = None
        self._syncing: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[GateSlot]:
        if self._syncing is None:
            await self._first_sync()
            if self._syncing is None:
                self._syncing = asyncio.get_running_loop().create_task(self._keep_syncing())
        while True:
            await self.past_deadline()
            if self._in_flight < self._share:
                break
            changed = self._changed
            await changed.wait()
        self._in_flight += 1
        try:
            yield _LeasedSlot(self)
        finally:
            self._in_flight -= 1
            self._wake()

    async def past_deadline(self) -> None:
        while (wait := self._deadline - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    def heard(self, latency_s: float, throttled: bool, retry_after: float | None) -> None:
        """One attempt's outcome: kept for the next sync; a 429 halves this shard's share at once."""
        if retry_after is not None:
            self._deadline = max(self._deadline, time.monotonic() + retry_after)
        if throttled:
            self._throttled.append(retry_after)
            self._share = max(1, self._share // 2)
        elif retry_after is None:
            self._latencies.append(latency_s)

    async def _sync(self) -> None:
        latencies, self._latencies = self._latencies, []
        throttled, self._throttled = self._throttled, []
        share, wait = await self._actor.sync.remote(self._holder, latencies, throttled, self._in_flight)
        self._share = share
        if wait > 0:
            self._deadline = max(self._deadline, time.monotonic() + wait)
        self._wake()

    async def _first_sync(self) -> None:
        """The first share, before the first request: one sync, however many requests wait for it."""
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._sync())
        try:
            await asyncio.shield(self._starting)
        except BaseException:
            if self._starting.done():  # failed: the next request asks again
                self._starting = None
            raise

    async def _keep_syncing(self) -> None:
        while True:
            await asyncio.sleep(self._period_s)
            with contextlib.suppress(Exception):  # a sync missed is made up by the next one
                await self._sync()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


class SharedBudget:
    """A shard's side of :class:`RunBudget` (``Ledger.shared``)."""

    def __init__(self, actor: Any, budget_usd: float) -> None:
        self._actor = actor
        self._budget_usd = budget_usd

    async def admit(self, teacher: str) -> None:
        spent = await self._actor.admit.remote()
        if spent is not None:
            raise BudgetExceededError(
                f"the run's budget of ${self._budget_usd:.2f} is spent (${spent:.4f} across its shards); "
                "no new teacher calls — raise budget_usd to continue",
                teacher=teacher,
                parameters=["budget_usd"],
            )

    def spend(self, teacher: str, cost_usd: float) -> None:
        self._actor.spend.remote(cost_usd)  # ordered before this process's next admit: one actor, one caller


@dataclass(frozen=True)
class RunShare:
    """The run's shared actors by name: what the driver hands each shard (plain data, so Ray ships it)."""

    governors: tuple[str, ...] = ()
    budget: str | None = None
    budget_usd: float | None = None
    run_id: str = ""

    def join(self, shard: str) -> SharedRun:
        """This run of ``shard``, in its worker: the actors looked up, what a dead predecessor held given back."""
        import ray

        holder = f"{shard}/{uuid.uuid4().hex}"
        governors = {name: ray.get_actor(name) for name in self.governors}
        if governors:
            ray.get([actor.join.remote(shard, holder) for actor in governors.values()])
        budget = None
        if self.budget is not None and self.budget_usd is not None:
            budget = SharedBudget(ray.get_actor(self.budget), self.budget_usd)
        return SharedRun(self.run_id, governors, budget, shard, holder)


class SharedRun:
    """Attaches a shard's teachers and ledger to the run's actors (``Distiller.share``)."""

    def __init__(
        self, run_id: str, governors: dict[str, Any], budget: SharedBudget | None, shard: str, holder: str
    ) -> None:
        self.run_id = run_id
        self.governors = governors
        self.budget = budget
        self.shard = shard
        self.holder = holder

    def __call__(self, pool: TeacherPool, student: object | None) -> None:
        gates: dict[str, Callable[[], RequestGate]] = {}  # one gate per endpoint: teachers on it share it
        for teacher in _endpoints([*pool.teachers.values(), student]):
            name = governor_name(self.run_id, teacher.config.base_url, teacher.model)
            actor = self.governors.get(name)
            if actor is not None:
                teacher.use_gates(gates.setdefault(name, _gates(actor, self.holder)))
        if self.budget is not None:
            pool.ledger.shared = self.budget

    def close(self) -> None:
        """Give this shard's share back to the others (it has finished, or stopped)."""
        import ray

        if self.governors:
            ray.get([actor.leave.remote(self.shard, self.holder) for actor in self.governors.values()])


def _gates(actor: Any, holder: str) -> Callable[[], RequestGate]:
    """The gate of ``holder``'s share, one per event loop, whichever of the shard's teachers asks: two
    teachers on one endpoint (a drafter and a verifier of the same model) hold one share between
    them, not one each."""
    made: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LeasedGate] = weakref.WeakKeyDictionary()

    def gate() -> RequestGate:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # made outside a loop (use_gates on a teacher at rest): bound at first use
            return _LoopBoundGate(gate)
        if loop not in made:
            made[loop] = LeasedGate(actor, holder)
        return made[loop]

    return gate


class _LoopBoundGate:
    """Defers picking the loop's shared gate to the first request, made on the loop it belongs to."""

    def __init__(self, pick: Callable[[], RequestGate]) -> None:
        self._pick = pick

    def slot(self) -> contextlib.AbstractAsyncContextManager[GateSlot]:
        return self._pick().slot()


def _endpoints(teachers: Iterable[object]) -> list[OpenAICompatibleTeacher]:
    """Every single-endpoint teacher among ``teachers`` (a replicated teacher's replicas each)."""
    found: list[OpenAICompatibleTeacher] = []
    for teacher in teachers:
        if isinstance(teacher, ReplicatedTeacher):
            found.extend(teacher.replicas)
        elif isinstance(teacher, OpenAICompatibleTeacher):
            found.append(teacher)
    return found


@dataclass(frozen=True)
class RunActors:
    """The actors the driver started for a run: what shards are told (``share``), and the handles to end."""

    share: RunShare
    governors: tuple[Any, ...]
    budget: Any | None


def start_actors(
    ray: Any, run_id: str, endpoints: dict[str, int], budget_usd: float | None, spent_usd: float
) -> RunActors:
    """The run's actors: a governor per endpoint (``endpoints``: name → the endpoint's concurrency), and
    a budget when the run has one (``spent_usd``: what the run has spent so far)."""
    governor = ray.remote(num_cpus=0, max_restarts=0, max_concurrency=WAITING_CALLS)(EndpointGovernor)
    governors = tuple(
        governor.options(name=name, get_if_exists=True).remote(concurrency) for name, concurrency in endpoints.items()
    )
    budget = None
    if budget_usd is not None:
        ledger = ray.remote(num_cpus=0, max_restarts=0)(RunBudget)
        budget = ledger.options(name=budget_name(run_id), get_if_exists=True).remote(budget_usd, spent_usd)
    share = RunShare(tuple(endpoints), budget_name(run_id) if budget is not None else None, budget_usd, run_id)
    return RunActors(share, governors, budget)


def endpoint_limits(run_id: str, configs: Iterable[TeacherConfig], settings: RunSettings) -> dict[str, int]:
    """Governor name → concurrency, for every API endpoint the run's teachers and drafter use."""
    used = set(settings.teachers) | {name for name in (settings.drafter, settings.fallback_drafter) if name}
    limits: dict[str, int] = {}
    for config in configs:
        if config.preset == "local" or (settings.teachers and config.name not in used):
            continue
        for url in (config.base_url, *config.replicas):
            limits.setdefault(governor_name(run_id, url, config.model), config.concurrency)
    return limits


def hand_budget(
    workspace: Workspace, plan: ShardPlan, run_id: str, settings: RunSettings, unfinished: list[int]
) -> float:
    """Give each shard still working the run's budget (the run's budget actor holds them all to it, and a
    shard that stops names it); return what the run has spent so far."""
    journals = [RunJournal(plan.workspace(workspace, index)) for index in range(plan.shards)]
    try:
        spent = plan.spent_before + sum(shard.run(run_id).spent_usd for shard in journals)
        for index in unfinished:
            shard = journals[index]
            own = RunSettings.from_json(shard.run(run_id).settings)
            if own.budget_usd != settings.budget_usd:
                given = {**own.to_json(), "budget_usd": settings.budget_usd}
                shard.update_settings(run_id, RunSettings.from_json(given).to_json())
    finally:
        for shard in journals:
            shard.close()
    return spent


def stop_actors(ray: Any, actors: RunActors, report: Path) -> None:
    """Write each governor's standing to ``report`` (what the endpoints sustained), then end the actors."""
    with contextlib.suppress(Exception):  # a report is worth having, not worth failing a finished run for
        stats = ray.get([governor.stats.remote() for governor in actors.governors], timeout=10)
        named = dict(zip(actors.share.governors, stats, strict=True))
        write_atomically(report, json.dumps(named, indent=2, sort_keys=True).encode("utf-8"))
    for handle in (*actors.governors, actors.budget):
        if handle is not None:
            with contextlib.suppress(Exception):
                ray.kill(handle)
