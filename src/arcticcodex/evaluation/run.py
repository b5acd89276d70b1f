"""Asking the models the held-out questions, and measuring each answer four ways.

Per question and model: the answer (the question asked as the student was trained — earlier turns,
then the question — at temperature 0, through the teacher client: cache, ledger, budget, retries);
exact match and token F1 against the accepted answer (:mod:`.metrics`); the grounded rate — the pool's
verifier splits the answer into claims and checks each against the pair's evidence, giving the share
supported and the share contradicted (only for questions whose evidence was found); and the win rate
against the teacher's accepted answer, each judge asked twice, the student's answer first (``A``) and
then second, so a judge that prefers a position gives a tie instead of a verdict.  A judgement scores
1 for the model's answer, 0 for the reference and 0.5 for a tie; a question's win rate is the mean
of its judgements.  Questions run ``concurrency`` at a time; within a question the calls are made in
a fixed order, so a run with ``concurrency=1`` sends exactly the same requests in the same order.
A spent budget stops the evaluation (:class:`~arcticcodex.errors.BudgetExceededError`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ..teachers.openai_compat import OpenAICompatibleTeacher
from ..teachers.results import Comparison, EvidenceItem, Verification
from .heldout import HeldOutQuestion, HeldOutSet
from .metrics import estimate, exact_match, token_f1
from .students import ModelSpec

__all__ = ["METRICS", "Contender", "Judge", "Verifier", "evaluate"]

METRICS = ("exact_match", "token_f1", "grounded_supported", "grounded_contradicted", "win_rate")
_POINTS = {"model": 1.0, "tie": 0.5, "reference": 0.0}


class Judge(Protocol):
    name: str

    async def compare(self, question: str, first: str, second: str, evidence: Sequence[EvidenceItem]) -> Comparison: ...


class Verifier(Protocol):
    async def verify(self, text: str, evidence: Sequence[EvidenceItem]) -> Verification: ...


@dataclass(frozen=True, slots=True)
class Contender:
    """A model under evaluation: ``student`` or ``baseline``, where it is, and the client that asks it."""

    label: str
    spec: ModelSpec
    client: OpenAICompatibleTeacher


async def evaluate(
    heldout: HeldOutSet,
    contenders: Sequence[Contender],
    *,
    verifier: Verifier,
    judges: Sequence[Judge],
    concurrency: int = 4,
    max_tokens: int = 512,
    seed: int = 0,
    on_question: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The evaluation's report (JSON-ready): per question, and each model's metrics with intervals."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(question: HeldOutQuestion) -> dict[str, Any]:
        nonlocal done
        async with gate:
            row: dict[str, Any] = {
                "pair_id": question.pair_id,
                "where": question.where,
                "question": question.question,
                "reference": question.reference,
                "evidence": len(question.evidence),
                "evidence_missing": question.evidence_missing,
            }
            for contender in contenders:
                row[contender.label] = await _measure(contender, question, verifier, judges, max_tokens)
        done += 1
        if on_question is not None:
            on_question(done, len(heldout.questions))
        return row

    rows = await asyncio.gather(*(one(question) for question in heldout.questions))
    models = {
        contender.label: {
            "spec": contender.spec.spec,
            "model": str(contender.spec.folder) if contender.spec.folder is not None else contender.client.model,
            "receipt_sha256": contender.spec.receipt_sha256,
            "metrics": {
                metric: estimate([row[contender.label][metric] for row in rows], seed=seed).to_json()
                for metric in METRICS
            },
        }
        for contender in contenders
    }
    return {
        "id": "eval-" + uuid.uuid4().hex[:12],
        "created_at": datetime.now(UTC).isoformat(),
        "dataset": {"path": str(heldout.directory), "merkle_root": heldout.merkle_root},
        "judges": [judge.name for judge in judges],
        "seed": seed,
        "models": models,
        "questions": list(rows),
    }


async def _measure(
    contender: Contender,
    question: HeldOutQuestion,
    verifier: Verifier,
    judges: Sequence[Judge],
    max_tokens: int,
) -> dict[str, Any]:
    answer = await ask(contender.client, list(question.messages), max_tokens=max_tokens)
    measured: dict[str, Any] = {
        "answer": answer,
        "exact_match": exact_match(answer, question.reference),
        "token_f1": round(token_f1(answer, question.reference), 6),
        "grounded_supported": None,
        "grounded_contradicted": None,
    }
    if question.evidence:
        checked = await verifier.verify(answer, question.evidence)
        claims = len(checked.claims)
        measured["grounded_supported"] = round(checked.supported_ratio, 6)
        measured["grounded_contradicted"] = round(len(checked.contradicted) / claims, 6) if claims else 0.0
        measured["claims"] = [claim.model_dump() for claim in checked.claims]
    judgements: list[dict[str, Any]] = []
    for judge in judges:
        if answer == question.reference.strip():  # both orders are one prompt: no judge can prefer either
            same = {"judge": judge.name, "winner": "tie", "preferred": "tie", "reason": "the accepted answer, verbatim"}
            judgements += [{**same, "order": "model-first"}, {**same, "order": "reference-first"}]
            continue
        for model_first in (True, False):
            first, second = (answer, question.reference) if model_first else (question.reference, answer)
            verdict = await judge.compare(question.question, first, second, question.evidence)
            preferred = (
                "tie" if verdict.winner == "tie" else "model" if (verdict.winner == "A") == model_first else "reference"
            )
            judgements.append(
                {
                    "judge": judge.name,
                    "order": "model-first" if model_first else "reference-first",
                    "winner": verdict.winner,
                    "preferred": preferred,
                    "reason": verdict.reason,
                }
            )
    points = [_POINTS[judgement["preferred"]] for judgement in judgements]
    measured["win_rate"] = round(sum(points) / len(points), 6) if points else None
    measured["judgements"] = judgements
    return measured


async def ask(client: OpenAICompatibleTeacher, messages: list[dict[str, str]], *, max_tokens: int) -> str:
    """The model's answer to ``messages`` in prose: cached, paid for and budgeted like every teacher call."""
    answer, _ = await client.answer(messages, max_tokens=max_tokens)
    return answer
