"""The logic of the actors a Ray run's shards share, without Ray (issue 15, item 3).

The actor classes are plain Python; Ray only hosts them.  What matters here is what a dead shard
worker leaves behind: the places it held, and acquisitions Ray keeps running after their caller died.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from arcticcodex.distill.ray_actors import EndpointGovernor, RunBudget, SharedBudget, governor_name
from arcticcodex.errors import BudgetExceededError
from arcticcodex.teachers.ledger import Ledger
from arcticcodex.teachers.results import Usage
from test_teacher_gates import settle, synchronous


@synchronous
async def test_a_shard_run_again_gets_back_what_its_dead_worker_held_and_was_waiting_for() -> None:
    governor = EndpointGovernor(2)
    await governor.join("shard-0", "shard-0/dead")
    held = [await governor.acquire("shard-0", "shard-0/dead") for _ in range(2)]
    assert all(ticket for ticket, _ in held)
    late = asyncio.create_task(governor.acquire("shard-0", "shard-0/dead"))  # its caller dies while it waits
    await settle()
    assert not late.done()
    assert await governor.join("shard-0", "shard-0/again") == 2  # Ray runs the shard again
    await settle()
    assert (await late)[0] == 0  # the dead worker's wait is refused, its place not kept
    places = [await governor.acquire("shard-0", "shard-0/again") for _ in range(2)]
    assert all(ticket for ticket, _ in places) and (await governor.stats())["in_flight"] == 2
    assert await governor.leave("shard-0", "shard-0/again") == 2
    assert (await governor.stats())["in_flight"] == 0


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
