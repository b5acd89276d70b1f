"""Human review of a run's accepted pairs (runs made with ``distill --review``): list, decide, edit.

A person sees each accepted pair before it is published and approves it, rejects it (with a reason:
it goes to ``rejected.jsonl``), or edits it first.  The journal keeps the pair as the teachers left
it; an edit is a row of its own (who, when, the text before and after), applied when the run
publishes, so the published record carries the person's text under a new content id and a fresh
signature — nothing signed is changed in place, and the teachers' text stays in its revisions.
Decisions are final; a pair can be edited only while it waits for one.  Deciding many pairs at once
(by run and quality) is one transaction: all of them, or none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from ..dataset.record import TrainingPair, pair_id_for
from ..db import transaction
from ..errors import RecordNotFoundError, UserError
from .journal import RunJournal, review_columns

__all__ = ["PAIR_PREFIX", "PairEdit", "PairFilter", "PairReviews", "ReviewedPair", "apply_edit", "parse_pair_id"]

PAIR_PREFIX = "pair:"  # pair:<run id>:<task position>
ReviewStatus = Literal["pending", "approved", "rejected"]


def parse_pair_id(item_id: str) -> tuple[str, int] | None:
    """(run, position) of a ``pair:RUN:POSITION`` id; None for any other id (a fact, a summary)."""
    if not item_id.startswith(PAIR_PREFIX):
        return None
    run_id, _, position = item_id.removeprefix(PAIR_PREFIX).rpartition(":")
    if not run_id or not position.isdigit():
        raise UserError(f"{item_id!r} is not a pair id; pair ids look like pair:RUN:POSITION")
    return run_id, int(position)


@dataclass(frozen=True, slots=True)
class PairEdit:
    """The latest edit of a pair: the person's text, who made it and when, and the text before."""

    instruction: str
    completion: str
    by: str
    at: str
    before: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        after = {"instruction": self.instruction, "completion": self.completion}
        return {"by": self.by, "at": self.at, "before": self.before, "after": after}


def apply_edit(pair: TrainingPair, edit: PairEdit) -> TrainingPair:
    """``pair`` with the person's text: a new content id (the writer signs it anew), the edit noted."""
    note = f"edited in human review by {edit.by} at {edit.at}"
    return replace(
        pair,
        id=pair_id_for(edit.instruction, edit.completion, pair.evidence, pair.context),
        instruction=edit.instruction,
        completion=edit.completion,
        feedback=f"{pair.feedback}; {note}" if pair.feedback else note,
    )


@dataclass(frozen=True, slots=True)
class ReviewedPair:
    """An accepted pair of a reviewed run, as a person sees it: with its edit applied, and its decision."""

    run_id: str
    position: int
    pair: dict[str, Any]
    status: ReviewStatus
    reason: str = ""
    decided_by: str | None = None
    decided_at: str | None = None
    edit: PairEdit | None = None

    @property
    def id(self) -> str:
        return f"{PAIR_PREFIX}{self.run_id}:{self.position}"

    @property
    def quality(self) -> float:
        return float(self.pair.get("quality", 0))

    @property
    def text(self) -> str:
        return f"Q: {self.pair['instruction']}  A: {self.pair['completion']}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": "pair",
            "status": self.status,
            "text": self.text,
            "run_id": self.run_id,
            "position": self.position,
            "instruction": self.pair["instruction"],
            "completion": self.pair["completion"],
            "quality": self.pair.get("quality"),
            "reason": self.reason,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "edit": self.edit.to_json() if self.edit else None,
        }


@dataclass(frozen=True, slots=True)
class PairFilter:
    """Which pairs a bulk decision takes: of one run (or all reviewed runs), within a quality range, from
    one kind of source, judged by one teacher.

    As :func:`~arcticcodex.distill.journal.review_columns` reads a pair: its quality is the critics'
    score of its final revision; ``source`` the kind of source its prompt came from (``prompts``,
    ``conversation``, ``curriculum``); ``teacher`` one named on its final revision (a critic or the
    verifier of the text the person sees).  The queue is filtered in SQL on those columns
    (:meth:`PairReviews.pending_page`); :meth:`matches` is the same test on one pair.
    """

    run_id: str | None = None
    min_quality: float | None = None
    max_quality: float | None = None
    source: str | None = None
    teacher: str | None = None

    def matches(self, pair: ReviewedPair) -> bool:
        quality, source, judged_by = review_columns(pair.pair)
        return (
            (self.run_id is None or pair.run_id == self.run_id)
            and (self.min_quality is None or (quality or 0.0) >= self.min_quality)
            and (self.max_quality is None or (quality or 0.0) <= self.max_quality)
            and (self.source is None or source == self.source)
            and (self.teacher is None or self.teacher in json.loads(judged_by or "[]"))
        )

    def describe(self) -> str:
        parts = [f"of run {self.run_id}" if self.run_id else "of any reviewed run"]
        if self.min_quality is not None:
            parts.append(f"with quality ≥ {self.min_quality}")
        if self.max_quality is not None:
            parts.append(f"with quality ≤ {self.max_quality}")
        if self.source is not None:
            parts.append(f"from a {self.source} source")
        if self.teacher is not None:
            parts.append(f"judged by {self.teacher}")
        return " ".join(parts)

    def sql(self) -> tuple[str, tuple[Any, ...]]:
        """The filter as a condition on ``distill_tasks t`` (its review columns; the run is chosen apart,
        :meth:`PairReviews.reviewed_runs`), and its parameters."""
        return (
            "(? IS NULL OR coalesce(t.quality, 0) >= ?) AND (? IS NULL OR coalesce(t.quality, 0) <= ?)"
            " AND (? IS NULL OR t.source_kind = ?) AND (? IS NULL OR instr(t.judged_by, json_quote(?)) > 0)",
            tuple(value for value in (self.min_quality, self.max_quality, self.source, self.teacher) for _ in range(2)),
        )


# one run's accepted pairs nobody has decided on yet, in task order, read through the review index (a
# query per run: joined to the runs instead, SQLite read every task and parsed its run's settings for it)
_PENDING_IN_RUN = (
    " FROM distill_tasks t WHERE t.run_id = ? AND t.status = 'accepted' AND NOT EXISTS"
    " (SELECT 1 FROM distill_reviews r WHERE r.run_id = t.run_id AND r.position = t.position) AND "
)


# a run's accepted pairs, counted on the review index alone; and those of them decided, read from the
# decisions (CROSS JOIN: from each decision to its task, not from every task to its decision)
_ACCEPTED_IN_RUN = "SELECT count(*) FROM distill_tasks t WHERE t.run_id = ? AND t.status = 'accepted' AND "
_DECIDED_IN_RUN = (
    "SELECT count(*) FROM distill_reviews r CROSS JOIN distill_tasks t ON t.run_id = r.run_id"
    " AND t.position = r.position WHERE r.run_id = ? AND t.status = 'accepted' AND "
)


class PairReviews:
    """The review state of runs' accepted pairs, on a journal's connection."""

    def __init__(self, journal: RunJournal) -> None:
        self.journal = journal
        self.conn = journal.conn

    def pairs(
        self, status: ReviewStatus = "pending", run_id: str | None = None, *, limit: int | None = None
    ) -> list[ReviewedPair]:
        """Accepted pairs of reviewed runs with this status (edits applied), oldest run first; ``limit``
        at most."""
        if run_id is not None:
            self.journal.run(run_id)  # RecordNotFoundError names an unknown run, with the recent ones
        edits: dict[str, dict[int, PairEdit]] = {}

        def reviewed(
            run: str, position: int, body: dict[str, Any], decision: tuple[str, str, str] | None
        ) -> ReviewedPair:
            if run not in edits:
                edits[run] = self.edits(run)
            return _reviewed(run, position, body, status, decision, edits[run].get(position))

        if status == "pending":
            return self.pending_page(PairFilter(run_id), limit=limit)
        rows = self.conn.execute(
            "SELECT t.run_id, t.position, t.pair, r.reason, r.decided_by, r.decided_at FROM distill_reviews r"
            " JOIN distill_tasks t ON t.run_id = r.run_id AND t.position = r.position"
            " JOIN distill_runs u ON u.id = r.run_id"
            " WHERE r.status = ? AND (? IS NULL OR r.run_id = ?) ORDER BY u.created_at, r.run_id, r.position"
            " LIMIT ?",
            (status, run_id, run_id, -1 if limit is None else limit),
        ).fetchall()
        return [
            reviewed(run, position, json.loads(pair), (reason, by, at)) for run, position, pair, reason, by, at in rows
        ]

    def get(self, run_id: str, position: int) -> ReviewedPair:
        """One accepted pair of a reviewed run, whatever its status."""
        run = self.journal.run(run_id)
        row = self.conn.execute(
            "SELECT t.status, t.pair, r.status, r.reason, r.decided_by, r.decided_at FROM distill_tasks t"
            " LEFT JOIN distill_reviews r ON r.run_id = t.run_id AND r.position = t.position"
            " WHERE t.run_id = ? AND t.position = ?",
            (run_id, position),
        ).fetchone()
        if row is None or row[0] != "accepted" or not run.settings.get("human_review"):
            raise RecordNotFoundError(
                f"run {run_id} has no accepted pair at position {position} to review; "
                "`arcticcodex review list --kind pair` lists them"
            )
        _, body, status, reason, by, at = row
        decision = (reason, by, at) if status else None
        return _reviewed(
            run_id, position, json.loads(body), status or "pending", decision, self.edits(run_id).get(position)
        )

    def matching(self, where: PairFilter) -> list[ReviewedPair]:
        """The pending pairs a bulk decision with ``where`` would take."""
        return self.pending_page(where, limit=None)

    def reviewed_runs(self, run_id: str | None = None) -> list[str]:
        """The runs made with human review (all of them, or ``run_id`` if it is one), oldest first."""
        rows = self.conn.execute(
            "SELECT id, json_extract(settings, '$.human_review') FROM distill_runs ORDER BY created_at, id"
        )
        return [run for run, reviewed in rows if reviewed and (run_id is None or run == run_id)]

    def pending_page(self, where: PairFilter, *, limit: int | None, offset: int = 0) -> list[ReviewedPair]:
        """The pending pairs ``where`` chooses, in run then task order: ``limit`` of them from ``offset``
        (None: all).  Only the pairs returned are read whole; the filter runs on the review index."""
        condition, parameters = where.sql()
        wanted = -1 if limit is None else limit
        found: list[ReviewedPair] = []
        for run in self.reviewed_runs(where.run_id):
            if wanted == 0:
                break
            if offset:  # skip whole runs the offset passes over
                here = self._count(run, condition, parameters)
                if offset >= here:
                    offset -= here
                    continue
            positions = [
                position
                for (position,) in self.conn.execute(
                    "SELECT t.position" + _PENDING_IN_RUN + condition + " ORDER BY t.position LIMIT ? OFFSET ?",
                    (run, *parameters, wanted, offset),
                )
            ]
            offset = 0
            found += self._read(run, positions)
            if wanted > 0:
                wanted -= len(positions)
        return found

    def pending_count(self, where: PairFilter | None = None) -> int:
        """How many pending pairs ``where`` chooses (all of them when None)."""
        chosen = where or PairFilter()
        condition, parameters = chosen.sql()
        return sum(self._count(run, condition, parameters) for run in self.reviewed_runs(chosen.run_id))

    def pending_choices(self) -> tuple[list[str], list[str], list[str]]:
        """What the pending pairs can be filtered by: their runs, source kinds and teachers."""
        runs, sources, teachers = [], set(), set()
        for run in self.reviewed_runs():
            rows = self.conn.execute("SELECT DISTINCT t.source_kind, t.judged_by" + _PENDING_IN_RUN + "1", (run,))
            for source, judged_by in rows:
                if run not in runs:
                    runs.append(run)
                if source:
                    sources.add(source)
                teachers.update(json.loads(judged_by or "[]"))
        return sorted(runs), sorted(sources), sorted(teachers)

    def _count(self, run: str, condition: str, parameters: tuple[Any, ...]) -> int:
        """The run's accepted pairs the filter chooses (counted on the index alone), less those decided
        (few, usually: read from the decisions, each joined to its task)."""
        # the condition is PairFilter.sql's own text; every value in it is a parameter
        (accepted,) = self.conn.execute(_ACCEPTED_IN_RUN + condition, (run, *parameters)).fetchone()
        (decided,) = self.conn.execute(_DECIDED_IN_RUN + condition, (run, *parameters)).fetchone()
        return int(accepted) - int(decided)

    def _read(self, run: str, positions: list[int]) -> list[ReviewedPair]:
        """The pending pairs of ``run`` at ``positions``, in that order, with their edits."""
        if not positions:
            return []
        bodies: dict[int, str] = {}
        for first in range(0, len(positions), 500):  # SQLite's limit on parameters, with room to spare
            chunk = positions[first : first + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT position, pair FROM distill_tasks WHERE run_id = ? AND position IN ({marks})",  # noqa: S608
                (run, *chunk),
            )
            bodies.update(rows)
        edits = self.edits(run)
        return [
            _reviewed(run, position, json.loads(bodies[position]), "pending", None, edits.get(position))
            for position in positions
        ]

    def decide(
        self, keys: Iterable[tuple[str, int]], status: Literal["approved", "rejected"], *, reason: str = "", by: str
    ) -> int:
        """Approve or reject pending pairs, all in one transaction (none, if one cannot be); return how many."""
        if status == "rejected" and not reason.strip():
            raise UserError(
                "a rejection needs a reason, saying why the pairs are rejected; it goes into rejected.jsonl",
                parameters=["reason"],
            )
        chosen = list(dict.fromkeys(keys))
        now = datetime.now(UTC).isoformat()
        with transaction(self.conn):
            for run_id, position in chosen:
                self._require_pending(run_id, position)
                self.conn.execute(
                    "INSERT INTO distill_reviews (run_id, position, status, reason, decided_by, decided_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, position, status, reason.strip(), by, now),
                )
        return len(chosen)

    def edit(
        self, run_id: str, position: int, *, instruction: str | None = None, completion: str | None = None, by: str
    ) -> ReviewedPair:
        """Record a person's new text for a pending pair (the teachers' text is kept as ``before``)."""
        changes = {"instruction": instruction, "completion": completion}
        if all(value is None for value in changes.values()):
            raise UserError(
                "a pair has an instruction and a completion to edit; give at least one",
                parameters=["instruction", "completion"],
            )
        for name, value in changes.items():
            if value is not None and not value.strip():
                raise UserError(f"the {name} of pair:{run_id}:{position} cannot be empty", parameters=[name])
        with transaction(self.conn):
            current = self._require_pending(run_id, position)
            before = {"instruction": current.pair["instruction"], "completion": current.pair["completion"]}
            after = {name: (value.strip() if value is not None else before[name]) for name, value in changes.items()}
            self.conn.execute(
                "INSERT INTO distill_pair_edits (run_id, position, edited_by, edited_at, before, after)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, position, by, datetime.now(UTC).isoformat(), json.dumps(before), json.dumps(after)),
            )
        return self.get(run_id, position)

    def edits(self, run_id: str) -> dict[int, PairEdit]:
        """The latest edit of each edited pair of a run, by position."""
        rows = self.conn.execute(
            "SELECT position, edited_by, edited_at, before, after FROM distill_pair_edits WHERE run_id = ? ORDER BY id",
            (run_id,),
        )
        latest: dict[int, PairEdit] = {}
        for position, by, at, before, after in rows:
            text = json.loads(after)
            first = latest[position].before if position in latest else json.loads(before)
            latest[position] = PairEdit(text["instruction"], text["completion"], by, at, first)
        return latest

    def counts(self, run_id: str) -> dict[str, int]:
        """How a run's review went: pairs approved, rejected and edited by a person, and still waiting."""
        counts = {"approved": 0, "rejected": 0}
        for status, count in self.conn.execute(
            "SELECT status, count(*) FROM distill_reviews WHERE run_id = ? GROUP BY status", (run_id,)
        ):
            counts[status] = count
        (edited,) = self.conn.execute(
            "SELECT count(DISTINCT position) FROM distill_pair_edits WHERE run_id = ?", (run_id,)
        ).fetchone()
        waiting = self.journal.awaiting_review_count(run_id)
        return {**counts, "edited": int(edited), "pending": waiting}

    def _require_pending(self, run_id: str, position: int) -> ReviewedPair:
        pair = self.get(run_id, position)
        if pair.status != "pending":
            raise UserError(
                f"{pair.id} was already {pair.status} by {pair.decided_by}; decisions are final, "
                "so it can be neither decided again nor edited"
            )
        return pair


def _reviewed(
    run_id: str,
    position: int,
    body: dict[str, Any],
    status: ReviewStatus,
    decision: tuple[str, str, str] | None,
    edit: PairEdit | None,
) -> ReviewedPair:
    if edit is not None:
        body = {**body, "instruction": edit.instruction, "completion": edit.completion}
    reason, by, at = decision or ("", None, None)
    return ReviewedPair(run_id, position, body, status, reason, by, at, edit)
