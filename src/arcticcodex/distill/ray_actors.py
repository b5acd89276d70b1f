"""What a Ray run's shards share: one governor per teacher endpoint, and the run's one budget.

Why actors: each shard is a process of its own, so a semaphore or a ledger in one of them knows
nothing of the others — N shards would put N times a teacher's ``concurrency`` in flight at one
endpoint, and each would spend against a budget of its own.  So the driver (:mod:`.ray_engine`)
starts, for the run,

* an :class:`EndpointGovernor` per API teacher endpoint (named from the run and a hash of the
  endpoint's base URL and model): the endpoint's one AIMD limit (:class:`~arcticcodex.teachers.gates.AimdGovernor`,
  at most the teacher's ``concurrency`` in flight across all shards), whose places every shard's
  requests take through a :class:`GovernedGate`; and
* a :class:`RunBudget` when the run has a budget: the run's one ledger, which admits a call only
  while what every shard has spent is below the budget, so the run exceeds it by at most the calls
  in flight.  Each shard's own :class:`~arcticcodex.teachers.ledger.Ledger` still counts its spend
  (its journal is charged from it, as in a single-process run) and consults this one before each
  attempt (``Ledger.shared``).

The actors are not detached: they belong to the driver and die with it (and the driver kills them
when the run ends).  A shard's places are held under its name (``shard-K``) and the id of the run of
it that holds them: a shard that Ray runs again after its worker died first gives back what the
dead one held, and what the dead one was still waiting for is refused when it comes.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import uuid
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
    "GovernedGate",
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

# calls a governor runs at once: its waits (acquire, ready) must never use them all up, or no release
# could run to end them.  One event loop for all (a concurrency group of their own would run on another
# thread's loop, where the governor's asyncio.Event would never wake them).
WAITING_CALLS = 100_000


def governor_name(run_id: str, base_url: str, model: str) -> str:
    """The actor that governs one endpoint and model in one run (the same name in every shard)."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\n{model}".encode()).hexdigest()[:16]
    return f"arcticcodex-{run_id}-endpoint-{digest}"


def budget_name(run_id: str) -> str:
    return f"arcticcodex-{run_id}-budget"


class EndpointGovernor:
    """A Ray actor (async): one endpoint's AIMD limit, its places lent as tickets to shards.

    A shard's worker can die with places held and with acquisitions still waiting here (Ray does not
    cancel an actor call whose caller died): each run of a shard joins under a new ``holder`` id, and
    joining gives back what the shard's earlier holders held and refuses what they still wait for.
    """

    def __init__(self, maximum: int, start: int | None = None) -> None:
        self._governor = AimdGovernor(maximum, start=start)
        self._tickets: dict[int, tuple[str, str]] = {}  # ticket -> (shard, holder)
        self._current: dict[str, str] = {}  # shard -> the holder running it now
        self._numbers = itertools.count(1)

    async def join(self, shard: str, holder: str) -> int:
        """``holder`` now runs ``shard``: give back what its predecessors held; how many places that was."""
        self._current[shard] = holder
        return self._give_back(lambda owner: owner[0] == shard and owner[1] != holder)

    async def acquire(self, shard: str, holder: str) -> tuple[int, int]:
        """A place: (ticket, epoch), once the limit and any Retry-After allow (ticket 0: refused, the
        asking holder is gone)."""
        epoch = await self._governor.acquire()
        if self._current.get(shard, holder) != holder:
            self._governor.release()
            return 0, epoch
        ticket = next(self._numbers)
        self._tickets[ticket] = (shard, holder)
        return ticket, epoch

    async def ready(self) -> int:
        return await self._governor.ready()

    async def report(self, epoch: int, latency_s: float, throttled: bool, retry_after: float | None) -> None:
        self._governor.report(epoch, latency_s, throttled=throttled, retry_after=retry_after)

    async def release(self, ticket: int) -> None:
        if self._tickets.pop(ticket, None) is not None:
            self._governor.release()

    async def leave(self, shard: str, holder: str) -> int:
        """``holder`` is done: give back what it still holds (calls cancelled mid-wait)."""
        if self._current.get(shard) == holder:
            self._current[shard] = ""
        return self._give_back(lambda owner: owner == (shard, holder))

    async def stats(self) -> dict[str, float | int]:
        return self._governor.stats()

    def _give_back(self, whose: Callable[[tuple[str, str]], bool]) -> int:
        held = [ticket for ticket, owner in self._tickets.items() if whose(owner)]
        for ticket in held:
            del self._tickets[ticket]
            self._governor.release()
        return len(held)


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


class _GovernedSlot:
    def __init__(self, actor: Any, epoch: int) -> None:
        self._actor = actor
        self._epoch = epoch

    async def before_attempt(self) -> None:
        self._epoch = await self._actor.ready.remote()

    async def report(self, latency_s: float, *, throttled: bool = False, retry_after: float | None = None) -> None:
        self._actor.report.remote(self._epoch, latency_s, throttled, retry_after)  # told, not waited for


class GovernedGate:
    """A teacher's :class:`~arcticcodex.teachers.gates.RequestGate` whose places an :class:`EndpointGovernor` lends."""

    def __init__(self, actor: Any, shard: str, holder: str) -> None:
        self._actor = actor
        self._shard = shard
        self._holder = holder

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[GateSlot]:
        ticket, epoch = await self._actor.acquire.remote(self._shard, self._holder)
        try:
            yield _GovernedSlot(self._actor, epoch)
        finally:
            # submitted, not awaited: given back even when the call was cancelled (a budget stop)
            self._actor.release.remote(ticket)


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
        for teacher in _endpoints([*pool.teachers.values(), student]):
            actor = self.governors.get(governor_name(self.run_id, teacher.config.base_url, teacher.model))
            if actor is not None:
                teacher.use_gates(_gates(actor, self.shard, self.holder))
        if self.budget is not None:
            pool.ledger.shared = self.budget

    def close(self) -> None:
        """Give back whatever places this shard still holds (calls cancelled mid-wait)."""
        import ray

        if self.governors:
            ray.get([actor.leave.remote(self.shard, self.holder) for actor in self.governors.values()])


def _gates(actor: Any, shard: str, holder: str) -> Callable[[], RequestGate]:
    return lambda: GovernedGate(actor, shard, holder)


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
