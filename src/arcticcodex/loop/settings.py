"""What a loop is asked to do: fixed when it starts, journaled, and the same when it resumes.

A loop's settings are a distillation run's (the teachers, threshold, rounds, signing key …) and a
training run's (method, adapter, schedule …) used as templates — each iteration fills in its own
drafter, base model and method — plus the loop's own: how many iterations, when to stop early, the
held-out questions and the budget of the whole loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..distill.settings import RunSettings
from ..errors import UserError
from ..training.settings import METHODS, TrainSettings

__all__ = ["FIRST_DRAFTER_BASE", "LOOP_METHODS", "LoopSettings"]

FIRST_DRAFTER_BASE = "base"
"""The first iteration's drafter when it is the base model itself (the student of iteration 0)."""
LOOP_METHODS = ("auto", *METHODS)
"""``auto``: SFT then DPO when the iteration's dataset holds preference pairs (drafts the teachers
improved on), SFT alone when it holds none — each iteration's choice is journaled and shown."""


@dataclass(frozen=True, slots=True)
class LoopSettings:
    """How a loop distils, trains, evaluates and stops.

    ``run`` and ``train`` are templates: the loop sets each iteration's drafter, validation split and
    review (off: a loop runs unattended) on ``run``, and the base model and method on ``train``.
    ``heldout`` is a signed dataset whose validation split is the fixed held-out set; None takes
    iteration 1's validation split, and later iterations never distil those questions again.
    The loop stops early once ``patience`` iterations in a row fail to raise the best win rate so
    far by more than ``min_improvement`` (the base model's evaluation is the first to beat).
    """

    base: str
    run: RunSettings
    train: TrainSettings
    iterations: int = 3
    method: str = "auto"
    first_drafter: str = FIRST_DRAFTER_BASE
    heldout: str | None = None
    allow_untrusted: bool = False
    validation_fraction: float = 0.1
    budget_usd: float | None = None
    patience: int = 1
    min_improvement: float = 0.0
    judges: tuple[str, ...] = ()
    eval_max_tokens: int = 256
    eval_limit: int | None = None
    source: dict[str, Any] = field(default_factory=dict)
    """How iteration 1's questions were made (the Source's fields), for the record."""

    def __post_init__(self) -> None:
        if not self.base.strip():
            raise UserError("base must name the model to start from: a local folder or a Hugging Face id")
        if not 1 <= self.iterations <= 100:
            raise UserError(f"iterations must be between 1 and 100, not {self.iterations}", parameters=["iterations"])
        if self.method not in LOOP_METHODS:
            raise UserError(
                f"method must be one of {', '.join(LOOP_METHODS)}, not {self.method!r}", parameters=["method"]
            )
        if not 1 <= self.patience <= 100:
            raise UserError(f"patience must be between 1 and 100, not {self.patience}", parameters=["patience"])
        if not 0.0 <= self.min_improvement < 1.0:
            raise UserError(
                f"min_improvement must be a win-rate difference in [0, 1), not {self.min_improvement}",
                parameters=["min_improvement"],
            )
        if self.heldout is None and not 0.0 < self.validation_fraction < 1.0:
            raise UserError(
                "validation_fraction must be in (0, 1) when no held-out dataset is given: iteration 1's "
                f"validation split is the loop's held-out set (got {self.validation_fraction})",
                parameters=["validation_fraction", "heldout"],
            )
        if self.budget_usd is not None and self.budget_usd < 0:
            raise UserError(f"budget_usd must not be negative, not {self.budget_usd}", parameters=["budget_usd"])
        if self.eval_max_tokens < 1:
            raise UserError(
                f"eval_max_tokens must be at least 1, not {self.eval_max_tokens}", parameters=["eval_max_tokens"]
            )
        if self.eval_limit is not None and self.eval_limit < 1:
            raise UserError(f"eval_limit must be at least 1, not {self.eval_limit}", parameters=["eval_limit"])
        if not self.first_drafter.strip():
            raise UserError(
                "first_drafter must be 'base', 'auto', 'extractive' or a configured teacher",
                parameters=["first_drafter"],
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "run": self.run.to_json(),
            "train": self.train.to_json(),
            "iterations": self.iterations,
            "method": self.method,
            "first_drafter": self.first_drafter,
            "heldout": self.heldout,
            "allow_untrusted": self.allow_untrusted,
            "validation_fraction": self.validation_fraction,
            "budget_usd": self.budget_usd,
            "patience": self.patience,
            "min_improvement": self.min_improvement,
            "judges": list(self.judges),
            "eval_max_tokens": self.eval_max_tokens,
            "eval_limit": self.eval_limit,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoopSettings:
        values = dict(data)
        values["run"] = RunSettings.from_json(data["run"])
        values["train"] = TrainSettings.from_json(data["train"])
        values["judges"] = tuple(data.get("judges", ()))
        return cls(**values)
