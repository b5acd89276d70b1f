"""Distillation runs: where prompts come from, how they are drafted, refined and written as signed pairs."""

from __future__ import annotations

from .sources import PromptItem, read_prompts

__all__ = ["PromptItem", "read_prompts"]
