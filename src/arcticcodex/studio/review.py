"""The Studio's review queue: proposals (facts, summaries) and reviewed runs' pairs — list, decide, edit.

The same decisions as ``arcticcodex review`` (see :mod:`arcticcodex.distill.pair_review` and
:mod:`arcticcodex.vault.proposals`), recorded as made by ``studio``: approve, reject with a reason, edit
before deciding (a pair's edit is recorded and published with a fresh signature), and decide a run's
pending pairs at once by quality.  Decisions already made are listed under their status.
"""

from __future__ import annotations

from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..distill.journal import RunJournal
from ..distill.pair_review import PairFilter, PairReviews, parse_pair_id
from ..errors import RecordNotFoundError, UserError
from ..vault.proposals import ReviewQueue
from ..workspace import Workspace
from .csrf import FORM_FIELD
from .pages import page
from .workers import VaultWorkers

__all__ = ["ReviewPages", "pending_count"]

STATUSES = ("pending", "approved", "rejected")
BY = "studio"


def pending_count(workspace: Workspace, queue: ReviewQueue) -> int:
    """What waits for a person: pending proposals and pending pairs (the number every page shows)."""
    with RunJournal(workspace) as journal:
        pairs = len(journal.awaiting_review())
    return len(queue.list()) + pairs


class ReviewPages:
    """``/review`` and its forms, served from the worker threads."""

    def __init__(self, workspace: Workspace, workers: VaultWorkers) -> None:
        self.workspace = workspace
        self.workers = workers

    async def listing(self, request: Request) -> Response:
        status = request.query_params.get("status", "pending")
        if status not in STATUSES:
            raise UserError(f"there is no review status {status!r}; choose {', '.join(STATUSES)}")
        return await self.workers.run(self._listing, status)

    async def decide(self, request: Request) -> Response:
        """approve / reject (with a reason) / edit one item, or ``bulk`` approve / reject a run's pairs."""
        async with request.form() as form:
            fields = {name: str(value) for name, value in form.items() if name != FORM_FIELD}
        item_id, action = request.path_params["item_id"], request.path_params["action"]
        return await self.workers.run(self._decide, item_id, action, fields)

    # -- in a worker --------------------------------------------------------------------------------

    def _listing(self, status: str) -> Response:
        queue = ReviewQueue(self.workers.vault)
        with RunJournal(self.workspace) as journal:
            pairs = PairReviews(journal).pairs(status)  # type: ignore[arg-type]
        items = queue.list(status=status)
        runs = sorted({pair.run_id for pair in pairs}) if status == "pending" else []
        return page(
            "review.html",
            "Review queue",
            "Review",
            status=status,
            statuses=STATUSES,
            items=items,
            pairs=pairs,
            runs=runs,
            pending=pending_count(self.workspace, queue),
        )

    def _decide(self, item_id: str, action: str, fields: dict[str, str]) -> Response:
        if action not in ("approve", "reject", "edit"):
            raise RecordNotFoundError(f"no review action {action!r}")
        reason = fields.get("reason", "")
        if item_id == "bulk":
            if action == "edit":
                raise UserError("pairs are edited one at a time; bulk decisions approve or reject")
            self._bulk("approved" if action == "approve" else "rejected", fields, reason)
        elif (pair := parse_pair_id(item_id)) is not None:
            with RunJournal(self.workspace) as journal:
                reviews = PairReviews(journal)
                if action == "edit":
                    instruction = fields.get("instruction", "").strip() or None
                    completion = fields.get("completion", "").strip() or None
                    reviews.edit(*pair, instruction=instruction, completion=completion, by=BY)
                else:
                    reviews.decide([pair], "approved" if action == "approve" else "rejected", reason=reason, by=BY)
        else:
            queue = ReviewQueue(self.workers.vault)
            if action == "approve":
                queue.approve(item_id, by=BY)
            elif action == "reject":
                queue.reject(item_id, reason=reason, by=BY)
            else:
                queue.edit(item_id, **{k: v for k, v in fields.items() if v.strip()})
        return RedirectResponse("/review", status_code=303)

    def _bulk(self, decision: Literal["approved", "rejected"], fields: dict[str, str], reason: str) -> None:
        where = PairFilter(fields.get("run") or None, _quality(fields, "min_quality"), _quality(fields, "max_quality"))
        with RunJournal(self.workspace) as journal:
            reviews = PairReviews(journal)
            chosen = reviews.matching(where)
            if not chosen:
                raise UserError(f"nothing pending {where.describe()}; nothing was decided")
            reviews.decide([(p.run_id, p.position) for p in chosen], decision, reason=reason, by=BY)


def _quality(fields: dict[str, Any], name: str) -> float | None:
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
