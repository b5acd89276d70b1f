"""A new run's tasks from the source it was given, refused before the run exists when there are none.

One of: a prompts file, the vault's conversations, or a curriculum of questions about the vault
(written offline, or by a teacher).  The tasks of a prompts file or of conversations are streamed into
the journal as the run is created; a teacher's questions are written first (they are the tasks), so
their calls are counted and budgeted here, and what they cost becomes the run's first spend.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BudgetExceededError, UserError
from ..teachers.ledger import Ledger
from .curriculum import curriculum_tasks, teacher_curriculum_tasks
from .tasks import Task, conversation_tasks, prompt_tasks

if TYPE_CHECKING:
    from .run import Distiller

__all__ = ["Source", "Sourced", "source_tasks"]


@dataclass(frozen=True, slots=True)
class Source:
    """What a run distils: ``kind`` is ``prompts``, ``from_conversations`` or ``from_vault``."""

    kind: str
    prompts: Path | None = None
    conversation_ids: tuple[str, ...] = ()
    questions_by: str = "offline"
    questions_per_chunk: int = 2
    limit: int | None = None

    @property
    def label(self) -> str:
        """How the run's recipe names its source."""
        if self.kind == "prompts":
            return f"prompts: {self.prompts}"
        if self.kind == "from_vault" and self.questions_by != "offline":
            return f"from_vault (questions by {self.questions_by})"
        return self.kind


@dataclass
class Sourced:
    """The tasks, what writing them cost, and a line saying so (None when nothing was paid for)."""

    tasks: Iterable[Task]
    spent_usd: float = 0.0
    report: str | None = None


async def source_tasks(distiller: Distiller, source: Source, *, budget_usd: float | None) -> Sourced:
    """The tasks of ``source`` (at most ``source.limit``); raises UserError when it gives none."""
    limit = source.limit
    if source.kind == "prompts" and source.prompts is not None:
        found = _some(
            itertools.islice(prompt_tasks(source.prompts), limit),
            f"{source.prompts} holds no prompts; write one JSON object per line, e.g. "
            '{"instruction": "What do otters eat?", "evidence": "Otters eat mostly fish."}',
        )
        return Sourced(found)
    if source.kind == "from_conversations":
        found = _some(
            itertools.islice(conversation_tasks(distiller.vault, source.conversation_ids), limit),
            "the vault holds no conversation with a user turn answered by the assistant; import one with "
            "`arcticcodex vault import chats.jsonl`, or talk to the vault with `arcticcodex chat`",
        )
        return Sourced(found)
    empty = (
        "the vault has no document to ask questions about; import some first: `arcticcodex vault import DIR`"
        if not distiller.vault.list_documents(limit=1)
        else "the vault's documents hold no prose to ask questions about (only tables or code?)"
    )
    if source.questions_by == "offline":
        return Sourced(
            _some(curriculum_tasks(distiller.vault, limit=limit, per_chunk=source.questions_per_chunk), empty)
        )
    return await _teacher_questions(distiller, source, budget_usd, empty)


async def _teacher_questions(distiller: Distiller, source: Source, budget_usd: float | None, empty: str) -> Sourced:
    ledger = Ledger(budget_usd=budget_usd)
    teacher = distiller.configured_teacher(source.questions_by, ledger=ledger, parameter="questions_by")

    try:
        tasks = await teacher_curriculum_tasks(
            distiller.vault, teacher, limit=source.limit, per_chunk=source.questions_per_chunk
        )
    except BudgetExceededError:
        # from None: the BudgetExceededError adds nothing the message does not already say
        raise BudgetExceededError(
            f"the budget of ${budget_usd or 0:.2f} was spent while {teacher.name} wrote the questions "
            f"({_calls(ledger)}, ${ledger.spent_usd:.4f}), before any prompt was distilled; no run was created — "
            "raise budget_usd (the questions written so far are cached and are not paid for again)",
            teacher=teacher.name,
            parameters=["budget_usd"],
        ) from None
    finally:
        await teacher.aclose()
    if not tasks:
        raise UserError(empty)
    asked = sum(1 for _, task in tasks if not task.get("failure"))
    unasked = len(tasks) - asked
    report = f"{teacher.name} wrote {asked} question(s) in {_calls(ledger)}, ${ledger.spent_usd:.4f}" + (
        f"; {unasked} chunk(s) got no usable question and fail" if unasked else ""
    )
    return Sourced(tasks, spent_usd=ledger.spent_usd, report=report)


def _calls(ledger: Ledger) -> str:
    calls = sum(stats.calls for stats in ledger.stats.values())
    cached = sum(stats.cached_calls for stats in ledger.stats.values())
    return f"{calls} call(s)" + (f", {cached} answered from the cache" if cached else "")


def _some(tasks: Iterator[Task], empty: str) -> Iterator[Task]:
    """``tasks`` unchanged, once it is known to hold at least one (read ahead by one)."""
    first = next(tasks, None)
    if first is None:
        raise UserError(empty)
    return itertools.chain((first,), tasks)
