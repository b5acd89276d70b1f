"""A run's teacher calls sent as provider batches (``distill --batch``): queued, then submitted a round at a time.

Why a queue under ``complete``: a Batch API costs less (half, at OpenAI) but answers late, so calls
must go up together.  In batch mode a run works on all its pending tasks at once; each teacher call
joins a queue instead of being sent, and when every task still working is waiting on a call, the
queue goes up as one batch per teacher.  So the drafts of all tasks are one batch, their critiques
the next, then the verifications, the rewrites … — a round of the refine loop each.

The queue counts workers, not calls: :meth:`BatchQueue.expect` announces them and
:meth:`BatchQueue.working` wraps each (a worker works on one task at a time); a worker is "waiting"
while any call its task made is unanswered.  A result is marked answered (and its task counted
as working again) in the same step that delivers it, so a task woken by one batch never sends the
next batch off before the others of its round have asked their question.

Resumable: a line's custom id is its request-cache key, and every batch is journaled
(:mod:`.batch_journal`) from the moment its file is uploaded.  A resumed run that asks a question
already in one of its batches attaches to that batch (polling it, or reading its results again)
instead of submitting the line again.  Results are delivered to the teacher, which caches the usable
ones as it caches any reply, so nothing is paid twice.

The budget counts what is submitted: a batch's estimated cost (the prompt's length at about four
characters a token, and the completion at the average seen so far, else a quarter of ``max_tokens``)
is reserved in the ledger when it goes up and released when its results are in, when the real cost
is recorded.  Lines the budget cannot hold fail with :class:`BudgetExceededError` and the run stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import openai
import orjson

from ..errors import BudgetExceededError, TeacherError, TeacherRejectedError, TeacherUnavailableError
from ..retry import RetryPolicy
from .batch_api import FINISHED, BatchEndpoint, LineResult, line_error
from .batch_journal import BatchJournal, BatchRow
from .entries import TeacherConfig
from .ledger import Ledger
from .results import Usage

__all__ = ["BatchQueue", "BatchingTeacher"]

_TASK: contextvars.ContextVar[int | None] = contextvars.ContextVar("arcticcodex_batch_task", default=None)


class BatchingTeacher(Protocol):
    """What the queue needs of a teacher (an :class:`~.openai_compat.OpenAICompatibleTeacher`)."""

    name: str
    model: str
    config: TeacherConfig
    ledger: Ledger
    retry: RetryPolicy

    def batch_client(self) -> openai.AsyncOpenAI: ...


@dataclass
class _Waiting:
    """A call asked and not answered yet: who asks (task tokens), and the answer to come."""

    future: asyncio.Future[LineResult]
    teacher: BatchingTeacher
    body: dict[str, Any]
    tasks: list[int] = field(default_factory=list)
    batch_id: str = ""


class BatchQueue:
    """The run's batching layer (see the module docstring); ``poll_seconds`` between status checks."""

    def __init__(self, journal: BatchJournal, *, poll_seconds: float = 30.0, seed: int | None = None) -> None:
        self.journal = journal
        self.poll_seconds = poll_seconds
        self.submitted = 0  # batches this process submitted (reports and tests)
        self._rng = random.Random(seed)  # noqa: S311 - jitter, not cryptography
        self._tokens = itertools.count(1)
        self._working = 0
        self._waiting_tasks: dict[int, int] = {}  # task token -> calls it waits on
        self._calls: dict[str, _Waiting] = {}  # request key -> the call (one per key, shared by its askers)
        self._queued: dict[str, list[str]] = {}  # teacher name -> keys not yet submitted, in order
        self._answers: dict[str, tuple[LineResult, str]] = {}  # read from a batch before anyone asked
        self._taken: dict[str, BatchRow] = {}  # key -> the journaled batch that answers it
        self._followed: dict[str, asyncio.Task[None]] = {}  # input file id -> the task following that batch
        for row in journal.rows():
            if row.status != "failed":
                for key in row.custom_ids:
                    if key not in row.failed_ids:
                        self._taken[key] = row

    # -- tasks ------------------------------------------------------------------------------------

    def expect(self, workers: int) -> None:
        """``workers`` are about to start, each inside :meth:`working`: none has asked yet, so nothing
        is submitted until each of them asks or ends (a worker that has not run yet counts as working)."""
        self._working += workers

    @contextlib.asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        """Wrap one worker (announced by :meth:`expect`): it works on one task at a time, and the queue
        waits for it to ask (or end) before submitting."""
        token = next(self._tokens)
        reset = _TASK.set(token)
        try:
            yield
        finally:
            self._working -= 1
            self._waiting_tasks.pop(token, None)
            _TASK.reset(reset)
            self._maybe_submit()

    async def ask(self, teacher: BatchingTeacher, key: str, body: dict[str, Any]) -> tuple[str, Usage, str]:
        """The reply to ``body`` (content, usage, batch id) once a batch answered it; raises TeacherError."""
        early = self._answers.pop(key, None)
        if early is not None:
            return self._reply(teacher, *early)
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = _Waiting(asyncio.get_running_loop().create_future(), teacher, body)
            row = self._taken.get(key)
            if row is not None and row.teacher == teacher.name:
                self._follow(teacher, row)
            else:
                self._queued.setdefault(teacher.name, []).append(key)
        token = _TASK.get()
        if token is not None:
            call.tasks.append(token)
            self._waiting_tasks[token] = self._waiting_tasks.get(token, 0) + 1
        self._maybe_submit()
        result = await asyncio.shield(call.future)
        return self._reply(teacher, result, call.batch_id)

    def _reply(self, teacher: BatchingTeacher, result: LineResult, batch_id: str) -> tuple[str, Usage, str]:
        if result.content is None:
            raise line_error(result, teacher=teacher.name, model=teacher.model, batch_id=batch_id)
        return result.content, result.usage, batch_id

    def _answer(self, key: str, result: LineResult | BaseException, batch_id: str) -> None:
        """Deliver one line's result; its askers count as working again from this very step."""
        call = self._calls.pop(key, None)
        if call is None:
            if isinstance(result, LineResult):
                self._answers[key] = (result, batch_id)
            return
        for token in call.tasks:
            left = self._waiting_tasks.get(token, 0) - 1
            if left > 0:
                self._waiting_tasks[token] = left
            else:
                self._waiting_tasks.pop(token, None)
        call.batch_id = batch_id
        if not call.future.done():
            if isinstance(result, BaseException):
                call.future.set_exception(result)
            else:
                call.future.set_result(result)

    # -- submitting -------------------------------------------------------------------------------

    def _maybe_submit(self) -> None:
        """Submit the queue once every task still working waits on a call (nothing more will be asked)."""
        if not any(self._queued.values()) or len(self._waiting_tasks) < self._working:
            return
        queued, self._queued = self._queued, {}
        for keys in queued.values():
            if keys:
                teacher = self._calls[keys[0]].teacher
                self._start(self._submit(teacher, keys), name=f"batch {teacher.name}")

    def _start(self, work: Any, *, name: str, file_id: str | None = None) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._followed[file_id or f"{name}-{id(task)}"] = task

    async def _submit(self, teacher: BatchingTeacher, keys: list[str]) -> None:
        fitting, estimate = self._within_budget(teacher, keys)
        for key in keys[len(fitting) :]:
            self._answer(key, self._budget_error(teacher), "")
        if not fitting:
            return
        endpoint = self._endpoint(teacher)
        file_id: str | None = None
        teacher.ledger.reserve(estimate)
        try:
            file_id = await endpoint.upload_lines({key: self._calls[key].body for key in fitting})
            self.journal.uploaded(
                file_id,
                teacher=teacher.name,
                base_url=teacher.config.base_url,
                custom_ids=fitting,
                estimated_usd=estimate,
            )
            batch_id = await self._create(endpoint, file_id)
            self.journal.submitted(file_id, batch_id)
            self.submitted += 1
        except BaseException as error:
            teacher.ledger.release(estimate)
            failure = error if isinstance(error, TeacherError) else _unexpected(teacher, error)
            for key in fitting:
                self._answer(key, failure, "")
            if not isinstance(error, Exception):  # stopped (the run ends): a resume finds the batch, if any
                raise
            if file_id is not None and isinstance(error, TeacherRejectedError):  # refused: free to go up again
                self.journal.failed(file_id)
            # else left "uploaded": whether the provider made the batch is unknown, and a resume asks it
            return
        await self._results(teacher, endpoint, file_id, batch_id, fitting, estimate)

    async def _create(self, endpoint: BatchEndpoint, file_id: str) -> str:
        """Create the batch; when the answer was lost (a timeout, a dropped connection), the provider may
        have made it all the same, so its list is asked before the lines are called unsent."""
        try:
            return await endpoint.create_batch(file_id, self.journal.run_id)
        except TeacherUnavailableError:
            found = await endpoint.find_batch(file_id)
            if found is None:
                raise
            return found

    def _within_budget(self, teacher: BatchingTeacher, keys: list[str]) -> tuple[list[str], float]:
        """The leading keys whose estimated cost the budget can hold (at least one while any is left)."""
        room = teacher.ledger.room_usd()
        stats = teacher.ledger.stats.get(teacher.name)
        paid = stats.calls - stats.cached_calls if stats else 0
        completion = stats.completion_tokens / paid if stats and paid else teacher.config.max_tokens / 4
        fitting: list[str] = []
        total = 0.0
        for key in keys:
            prompt = len(orjson.dumps(self._calls[key].body.get("messages", []))) // 4
            cost = teacher.config.batch_cost(prompt, 0, round(completion))
            if room is not None and total + cost > room and (fitting or room <= 0):
                break
            fitting.append(key)
            total += cost
        return fitting, total

    @staticmethod
    def _budget_error(teacher: BatchingTeacher) -> BudgetExceededError:
        ledger = teacher.ledger
        return BudgetExceededError(
            f"the budget of ${ledger.budget_usd or 0:.2f} cannot hold another batch line (${ledger.spent_usd:.4f} "
            f"spent, ${ledger.reserved_usd:.4f} held for batches in flight); raise budget_usd to continue",
            teacher=teacher.name,
            parameters=["budget_usd"],
        )

    # -- following a batch ------------------------------------------------------------------------

    def _follow(self, teacher: BatchingTeacher, row: BatchRow) -> None:
        """Attach to a batch journaled by an earlier process (once per batch)."""
        if row.input_file_id not in self._followed:
            self._start(self._attach(teacher, row), name=f"batch {row.batch_id}", file_id=row.input_file_id)

    async def _attach(self, teacher: BatchingTeacher, row: BatchRow) -> None:
        endpoint = self._endpoint(teacher)
        keys = [key for key in row.custom_ids if key not in row.failed_ids]
        try:
            batch_id = row.batch_id or await endpoint.find_batch(row.input_file_id)
        except TeacherError as error:
            for key in keys:
                self._answer(key, error, "")
            return
        if batch_id is None:  # killed before the batch was created: its lines go up again
            self.journal.failed(row.input_file_id)
            self._release_lines(keys, row)
            return
        if row.batch_id is None:
            self.journal.submitted(row.input_file_id, batch_id)
        estimate = row.estimated_usd if row.status != "completed" else 0.0
        teacher.ledger.reserve(estimate)
        await self._results(teacher, endpoint, row.input_file_id, batch_id, keys, estimate)

    def _release_lines(self, keys: list[str], row: BatchRow) -> None:
        """Lines of a batch that never was: forget it, and queue again those someone waits on."""
        for key in keys:
            if self._taken.get(key) is row:
                del self._taken[key]
            call = self._calls.get(key)
            if call is not None:
                self._queued.setdefault(call.teacher.name, []).append(key)
        self._maybe_submit()

    async def _results(
        self,
        teacher: BatchingTeacher,
        endpoint: BatchEndpoint,
        file_id: str,
        batch_id: str,
        keys: list[str],
        estimate: float,
    ) -> None:
        """Poll until the batch ends, then deliver each line's result (the reservation released first)."""
        try:
            while (batch := await endpoint.retrieve(batch_id)).status not in FINISHED:
                await asyncio.sleep(self.poll_seconds)
            if batch.status == "completed":
                results = await endpoint.read_results(batch)
            else:
                results = {}
        except BaseException as error:
            teacher.ledger.release(estimate)
            failure = error if isinstance(error, TeacherError) else _unexpected(teacher, error)
            for key in keys:
                self._answer(key, failure, batch_id)
            if not isinstance(error, Exception):
                raise
            return
        teacher.ledger.release(estimate)
        if batch.status != "completed":
            self.journal.failed(file_id)
            why = "; ".join(e.message or e.code or "" for e in (batch.errors.data or [])) if batch.errors else ""
            failure = TeacherUnavailableError(
                f"teacher {teacher.name} ({teacher.model}): batch {batch_id} ended {batch.status}"
                + (f" ({why})" if why else "")
                + "; its lines are submitted again when the run is resumed",
                teacher=teacher.name,
            )
            for key in keys:
                self._answer(key, failure, batch_id)
            return
        missing = LineResult(status=0, error="the batch's results hold no line for this request")
        self.journal.completed(file_id, [key for key in keys if not results.get(key, missing).ok])
        for key in keys:
            self._taken.pop(key, None)  # answered now: asked again, a line goes up afresh
            self._answer(key, results.get(key, missing), batch_id)
        self._maybe_submit()

    def _endpoint(self, teacher: BatchingTeacher) -> BatchEndpoint:
        return BatchEndpoint(teacher.batch_client(), teacher=teacher.name, retry=teacher.retry, rng=self._rng)

    async def aclose(self) -> None:
        """Stop following batches (they go on at the provider; a resumed run attaches to them)."""
        tasks = list(self._followed.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._followed.clear()


def _unexpected(teacher: BatchingTeacher, error: BaseException) -> TeacherUnavailableError:
    return TeacherUnavailableError(
        f"teacher {teacher.name}: following its batch failed ({type(error).__name__})", teacher=teacher.name
    )
