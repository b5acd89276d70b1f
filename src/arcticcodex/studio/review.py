"""The Studio's review queue: proposals (facts, summaries) and reviewed runs' pairs — list, decide, edit.

The same workflow as ``arcticcodex review`` (:class:`arcticcodex.human_review.HumanReview`), with the
decisions recorded as made by ``studio``: approve, reject with a reason, edit
before deciding (a pair's edit is recorded and published with a fresh signature), and decide a run's
pending pairs at once by quality.  Decisions already made are listed under their status.
"""

from __future__ import annotations

from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..errors import RecordNotFoundError, UserError
from ..human_review import HumanReview, PairFilter, ReviewedPair, Selection
from ..vault import Vault
from ..workspace import Workspace
from .csrf import FORM_FIELD
from .pages import page
from .workers import VaultWorkers

__all__ = ["ReviewPages", "pending_count"]

STATUSES = ("pending", "approved", "rejected")
BY = "studio"
_EDITABLE = ("subject", "predicate", "object", "text", "instruction", "completion")


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
        return [Route("/review", self.listing), Route("/review/{item_id}/{action}", self.decide, methods=["POST"])]

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

    def _review(self) -> HumanReview:
        return HumanReview(self.workspace, by=BY, vault=self.workers.vault)

    def _listing(self, status: str) -> Response:
        with self._review() as review:
            items = review.items(status, kind=None)  # type: ignore[arg-type]
            pending = review.pending_count()
        pairs = [item for item in items if isinstance(item, ReviewedPair)]
        proposals = [item for item in items if not isinstance(item, ReviewedPair)]
        runs = sorted({pair.run_id for pair in pairs}) if status == "pending" else []
        return page(
            "review.html",
            "Review queue",
            "Review",
            status=status,
            statuses=STATUSES,
            items=proposals,
            pairs=pairs,
            runs=runs,
            pending=pending,
        )

    def _decide(self, item_id: str, action: str, fields: dict[str, str]) -> Response:
        if action not in ("approve", "reject", "edit"):
            raise RecordNotFoundError(f"no review action {action!r}")
        reason = fields.get("reason", "")
        decision: Literal["approved", "rejected"] = "approved" if action == "approve" else "rejected"
        with self._review() as review:
            if item_id == "bulk":
                if action == "edit":
                    raise UserError("pairs are edited one at a time; bulk decisions approve or reject")
                where = PairFilter(
                    fields.get("run") or None, _quality(fields, "min_quality"), _quality(fields, "max_quality")
                )
                if not review.decide_selected(Selection(where), decision, reason=reason):
                    raise UserError(f"nothing pending {where.describe()}; nothing was decided")
            elif action == "edit":
                review.edit(item_id, **{k: v.strip() for k, v in fields.items() if k in _EDITABLE and v.strip()})
            else:
                review.decide([item_id], decision, reason=reason)
        return RedirectResponse("/review", status_code=303)


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
