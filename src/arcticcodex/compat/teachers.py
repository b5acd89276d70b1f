"""``DeepSeekClient(api_key)`` and ``TeacherRouter(deepseek_client=…).draft_critique_revise(…)``: the
first API's teacher loop, on the pool-based :class:`~arcticcodex.refine.TeacherRouter`.

``DeepSeekClient`` is a teacher configured from the ``deepseek`` preset; the router takes one client
and makes a pool of it; ``draft_critique_revise`` takes evidence as plain strings and a rubric as text
or a dict of criteria, runs :meth:`~arcticcodex.refine.TeacherRouter.refine_sync`, and answers with the
first API's dictionary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import UserError
from ..refine import TeacherRouter as PoolRouter
from ..teachers.entries import PRESETS, TeacherConfig
from ..teachers.openai_compat import OpenAICompatibleTeacher
from ..teachers.pool import Teacher, TeacherPool
from ..teachers.results import EvidenceItem, Rubric

__all__ = ["DeepSeekClient", "TeacherRouter"]


def DeepSeekClient(  # noqa: N802 - the first API named this factory like a class
    api_key: str | None = None,
    *,
    model: str | None = None,
    base_url: str | None = None,
    name: str = "deepseek",
    **settings: Any,
) -> OpenAICompatibleTeacher:
    """A DeepSeek teacher.  The key comes from ``api_key`` or ``DEEPSEEK_API_KEY``; ``base_url`` points it
    elsewhere (a proxy, or the test suite's fake)."""
    preset = PRESETS["deepseek"]
    config = TeacherConfig(
        name=name,
        preset="deepseek",
        model=model or preset["model"],
        base_url=base_url or preset["base_url"],
        api_key_env="DEEPSEEK_API_KEY",
        price_input=preset["price_input"],
        price_cached_input=preset["price_cached_input"],
        price_output=preset["price_output"],
        concurrency=preset["concurrency"],
        timeout=settings.pop("timeout", preset["timeout"]),
        **settings,
    )
    return OpenAICompatibleTeacher(config, api_key=api_key)


class TeacherRouter(PoolRouter):
    """The loop with one client (``deepseek_client=``) or a pool, and the first API's synchronous call."""

    def __init__(
        self,
        deepseek_client: Teacher | None = None,
        *,
        pool: TeacherPool | None = None,
        max_rounds: int = 3,
        threshold: float = 0.8,
        rubric: Rubric | None = None,
    ) -> None:
        if pool is None:
            if deepseek_client is None:
                raise ValueError("TeacherRouter needs a pool or a client (there is no silent default teacher)")
            pool = TeacherPool([deepseek_client])
        super().__init__(pool, max_rounds=max_rounds, threshold=threshold, rubric=rubric)

    def draft_critique_revise(
        self,
        draft: str,
        evidence: str | Sequence[str] = "",
        rubric: str | dict[str, str] | None = None,
        iterations: int | None = None,
    ) -> dict[str, Any]:
        """Returns quality_score, iterations_used, final_text, threshold_reached, history …"""
        items = [evidence] if isinstance(evidence, str) else list(evidence)
        if not all(isinstance(item, str) for item in items):
            raise UserError("evidence must be a string or a list of strings")
        numbered = [EvidenceItem(number=n, text=text) for n, text in enumerate((t for t in items if t.strip()), 1)]
        result = self.refine_sync(draft, numbered, rubric=_rubric(rubric), max_rounds=iterations)
        return {
            "final_text": result.final_text,
            "quality_score": result.score if result.score is not None else 0.0,
            "iterations_used": len(result.rounds),
            "threshold_reached": result.accepted,
            "accepted": result.accepted,
            "status": result.status,
            "failure": result.failure,
            "history": [r.to_json() for r in result.rounds],
        }


def _rubric(rubric: str | dict[str, str] | None) -> Rubric | None:
    if rubric is None:
        return None
    if isinstance(rubric, dict):
        return Rubric(criteria=rubric)
    return Rubric(instructions=rubric)
