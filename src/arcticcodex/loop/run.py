"""A train → distill → train loop: the student drafts, the teachers correct it, it learns, it is measured.

::

    start     the loop's settings checked and journaled (loop.journal), its folder claimed
    iteration K = 1 … N, a step at a time, each journaled (loop.journal):
      distill   student K-1 (student 0: the base model) is served and drafts every question; the
                teachers critique, verify and rewrite; the accepted pairs become a signed dataset
                whose revisions carry the DPO pairs (the student's draft vs the accepted rewrite)
      eval 0    (after the first distill, once) the base model on the held-out questions
      train     student K from student K-1 on that dataset: SFT, then DPO when it holds preference
                pairs (method 'auto'), with its signed receipt
      eval      student K on the same held-out questions, by the same judges
      stop early once the win rate has not improved for ``patience`` iterations

The held-out questions are fixed for the whole loop — iteration 1's validation split unless a
held-out dataset is given — and no later iteration distils them again, so every student is measured
on questions it never saw.  Kill the loop at any instant and run it again with its id: a finished step
is skipped, the step it was in resumes from its own journal (a distill run's pending tasks, a
training run's last checkpoint; teacher calls already paid are answered from the request cache).
One budget covers the whole loop (each step gets what the others have left).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from .._sync import run_sync
from ..dataset.record import iter_records
from ..dataset.verify import require_verified
from ..distill.run import Distiller
from ..distill.sourcing import Source, source_tasks
from ..distill.summary import RunSummary
from ..distill.tasks import Task
from ..errors import UserError
from ..evaluation.serving import serve_folder, served_teacher
from ..evaluation.session import EvalRequest, run_eval
from ..layout import VALIDATION_FILE
from ..provenance.trust import KeyRing
from ..teachers.entries import TeacherConfig
from ..training.examples import has_preference_pairs
from ..training.receipt import RECEIPT_FILE
from ..training.trainer import train_model
from ..vault.embeddings import EmbeddingBackend
from ..workspace import Workspace
from .journal import LoopJournal, LoopRecord, Stage
from .settings import FIRST_DRAFTER_BASE, LoopSettings
from .stopping import stop_reason
from .students import dataset_folder, require_chat_template, student_folder, training_folder

__all__ = ["LoopObserver", "StudentLoop"]

STUDENT = "student"  # the served student's name as the run's drafter


class LoopObserver(Protocol):
    """What a loop reports as it goes (the CLI draws it; every method may do nothing)."""

    def stage(self, iteration: int, stage: Stage, total: int | None) -> None: ...
    def advance(self, done: int, total: int, detail: str) -> None: ...
    def finished(self, iteration: int, stage: Stage, result: dict[str, Any]) -> None: ...


class StudentLoop:
    """Starts, runs and resumes loops in one workspace (see the module docstring for the steps)."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        keyring: KeyRing,
        key: str | None = None,
        environ: Mapping[str, str] | None = None,
        local_embedder: EmbeddingBackend | None = None,
        observer: LoopObserver | None = None,
    ) -> None:
        self.workspace = workspace
        self.keyring = keyring
        self.key = key
        self.environ = environ
        self.local_embedder = local_embedder
        self.observer = observer
        self.journal = LoopJournal(workspace)

    # -- start ------------------------------------------------------------------------------------

    def start(self, settings: LoopSettings, out: str | Path) -> LoopRecord:
        """Check what can be checked before anything is paid for, claim ``out`` and journal the loop."""
        out = Path(out).resolve()
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise UserError(f"out {out} is not empty; choose a new folder for the loop", parameters=["out"])
        _require_training_libraries()
        if settings.first_drafter == FIRST_DRAFTER_BASE:
            require_chat_template(student_folder(out, 0, settings.base), settings.base)
        if settings.heldout is not None:
            require_verified(Path(settings.heldout), keyring=self.keyring, allow_untrusted=settings.allow_untrusted)
        out.mkdir(parents=True, exist_ok=True)
        return self.journal.create(settings, out)

    # -- run --------------------------------------------------------------------------------------

    async def execute(self, loop_id: str, *, budget_usd: float | None = None) -> LoopRecord:
        """Take every step not yet complete, in order; return the loop as it ended (see its status and note)."""
        record = self.journal.get(loop_id)
        if budget_usd is not None:  # a resume may raise (or set) the budget, as a distill run's may
            record = self.journal.set_budget(loop_id, budget_usd)
        if record.status in ("complete", "stopped_early"):
            return record
        try:
            return await self._iterations(record)
        except BaseException as exc:
            note = f"{type(exc).__name__}: {exc}" if not isinstance(exc, KeyboardInterrupt) else "interrupted"
            self.journal.set_status(loop_id, "stopped", f"{note}; resume with `arcticcodex loop --resume {loop_id}`")
            raise

    def execute_sync(self, loop_id: str, *, budget_usd: float | None = None) -> LoopRecord:
        return run_sync(self.execute(loop_id, budget_usd=budget_usd))

    async def _iterations(self, record: LoopRecord) -> LoopRecord:
        settings = record.settings
        for iteration in range(1, settings.iterations + 1):
            summary = await self._distill(record.id, iteration)
            if summary is not None:  # stopped with work left: the budget, a teacher outage, an empty dataset
                return self.journal.get(record.id)
            if iteration == 1:
                await self._evaluate(record.id, 0)
            await self._train(record.id, iteration)
            await self._evaluate(record.id, iteration)
            record = self.journal.get(record.id)
            reason = stop_reason(record, iteration)
            if reason is not None and iteration < settings.iterations:
                self.journal.set_status(record.id, "stopped_early", reason)
                return self.journal.get(record.id)
        self.journal.set_status(record.id, "complete")
        return self.journal.get(record.id)

    # -- the steps --------------------------------------------------------------------------------

    async def _distill(self, loop_id: str, iteration: int) -> RunSummary | None:
        """Distil iteration ``iteration``'s dataset; a summary when the run stopped with work left, else None."""
        record = self.journal.get(loop_id)
        step = record.step(iteration, "distill")
        if step is not None and step.complete:
            return None
        settings = record.settings
        target = dataset_folder(record.out, iteration)
        drafter = settings.first_drafter if iteration == 1 else STUDENT
        if drafter == FIRST_DRAFTER_BASE:
            drafter = STUDENT
        self.journal.started(loop_id, iteration, "distill")
        self._say(iteration, "distill", None)
        with contextlib.ExitStack() as served:
            extra: list[TeacherConfig] = []
            if drafter == STUDENT:
                folder = student_folder(record.out, iteration - 1, settings.base)
                base_url, model = await asyncio.to_thread(served.enter_context, serve_folder(folder))
                extra.append(served_teacher(STUDENT, base_url, model))
            with Distiller(
                self.workspace, local_embedder=self.local_embedder, environ=_plain(self.environ), extra_teachers=extra
            ) as distiller:
                run_id = step.ref if step is not None and step.ref else None
                budget = _left(settings.budget_usd, record.spent_usd(besides=(iteration, "distill")))
                if run_id is None:
                    run_id = await self._create_run(distiller, record, iteration, drafter, target, budget)
                    self.journal.started(loop_id, iteration, "distill", ref=run_id)
                summary = await distiller.execute(run_id, progress=self._distill_progress(), budget_usd=budget)
        if summary.status != "complete" or summary.written == 0:
            note = summary.note or summary.hint or "the run wrote no pairs"
            self.journal.set_status(loop_id, "stopped", f"iteration {iteration}'s distill run {run_id} stopped: {note}")
            return summary
        if iteration == 1 and settings.heldout is None and summary.validation == 0:
            raise UserError(
                f"iteration 1's dataset {target} held no pair out for validation, so the loop has no held-out "
                "questions; distil more prompts, or raise validation_fraction",
                parameters=["validation_fraction"],
            )
        result = {
            "run_id": run_id,
            "dataset": str(target),
            "drafter": drafter if drafter != STUDENT else f"student {iteration - 1}",
            "accepted": summary.accepted,
            "rejected": summary.rejected,
            "failed": summary.failed,
            "written": summary.written,
            "validation": summary.validation,
            "spent_usd": summary.cost_usd,
        }
        self.journal.completed(loop_id, iteration, "distill", run_id, result)
        self._finished(iteration, "distill", result)
        return None

    async def _create_run(
        self,
        distiller: Distiller,
        record: LoopRecord,
        iteration: int,
        drafter: str,
        target: Path,
        budget: float | None,
    ) -> str:
        settings = record.settings
        source = Source(**{**settings.source, "prompts": _path(settings.source.get("prompts"))})
        run_settings = replace(
            settings.run,
            drafter=drafter,
            validation_fraction=settings.validation_fraction,
            human_review=False,  # a loop runs unattended: the teachers' verdicts decide
            budget_usd=budget,
            source=f"loop {record.id}, iteration {iteration}: {source.label}",
        )
        run_settings, target = distiller.prepare(run_settings, target)
        spent = 0.0
        tasks: Iterable[Task]
        if iteration == 1:
            sourced = await source_tasks(distiller, source, budget_usd=budget)
            tasks, spent = sourced.tasks, sourced.spent_usd
        else:
            first = record.step(1, "distill")
            if first is None or first.ref is None:
                raise UserError(f"loop {record.id} has no first iteration to take its questions from")
            tasks = distiller.journal.tasks(first.ref)
        heldout = self._heldout_questions(record) if iteration > 1 or settings.heldout is not None else set()
        kept = _without(tasks, heldout)
        created = distiller.create(kept, run_settings, target, prepared=True, spent_usd=spent)
        if created.task_count == 0:
            raise UserError(f"iteration {iteration} has no question left that is not held out")
        return created.id

    async def _train(self, loop_id: str, iteration: int) -> None:
        record = self.journal.get(loop_id)
        step = record.step(iteration, "train")
        if step is not None and step.complete:
            return
        settings = record.settings
        dataset, out = dataset_folder(record.out, iteration), training_folder(record.out, iteration)
        method = settings.method
        if method == "auto":
            margin = settings.train.dpo_margin
            method = "sft+dpo" if has_preference_pairs(dataset, dpo_margin=margin) else "sft"
        base = student_folder(record.out, iteration - 1, settings.base)
        train_settings = replace(settings.train, base=str(base), method=method)  # type: ignore[arg-type]
        resume = step is not None and (out / "run.json").is_file()
        if step is not None and not resume:
            shutil.rmtree(out, ignore_errors=True)  # claimed by nothing: a kill before the run wrote its record
        self.journal.started(loop_id, iteration, "train", ref=str(out))
        self._say(iteration, "train", None)
        trained = await asyncio.to_thread(
            train_model,
            self.workspace,
            dataset,
            out,
            train_settings,
            keyring=self.keyring,
            key=self.key,
            resume=resume,
            progress=self._train_progress,
        )
        result = {
            "out": str(out),
            "method": method,
            "base": str(base),
            "receipt_sha256": _sha256(out / RECEIPT_FILE),
            "rows": trained.metrics.get("rows", {}),
            "losses": {
                stage: {
                    name: trained.metrics[stage].get(name) for name in ("train_loss", "eval_loss_before", "eval_loss")
                }
                for stage in method.split("+")
            },
            "spent_usd": 0.0,
        }
        self.journal.completed(loop_id, iteration, "train", str(out), result)
        self._finished(iteration, "train", result)

    async def _evaluate(self, loop_id: str, iteration: int) -> None:
        record = self.journal.get(loop_id)
        step = record.step(iteration, "eval")
        if step is not None and step.complete:
            return
        settings = record.settings
        model = (
            student_folder(record.out, 0, settings.base) if iteration == 0 else training_folder(record.out, iteration)
        )
        heldout = self._heldout_dataset(record)
        self.journal.started(loop_id, iteration, "eval")
        self._say(iteration, "eval", None)
        request = EvalRequest(
            student=str(model),
            heldout=heldout,
            judges=settings.judges,
            budget_usd=_left(settings.budget_usd, record.spent_usd(besides=(iteration, "eval"))),
            allow_untrusted=settings.allow_untrusted,
            limit=settings.eval_limit,
            max_tokens=settings.eval_max_tokens,
        )

        def asked(done: int, total: int) -> None:
            if self.observer is not None:
                self.observer.advance(done, total, "questions")

        report = await run_eval(self.workspace, request, keyring=self.keyring, environ=self.environ, on_question=asked)
        student = report["models"]["student"]
        result = {
            "eval_id": report["id"],
            "model": student["model"],
            "receipt_sha256": student.get("receipt_sha256"),
            "questions": len(report["questions"]),
            "judges": report["judges"],
            "metrics": student["metrics"],
            "spent_usd": float(report["spend"].get("spent_usd", 0.0)),
        }
        self.journal.completed(loop_id, iteration, "eval", report["id"], result)
        self._finished(iteration, "eval", result)

    # -- the held-out questions -------------------------------------------------------------------

    def _heldout_dataset(self, record: LoopRecord) -> Path:
        if record.settings.heldout is not None:
            return Path(record.settings.heldout)
        return dataset_folder(record.out, 1)

    def _heldout_questions(self, record: LoopRecord) -> set[str]:
        """The held-out questions' instructions (a few hundred at most: the validation split)."""
        dataset = self._heldout_dataset(record)
        require_verified(dataset, keyring=self.keyring, allow_untrusted=record.settings.allow_untrusted)
        return {pair.instruction for _, pair, _ in iter_records(dataset / VALIDATION_FILE)}

    # -- reporting --------------------------------------------------------------------------------

    def _say(self, iteration: int, stage: Stage, total: int | None) -> None:
        if self.observer is not None:
            self.observer.stage(iteration, stage, total)

    def _finished(self, iteration: int, stage: Stage, result: dict[str, Any]) -> None:
        if self.observer is not None:
            self.observer.finished(iteration, stage, result)

    def _distill_progress(self) -> Callable[[dict[str, int], float], None]:
        def report(counts: dict[str, int], spent: float) -> None:
            if self.observer is not None:
                total = sum(counts.values())
                done = total - counts.get("pending", 0)
                self.observer.advance(done, total, f"prompts, {counts.get('accepted', 0)} accepted, ${spent:.4f}")

        return report

    def _train_progress(self, stage: str, step: int, total: int) -> None:
        if self.observer is not None:
            self.observer.advance(step, total, f"{stage} steps")


def _require_training_libraries() -> None:
    import importlib.util

    missing = [name for name in ("trl", "peft", "datasets") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(
            f"a loop trains a student, which needs the train extra ({', '.join(missing)} missing): "
            "pip install 'arcticcodex[train]'"
        )


def _losses(metrics: dict[str, Any]) -> dict[str, Any]:
    return {name: metrics.get(name) for name in ("train_loss", "eval_loss_before", "eval_loss")}


def _without(tasks: Iterable[Task], heldout: set[str]) -> Iterator[Task]:
    for task in tasks:
        if task.spec.get("instruction") not in heldout:
            yield task


def _left(budget: float | None, spent: float) -> float | None:
    return None if budget is None else max(0.0, budget - spent)


def _path(value: object) -> Path | None:
    return Path(str(value)) if value else None


def _plain(environ: Mapping[str, str] | None) -> dict[str, str] | None:
    return dict(environ) if environ is not None else None


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
