"""When a loop stops early, and which of its students is the best: both read off the win rates.

The win rate is the share of held-out questions on which the judges preferred the student's answer
to the teachers' accepted one (asked in both orders).  The base model's evaluation (iteration 0) is
the first to beat.  An iteration improves when its win rate exceeds the best so far by more than
``min_improvement``; after ``patience`` iterations in a row that do not, more iterations are unlikely
to pay for their teacher calls, and the loop stops.  A question no judge could decide counts as no
win rate at all (0.0 here), never as an improvement.
"""

from __future__ import annotations

from .journal import LoopRecord

__all__ = ["best_iteration", "stop_reason", "win_rates"]


def win_rates(record: LoopRecord, last: int) -> list[float]:
    """The win rate of students 0 … ``last`` (0.0 where none was measured)."""
    rates = []
    for iteration in range(last + 1):
        step = record.step(iteration, "eval")
        metrics = (step.result or {}).get("metrics", {}) if step is not None else {}
        mean = metrics.get("win_rate", {}).get("mean")
        rates.append(float(mean) if mean is not None else 0.0)
    return rates


def stop_reason(record: LoopRecord, iteration: int) -> str | None:
    """Why the loop should stop after ``iteration``, or None while its win rate still improves."""
    settings = record.settings
    rates = win_rates(record, iteration)
    best, best_at, stale = rates[0], 0, 0
    for number, rate in enumerate(rates[1:], start=1):
        if rate > best + settings.min_improvement:
            best, best_at, stale = rate, number, 0
        else:
            stale += 1
    if stale < settings.patience:
        return None
    where = "the base model" if best_at == 0 else f"iteration {best_at}"
    return (
        f"the win rate stopped improving: {rates[-1]:.3f} after iteration {iteration}, against the best "
        f"{best:.3f} ({where}), for {stale} iteration(s) in a row (patience {settings.patience})"
    )


def best_iteration(record: LoopRecord) -> int | None:
    """The trained iteration with the highest win rate (the earliest on a tie), or None before any."""
    trained = [step.iteration for step in record.steps if step.stage == "eval" and step.complete and step.iteration]
    if not trained:
        return None
    rates = win_rates(record, max(trained))
    return max(trained, key=lambda number: (rates[number], -number))
