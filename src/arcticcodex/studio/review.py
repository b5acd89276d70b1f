"""The Studio's review queue: proposals (facts, summaries) and reviewed runs' pairs — list, decide, edit.

The same workflow as ``arcticcodex review`` (:class:`arcticcodex.human_review.HumanReview`), with the
decisions recorded as made by ``studio``: approve, reject with a reason, edit
before deciding (a pair's edit is recorded and published with a fresh signature), and decide the
pending pairs a filter chooses at once (run, quality range, source, teacher), after a preview of how
many match.  Each pair is shown with what a person needs to judge it: the evidence texts it rests on
(the passages its answer cites marked), every revision with the critics' scores and the verifier's
claims.  How far each teacher's verdicts agree with the person's decisions (Cohen's κ, per teacher)
is shown above the queue, so the user learns which judge to trust.  Decisions already made are listed
under their status, and every item has a page of its own (``/review/ITEM``), which the cards link to.
``static/review.js`` adds keyboard shortcuts; the page works without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..errors import RecordNotFoundError, UserError
from ..human_review import (
    HumanReview,
    PairFilter,
    ReviewedPair,
    Selection,
    TeacherAgreement,
    pair_teachers,
)
from ..vault import Vault
from ..workspace import Workspace
from .csrf import FORM_FIELD
from .pages import page
from .workers import VaultWorkers

__all__ = ["ReviewPages", "pending_count"]

STATUSES = ("pending", "approved", "rejected")
BY = "studio"
SHOWN = 100  # pairs shown on one page; the filter narrows the rest
_EDITABLE = ("subject", "predicate", "object", "text", "instruction", "completion")
_FILTER_FIELDS = ("run", "source", "teacher", "min_quality", "max_quality")


def pending_count(workspace: Workspace, vault: Vault) -> int:
    """What waits for a person: pending proposals and pending pairs (the number every page shows)."""
    with HumanReview(workspace, by=BY, vault=vault) as review:
        return review.pending_count()


class ReviewPages:
    """``/review`` and its forms, served from the worker threads."""

    def __init__(self, workspace: Workspace, workers: VaultWorkers) -> None:
        self.workspace = workspace
        self.workers = workers

    def routes(self) -> list[Route]:
        return [
            Route("/review", self.listing),
            Route("/review/{item_id}", self.one),
            Route("/review/{item_id}/{action}", self.decide, methods=["POST"]),
        ]

    async def listing(self, request: Request) -> Response:
        """The queue with one status; for pending pairs, the filter in the query (and its preview count)."""
        status = request.query_params.get("status", "pending")
        if status not in STATUSES:
            raise UserError(f"there is no review status {status!r}; choose {', '.join(STATUSES)}")
        chosen = {name: request.query_params.get(name, "").strip() for name in _FILTER_FIELDS}
        return await self.workers.run(self._listing, status, chosen)

    async def one(self, request: Request) -> Response:
        """One item on a page of its own (a pair with its evidence and revisions), whatever its status."""
        return await self.workers.run(self._one, request.path_params["item_id"])

    async def decide(self, request: Request) -> Response:
        """approve / reject (with a reason) / edit one item, or ``bulk`` approve / reject the pairs a filter takes."""
        async with request.form() as form:
            fields = {name: str(value) for name, value in form.items() if name != FORM_FIELD}
        item_id, action = request.path_params["item_id"], request.path_params["action"]
        return await self.workers.run(self._decide, item_id, action, fields)

    # -- in a worker --------------------------------------------------------------------------------

    def _review(self) -> HumanReview:
        return HumanReview(self.workspace, by=BY, vault=self.workers.vault)

    def _listing(self, status: str, chosen: dict[str, str]) -> Response:
        where = pair_filter(chosen) if status == "pending" else PairFilter()
        filtering = where != PairFilter()
        runs: list[str] = []
        sources: list[str] = []
        teachers: list[str] = []
        with self._review() as review:
            waiting_pairs = review.pending_pair_count()
            pending = review.pending_proposal_count() + waiting_pairs
            if status == "pending":  # a page of the queue, filtered and counted on its index, never read whole
                proposals = review.items("pending", kind="fact") + review.items("pending", kind="summary")
                pairs = review.pending_pairs(where, limit=SHOWN)
                matched = review.pending_pair_count(where) if filtering else waiting_pairs
                runs, sources, teachers = review.pending_choices()  # the bulk form's choices
            else:
                items = review.items(status, kind=None, limit=SHOWN)  # type: ignore[arg-type]
                proposals = [item for item in items if not isinstance(item, ReviewedPair)]
                pairs = [item for item in items if isinstance(item, ReviewedPair)]
                matched = len(pairs)
            shown = [self._shown(review, pair) for pair in pairs]
            agreement = [_agreement_row(row) for row in review.agreement()]
        return page(
            "review.html",
            "Review queue",
            "Review",
            status=status,
            statuses=STATUSES,
            items=proposals,
            pairs=shown,
            matched=matched,
            shown_at_most=SHOWN,
            filtering=filtering,
            chosen=chosen,
            described=where.describe() if filtering else "",
            runs=runs,
            sources=sources,
            teachers=teachers,
            agreement=agreement,
            pending=pending,
        )

    def _one(self, item_id: str) -> Response:
        with self._review() as review:
            item = review.get(item_id)  # RecordNotFoundError (404) names what is missing
            pending = review.pending_count()
            shown = self._shown(review, item) if isinstance(item, ReviewedPair) else None
        title = "Training pair" if isinstance(item, ReviewedPair) else f"Proposed {item.kind}"
        return page("review_item.html", title, "Review", item=item, pair=shown, pending=pending)

    def _shown(self, review: HumanReview, pair: ReviewedPair) -> dict[str, Any]:
        """A pair as its card shows it: the pair, its evidence, its revisions, where it came from."""
        revisions = pair.pair.get("revisions") or []
        source = pair.pair.get("source") or {}
        return {
            "item": pair,
            "evidence": review.evidence(pair),
            "revisions": [_revision(revision) for revision in revisions],
            "source": _source(source),
            "teachers": pair_teachers(pair),
            "threshold": review.threshold(pair.run_id),
        }

    def _decide(self, item_id: str, action: str, fields: dict[str, str]) -> Response:
        if action not in ("approve", "reject", "edit"):
            raise RecordNotFoundError(f"no review action {action!r}")
        reason = fields.get("reason", "")
        decision: Literal["approved", "rejected"] = "approved" if action == "approve" else "rejected"
        with self._review() as review:
            if item_id == "bulk":
                if action == "edit":
                    raise UserError("pairs are edited one at a time; bulk decisions approve or reject")
                where = pair_filter(fields)
                _require_previewed(review, where, fields.get("expected", ""))
                if not review.decide_selected(Selection(where), decision, reason=reason):
                    raise UserError(f"nothing pending {where.describe()}; nothing was decided")
            elif action == "edit":
                review.edit(item_id, **{k: v.strip() for k, v in fields.items() if k in _EDITABLE and v.strip()})
            else:
                review.decide([item_id], decision, reason=reason)
        return RedirectResponse("/review", status_code=303)


def _require_previewed(review: HumanReview, where: PairFilter, expected: str) -> None:
    """A bulk decision sent from a preview takes the pairs that were counted, or none: if pairs arrived or
    were decided since (a run still writing, another tab), the person sees the new count before deciding."""
    if not expected.strip().isdigit():
        return  # not sent from a preview (a script, the previous form): the filter alone decides
    now = review.pending_pair_count(where)
    if now != int(expected):
        raise UserError(
            f"{now} pending pairs match {where.describe()} now, not the {int(expected)} previewed; "
            "nothing was decided: look at the new preview and decide again"
        )


def pair_filter(fields: Mapping[str, str]) -> PairFilter:
    """The pair filter a form or query gives (blank fields choose nothing)."""
    return PairFilter(
        fields.get("run", "").strip() or None,
        _quality(fields, "min_quality"),
        _quality(fields, "max_quality"),
        source=fields.get("source", "").strip() or None,
        teacher=fields.get("teacher", "").strip() or None,
    )


def _source(source: object) -> str:
    """Where the prompt came from, in words: its kind and its reference, a file named by its name only."""
    if not isinstance(source, dict):
        return ""
    ref = str(source.get("ref", "")).rsplit("/", 1)[-1]
    return f"{source.get('kind', '')} {ref}".strip()


def _revision(revision: Mapping[str, Any]) -> dict[str, Any]:
    """A revision with its claims split into (verdict, claim) for the page."""
    claims = []
    for claim in revision.get("claims") or []:
        verdict, _, text = str(claim).partition(":")
        claims.append((verdict.strip(), text.strip()) if text else ("", verdict.strip()))
    return {
        "round": revision.get("round"),
        "text": str(revision.get("text", "")),
        "score": revision.get("score"),
        "criteria": dict(revision.get("criteria") or {}),
        "teachers": list(revision.get("teachers") or []),
        "critic_scores": dict(revision.get("critic_scores") or {}),
        "verifier": str(revision.get("verifier") or ""),
        "claims": claims,
    }


def _agreement_row(row: TeacherAgreement) -> dict[str, Any]:
    kappa = row.kappa
    return {
        "teacher": row.teacher,
        "n": row.n,
        "kappa": f"{kappa.value:.2f}" if kappa.value is not None else None,
        "why_undefined": kappa.undefined_reason,
        "observed": f"{kappa.observed:.0%}",
        "teacher_accepted": row.teacher_accepted,
        "person_approved": row.person_approved,
    }


def _quality(fields: Mapping[str, str], name: str) -> float | None:
    text = str(fields.get(name, "")).strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        # from None: the ValueError adds nothing the message does not already say
        raise UserError(f"{name.replace('_', ' ')} must be a number between 0 and 1, not {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise UserError(f"{name.replace('_', ' ')} must be between 0 and 1, not {value}")
    return value
