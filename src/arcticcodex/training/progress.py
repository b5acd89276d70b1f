"""A transformers ``TrainerCallback`` that reports steps to a plain function (the CLI draws the bar)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

__all__ = ["ProgressCallback"]


class ProgressCallback(TrainerCallback):
    """Calls ``report(stage, step, total)`` at the start and after every optimiser step."""

    def __init__(self, stage: str, report: Callable[[str, int, int], None]) -> None:
        self.stage = stage
        self.report = report

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.report(self.stage, state.global_step, state.max_steps)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.report(self.stage, state.global_step, state.max_steps)
