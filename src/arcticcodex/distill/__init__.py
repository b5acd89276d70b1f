"""Distillation runs: where prompts come from, how they are drafted, refined and written as signed pairs."""

from __future__ import annotations

from .drafting import Draft, ExtractiveDrafter
from .sources import PromptItem, read_prompts

__all__ = ["Draft", "ExtractiveDrafter", "PromptItem", "read_prompts"]
