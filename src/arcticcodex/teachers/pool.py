"""A pool of teachers: roles, fallback order, ensemble critics, shared accounting.

Each role (critic, verifier, rewriter) has an ordered list of teachers; a call goes to the first,
and when it fails (retries spent, circuit open, refused, unusable reply) to the next.  Only when all
of them fail does the call fail — with every reason — and a failure is never turned into a score.
A spent budget stops everything at once.  The critic may be an ensemble: several critics judge the
same text concurrently and their scores are aggregated (mean, min, or majority — the median, which
a majority of critics are at or above), with the spread recorded as disagreement.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from ..errors import BudgetExceededError, TeacherError, TeacherUnavailableError
from .ledger import Ledger
from .results import ROLES, Critique, EvidenceItem, Rewrite, Role, Rubric, Verification

T = TypeVar("T")


class Teacher(Protocol):
    name: str
    model: str

    async def critique(
        self, text: str, evidence: Sequence[EvidenceItem], rubric: Rubric, *, instruction: str = ""
    ) -> Critique: ...

    async def verify(self, text: str, evidence: Sequence[EvidenceItem]) -> Verification: ...

    async def rewrite(
        self,
        text: str,
        critique: Critique,
        verification: Verification | None,
        evidence: Sequence[EvidenceItem],
        *,
        instruction: str = "",
    ) -> Rewrite: ...

    async def aclose(self) -> None: ...


class TeacherPool:
    """Teachers by role (see the module docstring).  ``roles`` maps a role to teacher names in order."""

    def __init__(
        self,
        teachers: Sequence[Teacher],
        *,
        roles: dict[Role, list[str]] | None = None,
        critics: Sequence[str] = (),
        aggregate: str = "mean",
        ledger: Ledger | None = None,
    ) -> None:
        if not teachers:
            raise ValueError("a pool needs at least one teacher")
        self.teachers = {teacher.name: teacher for teacher in teachers}
        self.roles: dict[Role, list[str]] = roles or {role: list(self.teachers) for role in ROLES}
        for role, names in self.roles.items():
            unknown = [name for name in names if name not in self.teachers]
            if unknown or not names:
                raise ValueError(f"role {role} names unknown or no teachers: {unknown or names}")
        self.critics = list(critics)
        if aggregate not in ("mean", "min", "majority"):
            raise ValueError("aggregate must be mean, min or majority")
        self.aggregate = aggregate
        self.ledger = ledger or Ledger()

    async def _first_that_works(self, role: Role, call: Callable[[Teacher], Awaitable[T]]) -> T:
        reasons = []
        for name in self.roles[role]:
            try:
                return await call(self.teachers[name])
            except BudgetExceededError:
                raise
            except TeacherError as error:
                reasons.append(str(error))
        raise TeacherUnavailableError(
            f"no {role} could answer: " + " | ".join(reasons), teacher=",".join(self.roles[role])
        )

    async def critique(
        self, text: str, evidence: Sequence[EvidenceItem], rubric: Rubric, *, instruction: str = ""
    ) -> Critique:
        if len(self.critics) < 2:
            return await self._first_that_works(
                "critic", lambda teacher: teacher.critique(text, evidence, rubric, instruction=instruction)
            )
        outcomes = await asyncio.gather(
            *(self.teachers[name].critique(text, evidence, rubric, instruction=instruction) for name in self.critics),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BudgetExceededError):
                raise outcome
            if isinstance(outcome, BaseException) and not isinstance(outcome, TeacherError):
                raise outcome
        failed = [
            f"{name}: {outcome}"
            for name, outcome in zip(self.critics, outcomes, strict=True)
            if isinstance(outcome, TeacherError)
        ]
        if failed:
            # the ensemble is the judgement asked for: with a member missing (say the strict one of a
            # "min" pair) the rest would decide alone, so a missing member fails the critique
            raise TeacherUnavailableError(
                "the critic ensemble is incomplete: " + " | ".join(failed), teacher=",".join(self.critics)
            )
        return self._combine([outcome for outcome in outcomes if isinstance(outcome, Critique)])

    def _combine(self, members: list[Critique]) -> Critique:
        scores = [member.score for member in members]
        aggregates: dict[str, Callable[[list[float]], float]] = {
            "mean": statistics.fmean,
            "min": min,
            "majority": statistics.median,
        }
        combined = aggregates[self.aggregate](scores)
        names = {name for member in members for name in member.criteria}
        criteria = {
            name: statistics.fmean(m.criteria[name] for m in members if name in m.criteria) for name in sorted(names)
        }
        return Critique(
            score=combined,
            criteria=criteria,
            strengths=[s for m in members for s in m.strengths],
            weaknesses=[w for m in members for w in m.weaknesses],
            suggestions=[s for m in members for s in m.suggestions],
            call=None,  # the members carry the calls; the aggregate is not a call of its own
            members=members,
            disagreement=round(max(scores) - min(scores), 4),
        )

    async def verify(self, text: str, evidence: Sequence[EvidenceItem]) -> Verification:
        return await self._first_that_works("verifier", lambda teacher: teacher.verify(text, evidence))

    async def rewrite(
        self,
        text: str,
        critique: Critique,
        verification: Verification | None,
        evidence: Sequence[EvidenceItem],
        *,
        instruction: str = "",
    ) -> Rewrite:
        return await self._first_that_works(
            "rewriter",
            lambda teacher: teacher.rewrite(text, critique, verification, evidence, instruction=instruction),
        )

    async def aclose(self) -> None:
        for teacher in self.teachers.values():
            await teacher.aclose()
