"""GPU budgets: what a launch may commit, and when running instances must go.

Two limits, each optional: the workspace's whole GPU spend (``total``) and the spend of one run, a
group of instances launched under the same ``--run`` name.  Both rules are about money that will be
spent, not only money spent:

* a **launch** is refused unless the budget left covers ``hours`` of the new instance *and* ``hours``
  of every instance already running in the group;
* **enforcement** (every ``poll_interval``) destroys a group's running instances as soon as its spend
  plus one more interval of their burn would reach the limit — so even a check that comes a little
  late leaves the spend within one polling interval of the running instances' rates.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .. import configfile
from ..errors import ConfigError, GpuBudgetError
from ..workspace import Workspace
from .state import InstanceRecord


@dataclass(frozen=True, slots=True)
class GpuBudget:
    """Dollar limits: over the workspace's whole GPU spend, and per run (a group of instances)."""

    total_usd: float | None = None
    run_usd: float | None = None

    def __post_init__(self) -> None:
        for name in ("total_usd", "run_usd"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise ConfigError(f"a GPU budget ({name}) is a non-negative number of dollars, not {value!r}")

    def groups(
        self, records: Sequence[InstanceRecord], *, run: str | None = None
    ) -> Iterator[tuple[float, str, list[InstanceRecord]]]:
        """(limit, scope, members) for every limit that applies: the total, then each run (or just ``run``)."""
        if self.total_usd is not None:
            yield self.total_usd, "the total GPU budget", list(records)
        if self.run_usd is not None:
            runs = [run] if run is not None else sorted({r.run for r in records})
            for name in runs:
                yield self.run_usd, f"the budget of run {name!r}", [r for r in records if r.run == name]

    def check_launch(
        self, records: Sequence[InstanceRecord], *, rate: float, hours: float, run: str, now: float
    ) -> None:
        """Raise GpuBudgetError when ``hours`` at ``rate`` $/h, plus what is committed, would pass a limit."""
        for limit, scope, members in self.groups(records, run=run):
            spent = sum(r.cost(now) for r in members)
            burning = sum(r.rate for r in members if r.live) * hours
            needed = rate * hours
            if spent + burning + needed > limit + 1e-9:
                raise GpuBudgetError(
                    f"renting at ${rate:.3f}/h for {hours:g} h needs ${needed:.2f}, but {scope} is ${limit:.2f} "
                    f"with ${spent:.2f} spent and ${burning:.2f} committed to running instances; "
                    "raise the budget (budget_usd, or gpu.budget_usd in arcticcodex.toml), shorten hours, "
                    "or choose a cheaper offer",
                    parameters=["budget_usd", "hours"],
                )

    def overrun(
        self, records: Sequence[InstanceRecord], *, interval_s: float, now: float
    ) -> Iterator[tuple[str, float, InstanceRecord]]:
        """(scope, limit, record) for every live instance whose group would pass its limit within ``interval_s``."""
        for limit, scope, members in self.groups(records):
            spent = sum(r.cost(now) for r in members)
            burn = sum(r.rate for r in members if r.live)
            if burn > 0 and spent + burn * interval_s / 3600 >= limit:
                for record in members:
                    if record.live and record.instance_id is not None:
                        yield scope, limit, record


def save_budget(workspace: Workspace, budget: GpuBudget) -> None:
    """Keep limits given on the command line in ``[gpu]`` of arcticcodex.toml.

    Enforcement happens in later commands too (``gpu ls``, ``gpu watch``, another ``gpu up``), which
    must see the same limits; a budget that lived only in one command's options would be forgotten
    the moment it returned.
    """
    values = {
        key: float(value)
        for key, value in (("budget_usd", budget.total_usd), ("run_budget_usd", budget.run_usd))
        if value is not None
    }
    workspace.config = configfile.set_values(workspace.config.path, "gpu", values)
