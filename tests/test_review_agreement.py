"""Cohen's κ between each teacher's verdicts and a person's review decisions, on hand-computed examples, and
``arcticcodex review agreement`` on a reviewed workspace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.distill.review_agreement import cohens_kappa, teacher_agreement, teacher_verdict
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_studio_review import reviewed_workspace


def ratings(both_accept: int, only_teacher: int, only_person: int, both_reject: int) -> list[tuple[bool, bool]]:
    """(teacher accepts?, person approves?) for a 2×2 table of counts."""
    return (
        [(True, True)] * both_accept
        + [(True, False)] * only_teacher
        + [(False, True)] * only_person
        + [(False, False)] * both_reject
    )


def test_kappa_of_a_two_by_two_table() -> None:
    # p_o = 8/10; both say yes 7/10 of the time: p_e = .7·.7 + .3·.3 = .58
    # κ = (.8 − .58) / (1 − .58) = .22 / .42 ≈ .524
    kappa = cohens_kappa(ratings(6, 1, 1, 2))
    assert kappa.n == 10 and kappa.observed == pytest.approx(0.8) and kappa.expected == pytest.approx(0.58)
    assert kappa.value == pytest.approx(0.22 / 0.42) and kappa.defined


def test_a_teacher_that_accepts_everything_is_no_better_than_chance() -> None:
    # the teacher says yes to 4 of 4, the person to 2: p_o = .5, p_e = 1·.5 + 0·.5 = .5, κ = 0
    kappa = cohens_kappa(ratings(2, 2, 0, 0))
    assert (kappa.observed, kappa.expected, kappa.value) == (0.5, 0.5, 0.0)


def test_complete_disagreement_is_minus_one() -> None:
    kappa = cohens_kappa(ratings(0, 1, 1, 0))  # p_o = 0, p_e = .5·.5 + .5·.5 = .5
    assert kappa.value == pytest.approx(-1.0)


@pytest.mark.parametrize(("table", "said"), [((3, 0, 0, 0), "accepted"), ((0, 0, 0, 2), "rejected")])
def test_kappa_is_not_defined_when_chance_agreement_is_certain(table: tuple[int, int, int, int], said: str) -> None:
    kappa = cohens_kappa(ratings(*table))
    n = sum(table)
    assert kappa.value is None and not kappa.defined and kappa.expected == 1.0 and kappa.observed == 1.0
    assert kappa.undefined_reason == f"both {said} every one of the {n} pairs (p_e = 1): nothing to tell apart"


def test_kappa_of_nothing_is_not_defined() -> None:
    kappa = cohens_kappa([])
    assert (kappa.n, kappa.value) == (0, None) and "no pair was decided" in kappa.undefined_reason


def pair(score: float, claims: list[str], teachers: list[str]) -> dict[str, Any]:
    early = {"round": 1, "score": 0.2, "claims": ["contradicted: x"], "teachers": ["rewriter"]}
    return {"revisions": [early, {"round": 2, "score": score, "claims": claims, "teachers": teachers}]}


def test_a_teachers_verdict_reads_the_final_revision() -> None:
    judged = ["critic", "verifier"]
    assert teacher_verdict(pair(0.85, ["supported: a", "supported: b"], judged), 0.8) == dict.fromkeys(judged, True)
    assert teacher_verdict(pair(0.85, ["supported: a"], judged), 0.9) == dict.fromkeys(judged, False)  # below
    assert teacher_verdict(pair(0.95, ["supported: a", "unsupported: b"], judged), 0.8) == dict.fromkeys(judged, False)
    assert teacher_verdict(pair(0.95, [], ["critic"]), 0.8) == {"critic": True}  # no claims: nothing unsupported
    assert teacher_verdict({"revisions": []}, 0.8) == {}  # the earlier round's rewriter is not asked


def test_agreement_per_teacher_over_the_decided_pairs() -> None:
    supported, unsupported = ["supported: a"], ["unsupported: a"]
    decided = [
        (pair(0.9, supported, ["critic", "verifier"]), 0.8, True),  # both accept, approved
        (pair(0.9, unsupported, ["critic", "verifier"]), 0.8, False),  # both reject, rejected
        (pair(0.9, supported, ["critic"]), 0.8, False),  # critic accepts, rejected
        (pair(0.9, unsupported, ["critic"]), 0.8, True),  # critic rejects, approved
    ]
    critic, verifier = teacher_agreement(decided)
    assert (critic.teacher, critic.n, critic.teacher_accepted, critic.person_approved) == ("critic", 4, 2, 2)
    assert critic.kappa.value == pytest.approx(0.0)  # p_o = .5, p_e = .5
    assert (verifier.teacher, verifier.n) == ("verifier", 2) and verifier.kappa.value == pytest.approx(1.0)


def test_the_command_line_shows_each_teachers_agreement(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root, lakes, otters = reviewed_workspace(acx, tmp_path, server)
    assert "no pair of a reviewed run has been decided yet" in acx("-w", root, "review", "agreement").stdout
    acx("-w", root, "review", "approve", f"pair:{lakes}:0", f"pair:{lakes}:1", f"pair:{otters}:0")
    acx("-w", root, "review", "reject", f"pair:{lakes}:2", "--reason", "thin")
    rows = {row["teacher"]: row for row in json.loads(acx("-w", root, "review", "agreement", "--json").stdout)}
    # gpu accepted 0, 2 (1's claim is unsupported); the person approved 0, 1: p_o = 1/3, p_e = 2/3·2/3 + 1/3·1/3
    # = 5/9, κ = (1/3 − 5/9) / (4/9) = −1/2
    assert (rows["gpu"]["n"], rows["gpu"]["teacher_accepted"], rows["gpu"]["person_approved"]) == (3, 2, 2)
    assert rows["gpu"]["kappa"] == pytest.approx(-0.5)
    assert rows["second"]["kappa"] is None and "p_e = 1" in rows["second"]["undefined_reason"]
    text = acx("-w", root, "review", "agreement").stdout
    assert "gpu  n=3  κ=-0.50  agreed 33%" in text and "second  n=1  κ not defined: both accepted" in text
