"""A distillation run: tasks → draft → teacher loop → journal → signed dataset.

::

    prepare  everything the run needs is checked, the drafter settled (preflight.py)
    create   the run and all its tasks, in one transaction (journal.py)
    execute  N workers take pending tasks in order: evidence (given, or retrieved from the vault),
             a draft (the offline extractive drafter, a student model, or a conversation's answer),
             the draft → critique → verify → rewrite loop; each outcome (a pair: pairs.py) is journaled as it ends
    publish  the journal's pairs, in task order, become a signed dataset folder (publish.py)

A spent budget stops the run (the tasks left stay pending: ``--resume RUN --budget-usd X`` goes on);
a person's stop request (:mod:`.stop`, from the Studio or any process) cancels the teacher calls in
flight and leaves the run ``stopped``, nothing published, resumable the same way;
a teacher outage fails a task as *retryable*, and a resume tries it again; a task with no evidence
(nothing retrieved, or evidence without a sentence or table row) fails for good, with the reason.
Kill the process at any instant and ``--resume`` loses nothing and repeats nothing that was paid
for: the teachers' request cache answers the calls that were made before the kill.

About 400 lines on purpose: :class:`Distiller` is the run's one sequence — prepare, create, execute
(workers, budget, batch mode), summarise — and its pieces already live in the modules named above.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._sync import run_sync
from ..agent.drafting import ExtractiveDrafter
from ..errors import ArcticCodexError, BudgetExceededError, ConfigError, TeacherError
from ..refine import TeacherRouter
from ..teachers.batch_journal import BatchJournal
from ..teachers.batch_queue import BatchQueue
from ..teachers.cache import RequestCache
from ..teachers.entries import TeacherConfig, load_teachers
from ..teachers.factory import build_pool, build_teacher
from ..teachers.ledger import Ledger
from ..teachers.openai_compat import OpenAICompatibleTeacher
from ..teachers.pool import TeacherPool
from ..teachers.replicas import ApiTeacher, ReplicatedTeacher
from ..teachers.results import EvidenceItem
from ..vault.embeddings import EmbeddingBackend
from ..vault.search import Searcher
from ..vault.store import Vault
from ..workspace import Workspace
from .journal import RunJournal, RunRecord, RunStatus, TaskOutcome
from .pairs import pair_from_result
from .preflight import check_api_teacher, prepare_run
from .publish import LivePublisher, publish_dataset, snapshot_base
from .ray_engine import ShardProgress, work_on_ray
from .settings import RunSettings
from .sourcing import Source, source_tasks
from .stop import StopRequests, stopped_note
from .summary import RunSummary, empty_hint
from .tasks import Task, evidence_from_json, retrieval_query, teacher_instruction

__all__ = ["Distiller", "Progress", "RunSummary", "StartedRun"]

Progress = Callable[[dict[str, int], float], None]
"""Called after each task with the counts so far (pending/accepted/rejected/failed) and money spent."""


@dataclass(frozen=True, slots=True)
class StartedRun:
    """A run just created by :meth:`Distiller.start`, and a line about what making its tasks cost (or None)."""

    record: RunRecord
    report: str | None


class Distiller:
    """Creates, executes and resumes runs in one workspace.

    ``local_embedder`` is the model the offline judge, retrieval and near-duplicate removal use
    (default: the vault's configured model); ``environ`` is where API keys are read from; ``workers``
    processes sign a large dataset (see :meth:`DatasetWriter.add_many` for the one caveat).
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        local_embedder: EmbeddingBackend | None = None,
        environ: dict[str, str] | None = None,
        workers: int = 1,
        extra_teachers: Sequence[TeacherConfig] = (),
        vault_workspace: Workspace | None = None,
        ray_address: str | None = None,
        on_shards: ShardProgress | None = None,
    ) -> None:
        """``extra_teachers`` are models the caller serves for this run only — a student drafting in a
        train → distill → train loop — usable as the drafter by name beside the workspace's configured
        teachers (not in the pool: the workspace's teachers judge).  ``vault_workspace`` is where the
        vault is when ``workspace`` is a shard's (:mod:`.shards`); ``ray_address`` and ``on_shards`` are
        for runs whose engine is Ray (:mod:`.ray_engine`): the cluster to join, and per-shard progress."""
        self.workspace = workspace
        self.vault_workspace = vault_workspace or workspace
        self.ray_address = ray_address
        self.on_shards = on_shards
        self.share: Callable[[TeacherPool, ApiTeacher | None], None] | None = None
        """A Ray shard's hook (:mod:`.ray_actors`): the run's endpoint governors and budget, attached to
        each pool :meth:`work` builds."""
        self.workers = workers
        self.extra_teachers = tuple(extra_teachers)
        self.local_embedder = local_embedder
        self.environ = environ
        self.journal = RunJournal(workspace)
        self._vault: Vault | None = None
        self._searcher: Searcher | None = None

    def close(self) -> None:
        self.journal.close()
        if self._vault is not None:
            self._vault.close()

    def __enter__(self) -> Distiller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            self._vault = Vault(self.vault_workspace, embedder=self.local_embedder)
        return self._vault

    def prepare(
        self, settings: RunSettings, out: str | Path, *, teachers_origin: str = "teachers"
    ) -> tuple[RunSettings, Path]:
        """Check everything the run needs before anything is created or paid (see :mod:`.preflight`);
        return the settings with the drafter settled, and the resolved ``--out`` folder."""
        return prepare_run(self, settings, out, teachers_origin=teachers_origin)

    def create(
        self,
        tasks: Iterable[Task],
        settings: RunSettings,
        out: str | Path,
        *,
        prepared: bool = False,
        spent_usd: float = 0.0,
    ) -> RunRecord:
        """Record a new run and its tasks (nothing is drafted yet).

        The run is checked first (:meth:`prepare`; pass ``prepared=True`` with the settings it
        returned to skip checking again); ``spent_usd`` is what was paid to make the tasks (questions
        a teacher wrote), the run's first spend.
        """
        target = Path(out).resolve()
        if not prepared:
            settings, target = self.prepare(settings, out)
        record = self.journal.create_run(settings.to_json(), str(target), tasks, spent_usd=spent_usd)
        if settings.append:
            snapshot_base(target, self.run_folder(record.id))
        return record

    def run_folder(self, run_id: str) -> Path:
        return self.workspace.runs_dir / run_id

    async def distill(
        self, source: Source, settings: RunSettings, out: str | Path, *, progress: Progress | None = None
    ) -> RunSummary:
        """The whole job, as ``arcticcodex distill`` does it: check, make the tasks, create the run, execute it.

        Nothing is created or paid for when a check fails; a run that stops early (a spent budget, a
        crash) is finished by :meth:`execute` with the summary's ``run_id``.
        """
        started = await self.start(source, settings, out)
        return await self.execute(started.record.id, progress=progress)

    async def start(
        self, source: Source, settings: RunSettings, out: str | Path, *, teachers_origin: str = "teachers"
    ) -> StartedRun:
        """Check the run, make its tasks from ``source`` and create it — without executing it.

        What ``arcticcodex distill`` and the Studio's "Start a run" form both call; nothing is created
        (and no question is paid for) when a check fails, and a prompts file with a bad record is
        refused with its file and line before the run exists (its tasks are created in one transaction).
        """
        settings, target = self.prepare(settings, out, teachers_origin=teachers_origin)
        if source.kind == "from_vault" and source.questions_by != "offline":
            check_api_teacher(self, source.questions_by, parameter="questions_by")
        sourced = await source_tasks(self, source, budget_usd=settings.budget_usd)
        record = self.create(sourced.tasks, settings, target, prepared=True, spent_usd=sourced.spent_usd)
        return StartedRun(record, sourced.report)

    def distill_sync(
        self, source: Source, settings: RunSettings, out: str | Path, *, progress: Progress | None = None
    ) -> RunSummary:
        """:meth:`distill` from synchronous code."""
        return run_sync(self.distill(source, settings, out, progress=progress))

    def execute_sync(
        self, run_id: str, *, progress: Progress | None = None, budget_usd: float | None = None
    ) -> RunSummary:
        """:meth:`execute` from synchronous code."""
        return run_sync(self.execute(run_id, progress=progress, budget_usd=budget_usd))

    async def execute(
        self, run_id: str, *, progress: Progress | None = None, budget_usd: float | None = None
    ) -> RunSummary:
        """Work through the run's pending tasks, then write its dataset; safe to call again after a crash.

        A stop request (:mod:`.stop`) ends the work early: the run is then ``stopped``, nothing published."""
        started = time.perf_counter()
        record = self.journal.run(run_id)
        stop_requests = StopRequests(self.workspace)
        stop_requests.clear(run_id)  # a request left from before this start or resume is not this one's
        settings = RunSettings.from_json(record.settings)
        if budget_usd is not None:  # a resume may raise (or set) the budget
            settings = RunSettings.from_json({**settings.to_json(), "budget_usd": budget_usd})
            self.journal.update_settings(run_id, settings.to_json())
        if record.status != "complete":
            self.journal.reopen_retryable(run_id)
            self.journal.set_status(run_id, "running")
            live: LivePublisher | None = None
            if settings.engine == "ray":
                note = await work_on_ray(self, record, settings, address=self.ray_address, on_shards=self.on_shards)
            else:
                if not settings.human_review:  # publishing follows the workers (a reviewed run waits for people)
                    live = LivePublisher(
                        self.workspace,
                        record,
                        settings,
                        self.run_folder(run_id),
                        embedder=self.vault.embedder,
                        workers=self.workers,
                    )
                try:
                    note = await self._work(record, settings, progress)
                except BaseException:
                    if live is not None:
                        live.abort()
                    raise
                if stop_requests.requested(run_id):  # stopped by a person: nothing is published
                    if live is not None:
                        live.abort()
                    stop_requests.clear(run_id)
                    pending = self.journal.counts(run_id)["pending"]
                    self.journal.set_status(run_id, "stopped", stopped_note(run_id, pending))
                    return self.summary(run_id, seconds=time.perf_counter() - started)
            waiting = self.journal.awaiting_review_count(run_id) if settings.human_review else 0
            if waiting:  # nothing is published while a person still has pairs to decide on
                note = note or (
                    f"{waiting} accepted pair(s) await review: `arcticcodex review list --kind pair`, then "
                    f"`arcticcodex distill --resume {run_id}` publishes the approved ones"
                )
                self.journal.set_status(run_id, "stopped", note)
                return self.summary(run_id, seconds=time.perf_counter() - started)
            if live is not None:
                live.finish()
                manifest = await live.result()
            else:
                manifest = await asyncio.to_thread(self._publish, record, settings, self.vault.embedder)
            retryable = self.journal.retryable_failures(run_id)
            if note is None and retryable:
                note = f"{retryable} task(s) failed because a teacher failed; resume the run to try them again"
            status: RunStatus = "stopped" if note or self.journal.counts(run_id)["pending"] else "complete"
            self.journal.set_status(run_id, status, note, written=manifest)
        return self.summary(run_id, seconds=time.perf_counter() - started)

    def _publish(self, record: RunRecord, settings: RunSettings, embedder: EmbeddingBackend) -> dict[str, Any]:
        """Publish a run whose work is done, in a thread of its own (off the event loop), with its own journal."""
        with RunJournal(self.workspace) as journal:
            return publish_dataset(
                journal,
                record,
                settings,
                self.workspace,
                self.run_folder(record.id),
                embedder=embedder,
                workers=self.workers,
            )

    def summary(self, run_id: str, *, seconds: float = 0.0) -> RunSummary:
        record = self.journal.run(run_id)
        counts = self.journal.counts(run_id)
        written = record.written or {}
        settings = RunSettings.from_json(record.settings)
        summary = RunSummary(
            run_id=run_id,
            status=record.status,
            out=record.out,
            accepted=counts["accepted"],
            rejected=counts["rejected"],
            failed=counts["failed"],
            pending=counts["pending"],
            cost_usd=record.spent_usd,
            written=int(written.get("record_count", 0)) + int(written.get("validation_count", 0)),
            validation=int(written.get("validation_count", 0)),
            duplicates_removed=int(written.get("duplicates_removed", 0)),
            near_duplicates_removed=int(written.get("near_duplicates_removed", 0)),
            note=record.note,
            failures=self.journal.failures(run_id),
            seconds=seconds,
            awaiting_review=self.journal.awaiting_review_count(run_id) if settings.human_review else 0,
            rejected_in_review=sum(status == "rejected" for status, _ in self.journal.reviews(run_id).values()),
            sensitive_data=dict(written.get("sensitive_data") or {}),
        )
        if summary.written == 0 and record.status != "running":
            reviews = self.journal.reviews(run_id) if settings.human_review else {}
            summary.hint = empty_hint(
                summary,
                threshold=settings.threshold,
                best_rejected=max((float(pair["quality"]) for _, pair in self._rejected(run_id)), default=None),
                human_rejected=sum(status == "rejected" for status, _ in reviews.values()),
            )
        return summary

    def _rejected(self, run_id: str) -> Iterator[tuple[int, dict[str, Any]]]:
        return ((position, pair) for position, pair in self.journal.finished_pairs(run_id) if not pair["accepted"])

    # -- the work --------------------------------------------------------------------------------

    async def work(self, run_id: str) -> str | None:
        """Work through the run's pending tasks (those a teacher outage failed first put back), without
        publishing: a shard's part of a run (:mod:`.ray_engine`).  Returns why it stopped early, or None."""
        record = self.journal.run(run_id)
        self.journal.reopen_retryable(run_id)
        return await self._work(record, RunSettings.from_json(record.settings), None)

    async def _work(self, record: RunRecord, settings: RunSettings, progress: Progress | None) -> str | None:
        """Run the workers; return why the run stopped early (a spent budget), or None."""
        budget = None if settings.budget_usd is None else max(0.0, settings.budget_usd - record.spent_usd)
        if budget is not None and budget <= 0 and self.journal.counts(record.id)["pending"]:
            return _budget_spent(settings, record)
        pool = build_pool(
            self.workspace,
            budget_usd=budget,
            only=list(settings.teachers) or None,
            environ=self.environ,
            local_embedder=self.local_embedder,
        )
        router = TeacherRouter(pool=pool, max_rounds=settings.max_rounds, threshold=settings.threshold)
        student = self._student(settings, pool)
        if self.share is not None:  # a shard of a Ray run: endpoints and budget shared with the other shards
            self.share(pool, student)
        pending = self.journal.pending(record.id)
        counts = self.journal.counts(record.id)
        # a cached reply's cost is written with it (see RunJournal.charger); the rest with each task
        pool.ledger.settle = self.journal.charger(record.id)
        spent_mark = pool.ledger.unsettled_usd
        stop: list[str] = []
        workers = settings.concurrency
        batches = self._batch_queue(record, settings, pool, student)
        if batches is not None:  # every pending task at once, so each round of them goes up as one batch
            workers = max(workers, counts["pending"])
            batches.expect(workers)

        async def worker() -> None:
            async with batches.working() if batches is not None else contextlib.nullcontext():
                await work()

        async def work() -> None:
            nonlocal spent_mark
            while not stop:
                try:
                    position, task = next(pending)
                except StopIteration:
                    return
                try:
                    outcome = await self._do_task(task, settings, router, student)
                except BudgetExceededError:
                    stop.append(_budget_spent(settings, record))
                    return
                spent, unsettled = pool.ledger.spent_usd, pool.ledger.unsettled_usd
                self.journal.finish_task(record.id, position, outcome, unsettled - spent_mark)
                spent_mark = unsettled
                counts["pending"] -= 1
                counts[outcome.status] += 1
                if progress is not None:
                    progress(dict(counts), record.spent_usd + spent)

        watching = asyncio.create_task(StopRequests(self.workspace).wait(record.id))  # then cancels the workers
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(worker()) for _ in range(workers)]

                def cancel_workers(watcher: asyncio.Task[None]) -> None:
                    if not watcher.cancelled():  # asked to stop: the teacher calls in flight are abandoned
                        for task in tasks:
                            task.cancel()

                watching.add_done_callback(cancel_workers)
        finally:
            watching.cancel()
            if batches is not None:
                await batches.aclose()
                batches.journal.close()
            self.journal.add_spending(record.id, pool.ledger.unsettled_usd - spent_mark)
            await pool.aclose()
            if student is not None and student.name not in pool.teachers:
                await student.aclose()
        return stop[0] if stop else None

    def _batch_queue(
        self, record: RunRecord, settings: RunSettings, pool: TeacherPool, student: ApiTeacher | None
    ) -> BatchQueue | None:
        """With ``batch``: the run's batch queue, under every API teacher it uses (checked in preflight.py)."""
        if not settings.batch:
            return None
        queue = BatchQueue(BatchJournal(self.workspace, record.id), poll_seconds=settings.batch_poll_seconds)
        for teacher in [*pool.teachers.values(), student]:
            if isinstance(teacher, OpenAICompatibleTeacher):
                teacher.batches = queue
        return queue

    def _student(self, settings: RunSettings, pool: TeacherPool) -> ApiTeacher | None:
        """The configured model that drafts (every answer, or those the extractive drafter cannot), or None."""
        name = settings.fallback_drafter if settings.drafter == "extractive" else settings.drafter
        if name is None:
            return None
        in_pool = pool.teachers.get(name)
        if isinstance(in_pool, OpenAICompatibleTeacher | ReplicatedTeacher):
            return in_pool
        return self.configured_teacher(name, ledger=pool.ledger, parameter="drafter")

    def configured_teacher(self, name: str, *, ledger: Ledger | None = None, parameter: str = "teachers") -> ApiTeacher:
        """An API teacher from ``arcticcodex.toml`` (or the run's extra teachers) by name, with the request cache."""
        configs = self.teacher_configs()
        for config in configs:
            if config.name == name and config.preset != "local":
                cache = RequestCache(self.workspace)
                teacher = build_teacher(config, cache=cache, ledger=ledger, environ=self.environ)
                if isinstance(teacher, OpenAICompatibleTeacher | ReplicatedTeacher):
                    return teacher
        names = ", ".join(config.name for config in configs if config.preset != "local") or "none configured"
        raise ConfigError(
            f"{parameter} {name!r} is not a configured API teacher (configured: {names}); "
            "add one with `arcticcodex teachers add`",
            parameters=[parameter],
        )

    def teacher_configs(self) -> list[TeacherConfig]:
        """The workspace's configured teachers, then the extra teachers this run was given."""
        configs, _ = load_teachers(self.workspace.config)
        return [*configs, *self.extra_teachers]

    async def _do_task(
        self,
        task: dict[str, Any],
        settings: RunSettings,
        router: TeacherRouter,
        student: ApiTeacher | None,
    ) -> TaskOutcome:
        if task.get("failure"):  # it could not even be asked (a chunk a teacher wrote no question about)
            return TaskOutcome("failed", reason=str(task["failure"]))
        instruction: str = task["instruction"]
        asked = teacher_instruction(task)  # with the conversation so far, for a follow-up question
        evidence_json: list[dict[str, Any]] = task["evidence"]
        if task.get("retrieve"):
            evidence_json = self._retrieve(retrieval_query(task), settings.evidence_k)
            if not evidence_json:
                return TaskOutcome(
                    "failed", reason="the vault holds no evidence for this instruction; import documents"
                )
        try:
            items, refs = evidence_from_json(evidence_json)
        except ArcticCodexError as error:
            return TaskOutcome("failed", reason=f"unusable evidence: {error}")
        draft: str | None = task.get("draft")
        draft_cost = 0.0
        drafter = "conversation"
        if draft is None:
            try:
                draft, draft_cost, drafter = await self._draft(asked, items, settings, student)
            except BudgetExceededError:
                raise
            except TeacherError as error:
                return TaskOutcome("failed", reason=f"drafting failed: {error}", retryable=True)
            if draft is None:
                return TaskOutcome(
                    "failed", reason="the evidence holds no prose sentence or table row to draft an answer from"
                )
        result = await router.refine(draft, items, instruction=asked)
        if result.budget_spent:
            raise BudgetExceededError(result.failure or "the budget is spent")
        cost = draft_cost + result.cost_usd
        if result.status == "failed":
            return TaskOutcome("failed", reason=result.failure, retryable=True, cost_usd=cost)
        pair = pair_from_result(task, instruction, result, refs, signer_id=settings.signer_id, drafter=drafter)
        return TaskOutcome("accepted" if result.accepted else "rejected", pair=pair.body(), cost_usd=cost)

    async def _draft(
        self, instruction: str, items: list[EvidenceItem], settings: RunSettings, student: ApiTeacher | None
    ) -> tuple[str | None, float, str]:
        """(first answer or None, its cost, who wrote it), by the rule settled in :mod:`.preflight`."""
        if settings.drafter == "extractive":
            found = ExtractiveDrafter(fallback=student is None).draft(instruction, items)
            if found is not None:
                how = " (no passage matched: the leading ones)" if found.fallback else ""
                return found.text, 0.0, ExtractiveDrafter.name + how
            if student is None:
                return None, 0.0, ExtractiveDrafter.name
        if student is None:  # pragma: no cover - prepare_run settles a drafter for every run
            raise ConfigError(f"the run's drafter {settings.drafter!r} is not a configured teacher")
        if isinstance(student, OpenAICompatibleTeacher) and student.config.response_format == "none":
            # a student trained on `messages` answers the question as it was trained: in prose, not JSON
            text, cost = await student.answer([{"role": "user", "content": instruction}])
            return text, cost, f"{student.name} ({student.model})"
        written = await student.draft(instruction, items)
        cost = written.call.cost_usd if written.call else 0.0
        return written.text, cost, f"{student.name} ({student.model})"

    def _retrieve(self, instruction: str, k: int) -> list[dict[str, Any]]:
        if self._searcher is None:
            self._searcher = Searcher(self.vault)
        return [
            {
                "text": hit.text,
                "chunk_id": hit.chunk_id,
                "doc_id": hit.doc_id,
                "sha256": hit.sha256,
                "span": [hit.start_byte, hit.end_byte],
                "source": hit.source,
            }
            for hit in self._searcher.search(instruction, k=k)
        ]


def _budget_spent(settings: RunSettings, record: RunRecord) -> str:
    """Why a run stopped with work left, and the command that finishes it."""
    return (
        f"the budget of ${settings.budget_usd or 0:.2f} is spent; to finish the run, resume it with a larger one: "
        f"`arcticcodex distill --resume {record.id} --budget-usd N`"
    )
