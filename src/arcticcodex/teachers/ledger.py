"""Token and money accounting per teacher, and the budget that stops new calls once it is spent."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol

from ..errors import BudgetExceededError
from .results import Usage


@dataclass
class TeacherStats:
    calls: int = 0
    cached_calls: int = 0
    batched_calls: int = 0  # answered through a Batch API, at its discounted price
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hit_tokens: int = 0
    cost_usd: float = 0.0


class SharedBudget(Protocol):
    """A budget other processes spend from too (a Ray run's shards: ``distill/ray_actors.py``)."""

    async def admit(self, teacher: str) -> None:
        """Return when one more call may start; raise BudgetExceededError when the budget is spent."""

    def spend(self, teacher: str, cost_usd: float) -> None:
        """Count a reply's cost against the budget (without waiting for it to be counted)."""


@dataclass
class Ledger:
    """Shared by every teacher of a pool (and a run): what was spent, by whom, against which budget.

    The budget is checked before each call, so the call that crosses it still completes and is paid
    for, and no call starts after it (a call's cost is only known once it has been made).
    """

    budget_usd: float | None = None
    stats: dict[str, TeacherStats] = field(default_factory=dict)
    settle: Callable[[sqlite3.Connection, float], None] | None = None
    """Where the cost of a reply that is cached gets written, in the transaction that caches it (a
    distillation run sets its journal's charger here); None: costs are only counted in memory."""
    settled_usd: float = 0.0
    """The part of :attr:`spent_usd` that ``settle`` has written."""
    reserved_usd: float = 0.0
    """The estimated cost of batches submitted and not yet answered (``distill --batch``): the budget
    counts them, so no batch is submitted that the budget could not pay for."""
    shared: SharedBudget | None = None
    """The run's budget when other processes spend from it too: consulted by :meth:`admit` and told
    every cost :meth:`record` counts; the stats here stay this process's own (they are journaled)."""

    @property
    def spent_usd(self) -> float:
        return sum(stats.cost_usd for stats in self.stats.values())

    @property
    def unsettled_usd(self) -> float:
        """Spent but not written by ``settle`` (replies that could not be used, so were never cached)."""
        return self.spent_usd - self.settled_usd

    def check(self, teacher: str) -> None:
        if self.budget_usd is not None and self.spent_usd + self.reserved_usd >= self.budget_usd:
            held = f", ${self.reserved_usd:.4f} more held for batches in flight" if self.reserved_usd else ""
            raise BudgetExceededError(
                f"the budget of ${self.budget_usd:.2f} is spent (${self.spent_usd:.4f}{held}); no new teacher calls — "
                "raise budget_usd to continue",
                teacher=teacher,
                parameters=["budget_usd"],
            )

    async def admit(self, teacher: str) -> None:
        """:meth:`check`, then the shared budget's word: what an async call path asks before each attempt,
        so a budget shared by many processes is exceeded by at most the calls in flight."""
        self.check(teacher)
        if self.shared is not None:
            await self.shared.admit(teacher)

    def record(
        self, teacher: str, usage: Usage, cost_usd: float, *, cached: bool = False, batched: bool = False
    ) -> None:
        """One reply: its tokens and ``cost_usd`` (a batched reply's is the Batch API's discounted price)."""
        stats = self.stats.setdefault(teacher, TeacherStats())
        stats.calls += 1
        stats.cached_calls += cached
        stats.batched_calls += batched
        if not cached:
            stats.prompt_tokens += usage.prompt_tokens
            stats.completion_tokens += usage.completion_tokens
            stats.cache_hit_tokens += usage.cache_hit_tokens
            stats.cost_usd += cost_usd
            if self.shared is not None and cost_usd:
                self.shared.spend(teacher, cost_usd)

    def room_usd(self) -> float | None:
        """What the budget has left once spending and reservations are counted; None: no budget."""
        return None if self.budget_usd is None else self.budget_usd - self.spent_usd - self.reserved_usd

    def reserve(self, amount: float) -> None:
        self.reserved_usd += amount

    def release(self, amount: float) -> None:
        self.reserved_usd = max(0.0, self.reserved_usd - amount)

    def record_failure(self, teacher: str) -> None:
        self.stats.setdefault(teacher, TeacherStats()).failures += 1

    def to_json(self) -> dict[str, object]:
        return {
            "budget_usd": self.budget_usd,
            "spent_usd": round(self.spent_usd, 6),
            "reserved_usd": round(self.reserved_usd, 6),
            "teachers": {name: asdict(stats) for name, stats in self.stats.items()},
        }
