"""The logic of the actors a Ray run's shards share, without Ray (issue 15, item 3).

The actor classes are plain Python; Ray only hosts them.  What matters here is what a dead shard
worker leaves behind: the places it held, and acquisitions Ray keeps running after their caller died.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from arcticcodex.distill.ray_actors import (
    HOLDER_TTL_SECONDS,
    EndpointGovernor,
    LeasedGate,
    RunBudget,
    SharedBudget,
    SharedRun,
    governor_name,
)
from arcticcodex.errors import BudgetExceededError
from arcticcodex.teachers.entries import TeacherConfig
from arcticcodex.teachers.ledger import Ledger
from arcticcodex.teachers.openai_compat import OpenAICompatibleTeacher
from arcticcodex.teachers.pool import TeacherPool
from arcticcodex.teachers.results import Usage
from test_teacher_gates import settle, synchronous


@synchronous
async def test_shards_share_the_limit_and_a_shard_run_again_replaces_its_dead_worker() -> None:
    now = [0.0]
    governor = EndpointGovernor(5, clock=lambda: now[0])
    await governor.join("shard-0", "shard-0/dead")
    await governor.join("shard-1", "shard-1/a")
    shares = [(await governor.sync(holder, [], [], 0))[0] for holder in ("shard-0/dead", "shard-1/a")]
    assert sorted(shares) == [2, 3]  # an even split, never more than the limit in all
    await governor.join("shard-0", "shard-0/again")  # Ray runs shard 0 again after its worker died
    assert (await governor.sync("shard-0/dead", [0.1], [], 2))[0] == 0  # the dead one is given nothing
    shares = [(await governor.sync(holder, [], [], 0))[0] for holder in ("shard-0/again", "shard-1/a")]
    assert sum(shares) == 5
    now[0] += HOLDER_TTL_SECONDS + 1  # shard 0's second worker goes silent: its share goes back
    assert (await governor.sync("shard-1/a", [], [], 0))[0] == 5
    share, wait = await governor.sync("shard-1/a", [], [2.0, 2.0, 2.0], 4)  # three 429s of one round trip
    stats = await governor.stats()
    assert (share, wait) == (2, 2.0) and (stats["throttled"], stats["decreases"], stats["limit"]) == (3, 1, 2)
    assert stats["peak_in_flight"] == 4
    await governor.leave("shard-1", "shard-1/a")
    assert (await governor.stats())["holders"] == 0


@dataclass
class _Shard:
    """One shard's side of the governor as the simulation below drives it."""

    holder: str
    share: int = 0
    in_flight: int = 0
    reply: int | None = None  # a sync's answer still on its way back: the old share holds till it lands
    throttled: list[float | None] = field(default_factory=list)


@synchronous
async def test_shards_joining_and_a_halved_limit_never_put_more_than_the_maximum_in_flight() -> None:
    """Four shards join one after another, start and finish requests, meet 429s and sync, in a random
    order, with each sync's answer arriving late (the old share still in use meanwhile).  The requests
    in flight at the endpoint never exceed the maximum.  An even split handed out at once broke this
    the moment a second shard joined a first that held the whole limit (CI saw 6 of 4)."""
    maximum, peak = 4, 0
    for seed in range(20):
        rng = random.Random(seed)
        governor = EndpointGovernor(maximum)
        shards: list[_Shard] = []
        for _ in range(2_000):
            if len(shards) < 4 and rng.random() < 0.05:
                shards.append(_Shard(f"shard-{len(shards)}/h"))
                await governor.join(f"shard-{len(shards) - 1}", shards[-1].holder)
                continue
            if not shards:
                continue
            shard = rng.choice(shards)
            step = rng.choice(["start", "start", "finish", "finish", "sync", "land", "throttle"])
            if step == "start" and shard.in_flight < shard.share:
                shard.in_flight += 1
            elif step == "finish" and shard.in_flight:
                shard.in_flight -= 1
            elif step == "sync" and shard.reply is None:
                throttled, shard.throttled = shard.throttled, []
                shard.reply, _ = await governor.sync(shard.holder, [0.1], throttled, shard.in_flight)
            elif step == "land" and shard.reply is not None:
                shard.share, shard.reply = shard.reply, None
            elif step == "throttle" and shard.in_flight and rng.random() < 0.2:
                shard.in_flight -= 1
                shard.throttled.append(None)
                shard.share = max(1, shard.share // 2)
            in_flight = sum(each.in_flight for each in shards)
            assert in_flight <= maximum, f"seed {seed}: {in_flight} in flight at an endpoint of {maximum}"
            peak = max(peak, in_flight)
    assert peak == maximum  # the limit was used, not only respected


class _Governed:
    """What a Ray handle to an EndpointGovernor offers a LeasedGate, the calls made in this process."""

    def __init__(self, governor: EndpointGovernor) -> None:
        self.sync = _Method(lambda *args: asyncio.ensure_future(governor.sync(*args)))


@synchronous
async def test_a_leased_gate_holds_its_requests_to_its_share_and_halves_it_at_once_on_a_429() -> None:
    governor = EndpointGovernor(3)
    await governor.join("shard-0", "h")
    gate = LeasedGate(_Governed(governor), "h", period_s=3600)  # no periodic sync during the test
    entered: list[int] = []
    release = asyncio.Event()

    async def call(number: int) -> None:
        async with gate.slot() as slot:
            entered.append(number)
            await release.wait()
            await slot.report(0.1, throttled=number == 0)

    calls = [asyncio.create_task(call(number)) for number in range(5)]
    await settle()
    assert entered == [0, 1, 2]  # the share is the whole limit of 3: two wait
    release.set()
    await asyncio.gather(*calls)
    assert sorted(entered) == [0, 1, 2, 3, 4]
    assert gate._share == 1  # halved at once by the 429 (3 // 2), before any sync


def test_the_run_budget_admits_until_the_whole_run_has_spent_it() -> None:
    budget = RunBudget(1.0, 0.25)  # a quarter spent before the shards were made
    assert budget.admit() is None
    budget.spend(0.5)
    assert budget.admit() is None
    budget.spend(0.3)  # the call that crosses it was admitted before: it is paid for
    assert budget.admit() == pytest.approx(1.05)


def test_a_governor_is_named_by_run_endpoint_and_model() -> None:
    one = governor_name("r1", "http://127.0.0.1:8000/v1", "m")
    assert one == governor_name("r1", "http://127.0.0.1:8000/v1/", "m")
    assert one != governor_name("r2", "http://127.0.0.1:8000/v1", "m")
    assert one != governor_name("r1", "http://127.0.0.1:8001/v1", "m")
    assert one != governor_name("r1", "http://127.0.0.1:8000/v1", "n")


class _Method:
    def __init__(self, call: Any) -> None:
        self._call = call

    def remote(self, *args: Any) -> Any:
        return self._call(*args)


class _Handle:
    """What a Ray actor handle offers (``handle.method.remote(...)``), the calls made in this process."""

    def __init__(self, actor: RunBudget) -> None:
        self.spend = _Method(actor.spend)
        self.admit = _Method(lambda: _ready(actor.admit()))


def _ready(value: Any) -> asyncio.Future[Any]:
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    done.set_result(value)
    return done


@synchronous
async def test_a_shard_is_refused_with_the_runs_budget_named_once_the_run_has_spent_it() -> None:
    shared = SharedBudget(_Handle(RunBudget(2.0, 0.0)), 2.0)
    ledger = Ledger(shared=shared)
    await ledger.admit("gpu")
    ledger.record("gpu", Usage(prompt_tokens=1, completion_tokens=1), 2.5)  # told to the run's budget
    with pytest.raises(BudgetExceededError) as refused:
        await ledger.admit("gpu")
    assert "the run's budget of $2.00 is spent ($2.5000 across its shards)" in str(refused.value)
    assert tuple(refused.value.parameters) == ("budget_usd",) and ledger.spent_usd == 2.5  # the shard's own count


class _Syncs:
    """A governor handle that counts the syncs it is sent (and grants a share of 2)."""

    def __init__(self) -> None:
        self.holders: list[str] = []
        self.sync = _Method(self._sync)

    def _sync(self, holder: str, *_: Any) -> asyncio.Future[Any]:
        self.holders.append(holder)
        return _ready((2, 0.0))


@synchronous
async def test_two_teachers_of_one_shard_on_one_endpoint_hold_one_share_between_them() -> None:
    def on_the_endpoint(name: str) -> OpenAICompatibleTeacher:
        config = TeacherConfig(name=name, preset="vllm", model="m", base_url="http://127.0.0.1:9/v1", concurrency=4)
        return OpenAICompatibleTeacher(config, api_key="sk-test")

    drafter, verifier = on_the_endpoint("drafter"), on_the_endpoint("verifier")
    handle = _Syncs()
    shared = SharedRun("r1", {governor_name("r1", "http://127.0.0.1:9/v1", "m"): handle}, None, "shard-0", "h")
    shared(TeacherPool([drafter, verifier]), None)
    inside: list[str] = []
    release = asyncio.Event()

    async def call(teacher: OpenAICompatibleTeacher) -> None:
        _, gate = teacher._for_this_loop()
        async with gate.slot():
            inside.append(teacher.name)
            await release.wait()

    calls = [asyncio.create_task(call(teacher)) for teacher in (drafter, verifier, drafter, verifier)]
    await settle()
    assert len(inside) == 2  # the shard's share of 2, not 2 for each teacher
    assert handle.holders == ["h"]  # one gate, synced once, for both teachers
    release.set()
    await asyncio.gather(*calls)
    for teacher in (drafter, verifier):
        await teacher.aclose()
