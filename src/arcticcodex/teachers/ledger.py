"""Token and money accounting per teacher, and the budget that stops new calls once it is spent."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..errors import BudgetExceededError
from .results import Usage


@dataclass
class TeacherStats:
    calls: int = 0
    cached_calls: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hit_tokens: int = 0
    cost_usd: float = 0.0


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

    @property
    def spent_usd(self) -> float:
        return sum(stats.cost_usd for stats in self.stats.values())

    @property
    def unsettled_usd(self) -> float:
        """Spent but not written by ``settle`` (replies that could not be used, so were never cached)."""
        return self.spent_usd - self.settled_usd

    def check(self, teacher: str) -> None:
        if self.budget_usd is not None and self.spent_usd >= self.budget_usd:
            raise BudgetExceededError(
                f"the budget of ${self.budget_usd:.2f} is spent (${self.spent_usd:.4f}); no new teacher calls — "
                "raise budget_usd to continue",
                teacher=teacher,
                parameters=["budget_usd"],
            )

    def record(self, teacher: str, usage: Usage, cost_usd: float, *, cached: bool = False) -> None:
        stats = self.stats.setdefault(teacher, TeacherStats())
        stats.calls += 1
        stats.cached_calls += cached
        if not cached:
            stats.prompt_tokens += usage.prompt_tokens
            stats.completion_tokens += usage.completion_tokens
            stats.cache_hit_tokens += usage.cache_hit_tokens
            stats.cost_usd += cost_usd

    def record_failure(self, teacher: str) -> None:
        self.stats.setdefault(teacher, TeacherStats()).failures += 1

    def to_json(self) -> dict[str, object]:
        return {
            "budget_usd": self.budget_usd,
            "spent_usd": round(self.spent_usd, 6),
            "teachers": {name: asdict(stats) for name, stats in self.stats.items()},
        }
