"""How far each teacher's verdict agrees with a person's decisions (Cohen's κ), so the user learns which judge to trust.

A reviewed run's accepted pairs are approved or rejected by a person; each pair also records what the
teachers thought of it.  Agreement by chance is not agreement: a teacher that accepts every pair
"agrees" with a person who approves nine in ten pairs 90 % of the time and tells them nothing.  Cohen's
κ = (p_o − p_e) / (1 − p_e) removes what chance gives — p_o is how often the two said the same, p_e how
often they would if each said "accept" at its own rate at random — so 0 is chance, 1 is perfect and
below 0 is worse than chance.  κ is *not defined* when p_e = 1 (teacher and person each said the same
thing of every pair, and both the same thing): there is nothing to tell apart.

**A teacher's verdict** on a pair is its own judgement of the pair's final revision — the round that
decided it, the text the person sees.  A critic *accepts* when the score it gave reaches the run's
threshold; the verifier *accepts* when it found every claim supported (none unsupported, none
contradicted; no claims at all leaves nothing unsupported).  A teacher that was both critic and
verifier of that revision said two things of it, and accepts only when both accept: a critic that
likes the text but whose own verification found an unsupported claim did not vouch for the pair.
Teachers named on the revision that judged nothing there (none, for a decided pair: its last round
was accepted, so nothing rewrote it) are given no verdict.

Pairs recorded before each critic's score was kept (a revision without ``critic_scores``) hold only
the critics' combined score, so there every teacher named on the final revision is given the pair's
verdict: *accept* when that combined score reaches the threshold and every claim is supported.  With
one teacher per role that is each teacher's own verdict; with several it cannot tell them apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .journal import RunJournal

__all__ = [
    "Kappa",
    "TeacherAgreement",
    "cohens_kappa",
    "decided_pairs",
    "final_revision",
    "teacher_agreement",
    "teacher_verdict",
]

SUPPORTED = "supported"


@dataclass(frozen=True, slots=True)
class Kappa:
    """Cohen's κ of two raters over ``n`` items, with its parts; ``value`` is None when κ is not defined."""

    n: int
    observed: float  # p_o: the share of items both raters judged alike
    expected: float  # p_e: the share they would judge alike by chance, at their own rates
    value: float | None
    undefined_reason: str = ""

    @property
    def defined(self) -> bool:
        return self.value is not None


def cohens_kappa(ratings: Iterable[tuple[bool, bool]]) -> Kappa:
    """κ of two raters' accept (True) / reject (False) verdicts, one (first, second) tuple per item."""
    pairs = list(ratings)
    n = len(pairs)
    if n == 0:
        return Kappa(0, 0.0, 0.0, None, "no pair was decided by both yet")
    observed = sum(first == second for first, second in pairs) / n
    first_yes = sum(first for first, _ in pairs) / n
    second_yes = sum(second for _, second in pairs) / n
    expected = first_yes * second_yes + (1 - first_yes) * (1 - second_yes)
    if expected >= 1.0:
        said = "accepted" if first_yes == 1.0 else "rejected"
        return Kappa(
            n, observed, expected, None, f"both {said} every one of the {n} pairs (p_e = 1): nothing to tell apart"
        )
    return Kappa(n, observed, expected, (observed - expected) / (1 - expected))


def final_revision(pair: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pair's last revision (the text the teachers accepted), or None for a pair without revisions."""
    revisions = pair.get("revisions") or []
    return revisions[-1] if revisions else None


def teacher_verdict(pair: Mapping[str, Any], threshold: float) -> dict[str, bool]:
    """teacher → accept? for every teacher that judged the pair's final revision (see the module docstring)."""
    last = final_revision(pair)
    if last is None:
        return {}
    claims = [str(claim) for claim in last.get("claims") or []]
    all_supported = all(claim.partition(":")[0].strip() == SUPPORTED for claim in claims)
    scores: Mapping[str, Any] = last.get("critic_scores") or {}
    if not scores:  # recorded before per-critic scores: the combined verdict, for every teacher named
        accept = float(last.get("score") or 0.0) >= threshold and all_supported
        return {str(teacher): accept for teacher in last.get("teachers") or []}
    verdicts = {str(critic): float(score) >= threshold for critic, score in scores.items()}
    verifier = str(last.get("verifier") or "")
    if verifier:
        verdicts[verifier] = verdicts.get(verifier, True) and all_supported
    return verdicts


@dataclass(frozen=True, slots=True)
class TeacherAgreement:
    """One teacher against the person, over the decided pairs it judged."""

    teacher: str
    kappa: Kappa
    teacher_accepted: int  # pairs the teacher's verdict accepted
    person_approved: int  # of the same pairs, those the person approved

    @property
    def n(self) -> int:
        return self.kappa.n


def teacher_agreement(decided: Iterable[tuple[Mapping[str, Any], float, bool]]) -> list[TeacherAgreement]:
    """κ per teacher from ``(pair JSON, its run's threshold, approved by the person?)``, by teacher name."""
    ratings: dict[str, list[tuple[bool, bool]]] = {}
    for pair, threshold, approved in decided:
        for teacher, accept in teacher_verdict(pair, threshold).items():
            ratings.setdefault(teacher, []).append((accept, approved))
    return [
        TeacherAgreement(
            teacher,
            cohens_kappa(given),
            sum(accept for accept, _ in given),
            sum(approved for _, approved in given),
        )
        for teacher, given in sorted(ratings.items())
    ]


def decided_pairs(journal: RunJournal) -> Iterator[tuple[dict[str, Any], float, bool]]:
    """``(pair, its run's threshold, approved?)`` for every pair a person decided, the pair reduced to its
    final revision (all a verdict reads): SQLite picks it out, so a queue of many decided pairs is not
    parsed whole on every look at the review page."""
    thresholds = {
        run_id: float(json.loads(settings).get("threshold", 0.8))
        for run_id, settings in journal.conn.execute(
            "SELECT id, settings FROM distill_runs WHERE id IN (SELECT DISTINCT run_id FROM distill_reviews)"
        )
    }
    rows = journal.conn.execute(
        "SELECT r.run_id, r.status, json_extract(t.pair, '$.revisions[#-1]') FROM distill_reviews r"
        " JOIN distill_tasks t ON t.run_id = r.run_id AND t.position = r.position"
        " WHERE r.status IN ('approved', 'rejected') ORDER BY r.run_id, r.position"
    )
    for run_id, status, last in rows:
        revisions = [json.loads(last)] if last is not None else []
        yield {"revisions": revisions}, thresholds[run_id], status == "approved"
