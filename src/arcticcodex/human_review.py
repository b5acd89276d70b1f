"""Human review: everything that waits for a person, and the person's decisions, in one workflow.

Two kinds of items wait: *proposals* — facts and summaries the agent proposed for the vault's memory
(:mod:`arcticcodex.vault.proposals`; nothing enters memory unapproved) — and the accepted *pairs* of
runs made with ``distill --review`` (:mod:`arcticcodex.distill.pair_review`; nothing is published
unapproved).  They live in different stores, but a person reviews them as one queue, so the CLI
(``arcticcodex review``) and the Studio (``/review``) both go through :class:`HumanReview`: the same
listing, the same decisions (approve; reject with a reason; edit before deciding), the same bulk
choice, and the same rules for what may be edited.  Each edge only turns its input into these calls
and their results into text or pages.

Items are named by id: ``fact-…``, ``sum-…`` for proposals, ``pair:RUN:POSITION`` for pairs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

from .distill.journal import RunJournal, review_columns
from .distill.pair_evidence import ShownEvidence, pair_evidence
from .distill.pair_review import PairFilter, PairReviews, ReviewedPair, parse_pair_id
from .distill.review_agreement import TeacherAgreement, decided_pairs, teacher_agreement
from .errors import UserError
from .vault import Vault
from .vault.proposals import ReviewItem, ReviewQueue
from .workspace import Workspace

__all__ = [
    "Decision",
    "HumanReview",
    "ItemKind",
    "PairFilter",
    "ReviewItem",
    "ReviewStatus",
    "Reviewable",
    "ReviewedPair",
    "Selection",
    "ShownEvidence",
    "TeacherAgreement",
    "pair_source",
    "pair_teachers",
]

Decision = Literal["approved", "rejected"]
ReviewStatus = Literal["pending", "approved", "rejected"]
ItemKind = Literal["fact", "summary", "pair"]
Reviewable = ReviewItem | ReviewedPair
"""One item of the queue: a proposal (fact or summary) or a reviewed run's pair."""

_PROPOSAL_FIELDS = ("subject", "predicate", "object", "text")
_PAIR_FIELDS = ("instruction", "completion")


def pair_source(pair: ReviewedPair) -> str:
    """Where the pair's prompt came from: its source kind (``prompts``, ``conversation``, ``curriculum``)."""
    return review_columns(pair.pair)[1] or ""


def pair_teachers(pair: ReviewedPair) -> tuple[str, ...]:
    """The teachers that judged the text the person sees: those named on the pair's final revision
    (its critics and verifier); a pair without revisions names every teacher that worked on it."""
    return tuple(json.loads(review_columns(pair.pair)[2] or "[]"))


@dataclass(frozen=True, slots=True)
class Selection:
    """Which pending items a bulk decision takes.

    ``pairs`` chooses pairs (of one run, within a quality range, of one source, judged by one
    teacher: :class:`PairFilter`); ``everything`` takes everything
    pending, or, with ``kind``, everything pending of that kind.  A pair filter and ``everything``
    together take the pairs the filter chooses.
    """

    pairs: PairFilter = field(default_factory=PairFilter)
    everything: bool = False
    kind: ItemKind | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and not self.everything:
            raise UserError(
                "kind narrows everything pending; a run and quality bounds choose pairs", parameters=["kind"]
            )

    @property
    def chooses(self) -> bool:
        """Whether this selection chooses anything at all (an empty one is a mistake, not 'everything')."""
        return self.everything or self.pairs != PairFilter()

    def describe(self) -> str:
        if self.pairs != PairFilter():
            return self.pairs.describe()
        return f"of kind {self.kind}" if self.kind else "of any kind"


class HumanReview:
    """The review queue of one workspace, and decisions made on it by one person (``by``).

    A context manager: it opens the run journal, and the vault unless one is given (the Studio
    passes its worker's vault).  Every decision on several items is one transaction per store.
    """

    def __init__(self, workspace: Workspace, *, by: str, vault: Vault | None = None) -> None:
        self.workspace = workspace
        self.by = by
        self._given_vault = vault
        self._vault: Vault | None = vault
        self._journal: RunJournal | None = None
        self._thresholds: dict[str, float] = {}

    def __enter__(self) -> HumanReview:
        self._journal = RunJournal(self.workspace).__enter__()
        if self._vault is None:
            self._vault = Vault(self.workspace)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._journal is not None:
            self._journal.__exit__(kind, error, trace)
            self._journal = None
        if self._given_vault is None and self._vault is not None:
            self._vault.close()
            self._vault = None

    # -- what waits ------------------------------------------------------------------------------

    def items(
        self,
        status: ReviewStatus = "pending",
        *,
        kind: ItemKind | None = None,
        run_id: str | None = None,
        limit: int | None = None,
    ) -> list[Reviewable]:
        """Proposals, then pairs, with this status; ``kind`` or ``run_id`` narrow it (a run has only pairs);
        ``limit`` pairs at most (the pending ones are paged by :meth:`pending_pairs`)."""
        found: list[Reviewable] = []
        if kind != "pair" and run_id is None:
            found += self._proposals.list(status=status, kind=kind)
        if kind in (None, "pair"):
            found += self._pairs.pairs(status, run_id, limit=limit)
        return found

    def pending_count(self) -> int:
        """What waits for a person: pending proposals and pending pairs (the number every page shows)."""
        return self.pending_proposal_count() + self._journal_open.awaiting_review_count()

    def pending_proposal_count(self) -> int:
        """Facts and summaries waiting for a decision."""
        return self._proposals.pending_count()

    def run_counts(self, run_id: str) -> dict[str, int]:
        """How a reviewed run's review went: pairs approved, rejected, edited, and still pending."""
        return self._pairs.counts(run_id)

    def get(self, item_id: str) -> Reviewable:
        """One item, whatever its status."""
        pair = parse_pair_id(item_id)
        return self._pairs.get(*pair) if pair is not None else self._proposals.get(item_id)

    def matching(self, where: PairFilter) -> list[ReviewedPair]:
        """The pending pairs ``where`` chooses: what a bulk decision with it would take (its preview)."""
        return self._pairs.matching(where)

    def pending_pairs(self, where: PairFilter, *, limit: int, offset: int = 0) -> list[ReviewedPair]:
        """A page of the pending pairs ``where`` chooses (a queue of 100k pairs is never read whole)."""
        return self._pairs.pending_page(where, limit=limit, offset=offset)

    def pending_pair_count(self, where: PairFilter | None = None) -> int:
        """How many pending pairs ``where`` chooses (every pending pair when None)."""
        return self._pairs.pending_count(where)

    def pending_choices(self) -> tuple[list[str], list[str], list[str]]:
        """The runs, source kinds and teachers the pending pairs can be filtered by."""
        return self._pairs.pending_choices()

    def evidence(self, pair: ReviewedPair) -> list[ShownEvidence]:
        """The evidence texts ``pair`` rests on, with the passages its answer cites marked."""
        if self._vault is None:
            raise RuntimeError("HumanReview is used inside `with HumanReview(...) as review:`")
        return pair_evidence(self._journal_open, self._vault, pair.run_id, pair.position, pair.pair)

    def threshold(self, run_id: str) -> float:
        """The score a pair of this run had to reach to be accepted (read once per run and review)."""
        if run_id not in self._thresholds:
            self._thresholds[run_id] = float(self._journal_open.run(run_id).settings.get("threshold", 0.8))
        return self._thresholds[run_id]

    def agreement(self) -> list[TeacherAgreement]:
        """Cohen's κ per teacher between its verdicts and this workspace's human decisions on pairs.

        Over every decided pair of every reviewed run, by anyone (see
        :mod:`arcticcodex.distill.review_agreement` for what a teacher's verdict is)."""
        return teacher_agreement(decided_pairs(self._journal_open))

    # -- decisions -------------------------------------------------------------------------------

    def decide(self, item_ids: Iterable[str], decision: Decision, *, reason: str = "") -> list[Reviewable]:
        """Approve or reject the items named; return them as decided.  A rejection keeps its ``reason``."""
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            raise UserError("name the items to decide on (their ids are in the review list), or choose them")
        pairs = [key for item_id in ids if (key := parse_pair_id(item_id)) is not None]
        self._pairs_decide(pairs, decision, reason)
        for item_id in ids:
            if parse_pair_id(item_id) is None:
                self._proposal_decide(item_id, decision, reason)
        return [self.get(item_id) for item_id in ids]

    def decide_selected(self, selection: Selection, decision: Decision, *, reason: str = "") -> list[Reviewable]:
        """Approve or reject the pending items ``selection`` chooses; return them (none: nothing pending)."""
        if not selection.chooses:
            raise UserError("a selection must choose something: a run, a quality bound, or everything")
        pairs = self._pairs.matching(selection.pairs) if selection.kind in (None, "pair") else []
        proposals: list[ReviewItem] = []
        if selection.everything and selection.kind != "pair" and selection.pairs == PairFilter():
            proposals = self._proposals.list(kind=selection.kind)
        chosen = [pair.id for pair in pairs] + [proposal.id for proposal in proposals]
        return self.decide(chosen, decision, reason=reason) if chosen else []

    def edit(
        self,
        item_id: str,
        *,
        subject: str | None = None,
        predicate: str | None = None,
        object: str | None = None,
        text: str | None = None,
        instruction: str | None = None,
        completion: str | None = None,
    ) -> Reviewable:
        """Change a pending item before deciding on it: a fact's parts, a summary's text, a pair's texts.

        A pair's edit is recorded (who, when, the text before and after) and, once approved, published
        with the new text under a new content id and signature.
        """
        given = {
            "subject": subject,
            "predicate": predicate,
            "object": object,
            "text": text,
            "instruction": instruction,
            "completion": completion,
        }
        changes = {name: value for name, value in given.items() if value is not None}
        pair = parse_pair_id(item_id)
        if pair is not None:
            if wrong := [name for name in changes if name not in _PAIR_FIELDS]:
                raise UserError(
                    f"{item_id} is a training pair: edit its instruction or completion, not {', '.join(wrong)}",
                    parameters=wrong + list(_PAIR_FIELDS),
                )
            return self._pairs.edit(*pair, instruction=instruction, completion=completion, by=self.by)
        if wrong := [name for name in changes if name not in _PROPOSAL_FIELDS]:
            raise UserError(
                f"{item_id} is a proposal: instruction and completion edit training pairs",
                parameters=_PAIR_FIELDS,
            )
        return self._proposals.edit(item_id, **changes)

    # -- the two stores --------------------------------------------------------------------------

    @property
    def _journal_open(self) -> RunJournal:
        if self._journal is None:
            raise RuntimeError("HumanReview is used inside `with HumanReview(...) as review:`")
        return self._journal

    @property
    def _pairs(self) -> PairReviews:
        return PairReviews(self._journal_open)

    @property
    def _proposals(self) -> ReviewQueue:
        if self._vault is None:
            raise RuntimeError("HumanReview is used inside `with HumanReview(...) as review:`")
        return ReviewQueue(self._vault)

    def _pairs_decide(self, pairs: list[tuple[str, int]], decision: Decision, reason: str) -> None:
        if pairs:
            self._pairs.decide(pairs, decision, reason=reason, by=self.by)

    def _proposal_decide(self, item_id: str, decision: Decision, reason: str) -> None:
        if decision == "approved":
            self._proposals.approve(item_id, by=self.by)
        else:
            self._proposals.reject(item_id, reason=reason, by=self.by)
