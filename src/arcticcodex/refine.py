"""TeacherRouter: the draft → critique → verify → rewrite loop, as data.

::

    round r = 1 … max_rounds:
        critique the current text (the critic, or an ensemble)      → score
        verify its claims against the evidence (when evidence is given)
        accept if score ≥ threshold and no claim is contradicted    → stop
        if r = max_rounds: stop, not accepted
        rewrite with the critique and the claim check               → the next round's text

So the final text is always the last critiqued one — the score returned is the score of the text
returned — and a failed or empty rewrite keeps the previous text and is recorded as a failed round.
A teacher failure ends the loop as ``failed`` with its reason: never as a pass.  Every round keeps its
text, scores, claims and the calls behind them (teacher, model, prompt hash, raw reply, tokens, cost,
latency).

:meth:`TeacherRouter.refine` is a coroutine; :meth:`TeacherRouter.refine_sync` runs it from synchronous
code (see :mod:`arcticcodex._sync`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._sync import run_sync
from .errors import BudgetExceededError, TeacherError, UserError
from .teachers.pool import TeacherPool
from .teachers.results import CallRecord, Critique, EvidenceItem, Rewrite, Rubric, Verification

Status = Literal["accepted", "rejected", "failed"]


@dataclass
class Round:
    number: int
    text: str
    critique: Critique | None = None
    verification: Verification | None = None
    rewrite: Rewrite | None = None
    failure: str | None = None

    @property
    def score(self) -> float | None:
        return self.critique.score if self.critique else None

    @property
    def calls(self) -> list[CallRecord]:
        found: list[CallRecord] = []
        for part in (self.critique, self.verification, self.rewrite):
            if part is not None and part.call is not None:
                found.append(part.call)
        if self.critique is not None:
            found += [member.call for member in self.critique.members if member.call is not None]
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.number,
            "text": self.text,
            "score": self.score,
            "criteria": self.critique.criteria if self.critique else {},
            "weaknesses": self.critique.weaknesses if self.critique else [],
            "disagreement": self.critique.disagreement if self.critique else None,
            "claims": [claim.model_dump() for claim in self.verification.claims] if self.verification else [],
            "rewrite_changes": self.rewrite.changes if self.rewrite else [],
            "failure": self.failure,
            "calls": [call.model_dump() for call in self.calls],
        }


@dataclass
class RefineResult:
    status: Status
    final_text: str
    score: float | None
    rounds: list[Round] = field(default_factory=list)
    failure: str | None = None
    budget_spent: bool = False
    """The failure was the budget running out: nothing wrong with the text, and more budget would go on."""

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def cost_usd(self) -> float:
        return round(sum(call.cost_usd for r in self.rounds for call in r.calls), 6)

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "status": self.status,
            "score": self.score,
            "final_text": self.final_text,
            "rounds": [r.to_json() for r in self.rounds],
            "failure": self.failure,
            "cost_usd": self.cost_usd,
        }


class TeacherRouter:
    """Runs the loop with a pool of teachers (:class:`~arcticcodex.teachers.pool.TeacherPool`)."""

    def __init__(
        self,
        pool: TeacherPool,
        *,
        max_rounds: int = 3,
        threshold: float = 0.8,
        rubric: Rubric | None = None,
    ) -> None:
        if not isinstance(pool, TeacherPool):
            raise TypeError(
                f"TeacherRouter takes a TeacherPool, not {type(pool).__name__}; "
                "wrap a single teacher as TeacherPool([teacher])"
            )
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")
        self.pool = pool
        self.max_rounds = max_rounds
        self.threshold = threshold
        self.rubric = rubric or Rubric()

    async def refine(
        self,
        draft: str,
        evidence: Sequence[EvidenceItem] = (),
        *,
        instruction: str = "",
        rubric: Rubric | None = None,
        max_rounds: int | None = None,
    ) -> RefineResult:
        rubric = rubric or self.rubric
        limit = self.max_rounds if max_rounds is None else max_rounds
        if limit < 1:
            raise UserError(f"max_rounds must be at least 1, not {max_rounds}")
        rounds: list[Round] = []
        text = draft
        if not text.strip():
            return RefineResult("failed", draft, None, rounds, failure="the draft is empty")
        for number in range(1, limit + 1):
            current = Round(number, text)
            rounds.append(current)
            try:
                current.critique = await self.pool.critique(text, evidence, rubric, instruction=instruction)
                if evidence:
                    current.verification = await self.pool.verify(text, evidence)
            except TeacherError as error:
                current.failure = str(error)
                failed = RefineResult("failed", text, _last_score(rounds), rounds, failure=str(error))
                failed.budget_spent = isinstance(error, BudgetExceededError)
                return failed
            contradicted = bool(current.verification and current.verification.contradicted)
            if current.critique.score >= self.threshold and not contradicted:
                return RefineResult("accepted", text, current.critique.score, rounds)
            if number == limit:
                break
            try:
                current.rewrite = await self.pool.rewrite(
                    text, current.critique, current.verification, evidence, instruction=instruction
                )
            except TeacherError as error:
                current.failure = f"rewrite failed, the text is kept: {error}"
                failed = RefineResult("failed", text, current.critique.score, rounds, failure=current.failure)
                failed.budget_spent = isinstance(error, BudgetExceededError)
                return failed
            text = current.rewrite.text
        last = rounds[-1]
        return RefineResult("rejected", last.text, last.score, rounds)

    def refine_sync(
        self,
        draft: str,
        evidence: Sequence[EvidenceItem] = (),
        *,
        instruction: str = "",
        rubric: Rubric | None = None,
        max_rounds: int | None = None,
    ) -> RefineResult:
        """:meth:`refine` from synchronous code; the pool's connections are closed when it returns.

        They are closed because they belong to the event loop that ends with this call; the next call
        (or an ``await refine``) opens new ones.
        """

        async def refine_and_close() -> RefineResult:
            try:
                return await self.refine(draft, evidence, instruction=instruction, rubric=rubric, max_rounds=max_rounds)
            finally:
                await self.pool.aclose()

        return run_sync(refine_and_close())


def _last_score(rounds: list[Round]) -> float | None:
    scored = [r.score for r in rounds if r.score is not None]
    return scored[-1] if scored else None
