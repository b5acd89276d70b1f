"""The logic of the actors a Ray run's shards share, without Ray (issue 15, item 3).

The actor classes are plain Python; Ray only hosts them.  What matters here is what a dead shard
worker leaves behind: the places it held, and acquisitions Ray keeps running after their caller died.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from arcticcodex.distill.ray_actors import (
    HOLDER_TTL_SECONDS,
    EndpointGovernor,
    LeasedGate,
    RunBudget,
    SharedBudget,
    governor_name,
)
from arcticcodex.errors import BudgetExceededError
from arcticcodex.teachers.ledger import Ledger
from arcticcodex.teachers.results import Usage
from test_teacher_gates import settle, synchronous


@synchronous
async def test_shards_share_the_limit_and_a_shard_run_again_replaces_its_dead_worker() -> None:
    now = [0.0]
    governor = EndpointGovernor(5, clock=lambda: now[0])
    assert await governor.join("shard-0", "shard-0/dead") == 5  # alone: the whole limit
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
