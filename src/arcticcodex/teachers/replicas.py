"""One teacher served by several identical endpoints (e.g. a vLLM model on a pool of rented GPUs).

Each call goes to the replica with the fewest calls in flight (ties: the one used least recently),
so a slow or busy GPU gets less work without any configuration; when a replica fails, the call is
tried on the next one before the failure is reported.  A budget that is spent stops at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from ..errors import BudgetExceededError, TeacherError, TeacherUnavailableError
from .openai_compat import OpenAICompatibleTeacher
from .results import Comparison, Critique, EvidenceItem, Questions, Rewrite, Rubric, Verification

T = TypeVar("T")


class ReplicatedTeacher:
    """A teacher (and student: ``draft``, ``questions``) that spreads its calls over ``replicas``."""

    def __init__(self, name: str, replicas: Sequence[OpenAICompatibleTeacher]) -> None:
        if not replicas:
            raise ValueError("a replicated teacher needs at least one replica")
        self.name = name
        self.model = replicas[0].model
        self.config = replicas[0].config  # the shared settings (each replica differs only in its base_url)
        self.replicas = list(replicas)
        self.in_flight = [0] * len(self.replicas)
        self.calls = [0] * len(self.replicas)  # per replica, for reports and tests
        self._last_used = [0] * len(self.replicas)
        self._ticks = itertools.count(1)

    def _order(self) -> list[int]:
        return sorted(range(len(self.replicas)), key=lambda i: (self.in_flight[i], self._last_used[i]))

    async def _call(self, call: Callable[[OpenAICompatibleTeacher], Awaitable[T]]) -> T:
        reasons = []
        for index in self._order():
            self.in_flight[index] += 1
            self.calls[index] += 1
            self._last_used[index] = next(self._ticks)
            try:
                return await call(self.replicas[index])
            except BudgetExceededError:
                raise
            except TeacherError as error:
                reasons.append(str(error))
            finally:
                self.in_flight[index] -= 1
        raise TeacherUnavailableError(f"every replica of {self.name} failed: " + " | ".join(reasons), teacher=self.name)

    async def critique(
        self, text: str, evidence: Sequence[EvidenceItem], rubric: Rubric, *, instruction: str = ""
    ) -> Critique:
        return await self._call(lambda t: t.critique(text, evidence, rubric, instruction=instruction))

    async def verify(self, text: str, evidence: Sequence[EvidenceItem]) -> Verification:
        return await self._call(lambda t: t.verify(text, evidence))

    async def rewrite(
        self,
        text: str,
        critique: Critique,
        verification: Verification | None,
        evidence: Sequence[EvidenceItem],
        *,
        instruction: str = "",
    ) -> Rewrite:
        return await self._call(lambda t: t.rewrite(text, critique, verification, evidence, instruction=instruction))

    async def draft(self, instruction: str, evidence: Sequence[EvidenceItem]) -> Rewrite:
        return await self._call(lambda t: t.draft(instruction, evidence))

    async def questions(self, passage: str, *, source: str = "", count: int = 3) -> Questions:
        return await self._call(lambda t: t.questions(passage, source=source, count=count))

    async def compare(self, question: str, first: str, second: str, evidence: Sequence[EvidenceItem]) -> Comparison:
        return await self._call(lambda t: t.compare(question, first, second, evidence))

    async def ping(self) -> list[str]:
        """The models every replica serves (each must answer)."""
        served: list[str] = []
        for replica in self.replicas:
            served.extend(model for model in await replica.ping() if model not in served)
        return served

    async def aclose(self) -> None:
        for replica in self.replicas:
            await replica.aclose()


ApiTeacher = OpenAICompatibleTeacher | ReplicatedTeacher  # a model endpoint, or replicas of one: it can draft
