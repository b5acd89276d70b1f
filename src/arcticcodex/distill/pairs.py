"""A task's refine result as a training pair (the one place the loop's outcome becomes a record)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..dataset.record import PairSource, Revision, TrainingPair, Turn, pair_id_for
from ..forge.record_frames import EvidenceRef, utc_timestamp
from ..refine import RefineResult
from ..teachers.results import Critique

__all__ = ["critic_scores", "pair_from_result"]


def pair_from_result(
    task: dict[str, Any],
    instruction: str,
    result: RefineResult,
    refs: tuple[EvidenceRef, ...],
    *,
    signer_id: str,
    drafter: str,
) -> TrainingPair:
    """The training pair a task's loop produced: its final text, score, every revision and who judged it.

    The one constructor from a refine result: what each round cost and claimed becomes the pair's
    revisions (the DPO export reads them), with each critic's own score and the verifier's name (the
    review's agreement per teacher reads them), and the earlier turns of a conversation its context.
    """
    revisions = []
    teachers: set[str] = set()
    for round_ in result.rounds:
        calls = round_.calls
        teachers.update(call.teacher for call in calls)
        claims = round_.verification.claims if round_.verification else []
        revisions.append(
            Revision(
                round=round_.number,
                text=round_.text,
                score=round_.score if round_.score is not None else 0.0,
                criteria=round_.critique.criteria if round_.critique else {},
                claims=tuple(f"{claim.verdict}: {claim.claim}" for claim in claims),
                teachers=tuple(sorted({call.teacher for call in calls})),
                tokens=sum(call.usage.prompt_tokens + call.usage.completion_tokens for call in calls),
                cost_usd=round(sum(call.cost_usd for call in calls), 6),
                critic_scores=critic_scores(round_.critique),
                verifier=round_.verification.call.teacher if round_.verification and round_.verification.call else "",
            )
        )
    last = result.rounds[-1]
    weaknesses = last.critique.weaknesses if last.critique else []
    feedback = "; ".join(weaknesses) or ("accepted" if result.accepted else "below the threshold")
    source = task["source"]
    context = tuple(Turn(turn["role"], turn["content"]) for turn in task.get("context") or ())
    return TrainingPair(
        id=pair_id_for(instruction, result.final_text, refs, context),
        index=0,
        instruction=instruction,
        completion=result.final_text,
        quality=Decimal(str(round(result.score or 0.0, 4))),
        signer_id=signer_id,
        created_at=utc_timestamp(datetime.now(UTC)),
        source=PairSource(kind=source["kind"], ref=source["ref"]),
        accepted=result.accepted,
        feedback=f"{feedback} (drafted by {drafter})",
        revisions=tuple(revisions),
        evidence=refs,
        teachers=tuple(sorted(teachers)),
        context=context,
    )


def critic_scores(critique: Critique | None) -> dict[str, float]:
    """teacher → the score it gave: an ensemble's members, or the one critic that answered.

    Empty when no call names the critic (a critique made without a teacher call), so the revision
    is written as it was before per-critic scores were kept.
    """
    if critique is None:
        return {}
    judged = critique.members or [critique]
    return {member.call.teacher: member.score for member in judged if member.call is not None}
