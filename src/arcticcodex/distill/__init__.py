"""Distillation runs: where prompts come from, how they are drafted, refined and written as signed pairs."""

from __future__ import annotations

from ..agent.drafting import Draft, ExtractiveDrafter
from .run import Distiller, RunSummary
from .settings import RunSettings
from .sources import PromptItem, read_prompts
from .sourcing import Source

__all__ = [
    "Distiller",
    "Draft",
    "ExtractiveDrafter",
    "PromptItem",
    "RunSettings",
    "RunSummary",
    "Source",
    "read_prompts",
]
