"""Cohen's κ between each teacher's verdicts and a person's review decisions, on hand-computed examples, and
``arcticcodex review agreement`` on a reviewed workspace; two critics of one run that disagree with each other
get their own κ, from the score each gave, on /review."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.distill.review_agreement import cohens_kappa, teacher_agreement, teacher_verdict
from arcticcodex.human_review import HumanReview
from arcticcodex.studio import create_app
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import make_root, write_prompts
from test_studio import get
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


def judged(scores: dict[str, float], verifier: str = "", claims: tuple[str, ...] = ("supported: a",)) -> dict[str, Any]:
    """A pair whose final revision records each critic's own score (combined: their mean) and its verifier."""
    last = {
        "round": 1,
        "score": sum(scores.values()) / len(scores),
        "claims": list(claims),
        "teachers": sorted({*scores, *([verifier] if verifier else [])}),
        "critic_scores": scores,
        **({"verifier": verifier} if verifier else {}),
    }
    return {"revisions": [last]}


def test_each_critic_is_judged_by_its_own_score() -> None:
    # combined .825 would accept for both; each critic's own score says otherwise for one of them
    assert teacher_verdict(judged({"lenient": 0.95, "strict": 0.7}), 0.8) == {"lenient": True, "strict": False}
    assert teacher_verdict(judged({"lenient": 0.8, "strict": 0.79}), 0.8) == {"lenient": True, "strict": False}


def test_the_verifier_is_judged_by_its_claims_and_a_critic_that_also_verified_by_both() -> None:
    unsupported = ("supported: a", "unsupported: b")
    # a verifier that is no critic: its claims alone
    assert teacher_verdict(judged({"critic": 0.9}, "checker"), 0.8) == {"critic": True, "checker": True}
    assert teacher_verdict(judged({"critic": 0.9}, "checker", unsupported), 0.8) == {"critic": True, "checker": False}
    assert teacher_verdict(judged({"critic": 0.5}, "checker"), 0.8) == {"critic": False, "checker": True}
    # critic and verifier at once: accepts only when its score and its claims both accept
    assert teacher_verdict(judged({"both": 0.9, "other": 0.9}, "both", unsupported), 0.8) == {
        "both": False,
        "other": True,
    }
    assert teacher_verdict(judged({"both": 0.7, "other": 0.9}, "both"), 0.8) == {"both": False, "other": True}
    assert teacher_verdict(judged({"both": 0.9, "other": 0.7}, "both"), 0.8) == {"both": True, "other": False}


def test_pairs_without_per_critic_scores_keep_the_combined_verdict() -> None:
    old = {"revisions": [{"round": 1, "score": 0.85, "claims": ["supported: a"], "teachers": ["lenient", "strict"]}]}
    assert teacher_verdict(old, 0.8) == {"lenient": True, "strict": True}
    mixed = [(old, 0.8, False), (judged({"lenient": 0.95, "strict": 0.7}), 0.8, False)]
    lenient, strict = teacher_agreement(mixed)
    assert (lenient.n, lenient.teacher_accepted, strict.n, strict.teacher_accepted) == (2, 2, 2, 1)


def test_two_critics_that_disagree_with_each_other_get_different_kappas() -> None:
    decided = [  # (lenient's score, strict's score, approved?)
        (0.95, 0.90, True),  # both accept, approved
        (0.90, 0.60, True),  # lenient accepts, strict rejects, approved
        (0.85, 0.50, False),  # lenient accepts, strict rejects, rejected
        (0.90, 0.85, False),  # both accept, rejected
        (0.60, 0.40, False),  # both reject, rejected
        (0.92, 0.70, True),  # lenient accepts, strict rejects, approved
    ]
    lenient, strict = teacher_agreement(
        (judged({"lenient": a, "strict": b}), 0.8, approved) for a, b, approved in decided
    )
    # lenient: accepts 5 of 6, the person approves 3; agreed on 1, 2, 6 (accept/approve) and 5 (reject/reject)
    # p_o = 4/6, p_e = 5/6·3/6 + 1/6·3/6 = 1/2, κ = (2/3 − 1/2) / (1/2) = 1/3
    assert (lenient.teacher, lenient.n, lenient.teacher_accepted, lenient.person_approved) == ("lenient", 6, 5, 3)
    assert lenient.kappa.observed == pytest.approx(4 / 6) and lenient.kappa.expected == pytest.approx(0.5)
    assert lenient.kappa.value == pytest.approx(1 / 3)
    # strict: accepts 2 of 6 (1, 4); agreed on 1, 3, 5: p_o = 1/2, p_e = 2/6·3/6 + 4/6·3/6 = 1/2, κ = 0
    assert (strict.teacher, strict.n, strict.teacher_accepted, strict.person_approved) == ("strict", 6, 2, 3)
    assert strict.kappa.value == pytest.approx(0.0)


def test_review_shows_each_critic_of_one_run_with_its_own_kappa(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    """Two critics of one run (``gpu``, also the verifier, and ``strict``, on a server of its own so each
    answers from its own script), combined by their mean; a person decides; /review shows two κ."""
    with FakeOpenAIServer(model="fake-model") as strict_server:
        root = make_root(acx, tmp_path, server)
        acx.add_teacher(root, strict_server, name="strict", model="fake-model")
        config = root / "arcticcodex.toml"
        config.write_text(config.read_text() + '\n[teacher_pool]\ncritics = ["gpu", "strict"]\naggregate = "mean"\n')
        gpu_scores, strict_scores = [0.95, 0.95, 0.7, 0.9], [0.9, 0.7, 0.95, 0.75]  # means .925, .825 ×3: all pass
        server.script("critic", [{"score": s, "criteria": {"grounding": s}, "weaknesses": []} for s in gpu_scores])
        strict_server.script("critic", [{"score": s, "weaknesses": []} for s in strict_scores])
        supported = {"claims": [{"claim": "it says so", "verdict": "supported", "evidence": [1], "note": ""}]}
        server.script("verifier", [supported] * 4)
        prompts = [
            {"instruction": f"How deep is Lake {name}?", "evidence": f"Lake {name} is {10 * n} m deep."}
            for n, name in enumerate(["Alpha", "Bravo", "Charlie", "Delta"], 1)
        ]
        args: list[str | Path] = ["--prompts", write_prompts(tmp_path / "lakes.jsonl", prompts), "--teachers"]
        args += ["gpu,strict", "--concurrency", "1", "--review", "--json", "--out", tmp_path / "data"]
        run = json.loads(acx("-w", root, "distill", *args, code=4).stdout)["run_id"]
        asked = [request.role for request in strict_server.requests if request.path.endswith("/chat/completions")]
        assert asked == ["critic"] * 4  # strict only criticised: gpu verified (and would have rewritten)

    with HumanReview(Workspace.open(root), by="test") as review:
        pairs = {item.id: item.pair for item in review.items(kind="pair")}  # type: ignore[union-attr]
        finals = [pairs[f"pair:{run}:{n}"]["revisions"][-1] for n in range(4)]
        assert [final["critic_scores"] for final in finals] == [
            {"gpu": g, "strict": s} for g, s in zip(gpu_scores, strict_scores, strict=True)
        ]
        assert {final["verifier"] for final in finals} == {"gpu"}
        review.decide([f"pair:{run}:0", f"pair:{run}:3"], "approved")
        review.decide([f"pair:{run}:1", f"pair:{run}:2"], "rejected", reason="not what I asked")

    page = get(create_app(Workspace.open(root)), "/review?status=approved").text
    rows = {teacher: row for teacher, row in re.findall(r'<tr id="agreement-([a-z]+)">(.*?)</tr>', page, flags=re.S)}
    # gpu accepts 0, 1, 3 (its .7 rejects 2), the person approved 0, 3: p_o = 3/4, p_e = 3/4·1/2 + 1/4·1/2 = 1/2,
    # κ = (3/4 − 1/2) / (1/2) = .5.  strict accepts 0, 2 (its .7 and .75 reject 1 and 3): p_o = 2/4,
    # p_e = 1/2·1/2 + 1/2·1/2 = 1/2, κ = 0
    assert set(rows) == {"gpu", "strict"}
    assert '<td class="number n">4</td>' in rows["gpu"] and '<td class="number kappa">0.50</td>' in rows["gpu"]
    assert '<td class="number n">4</td>' in rows["strict"] and '<td class="number kappa">0.00</td>' in rows["strict"]
    # each approved card (pairs 0 and 3) shows what each critic gave its final revision, and who verified it
    scores = re.findall(r'<p class="muted critic-scores">(.*?)</p>', page, flags=re.S)
    assert len(scores) == 2 and all("verified by gpu" in shown for shown in scores)
    assert [re.findall(r"(gpu|strict) <strong>([0-9.]+)</strong>", shown) for shown in scores] == [
        [("gpu", str(gpu_scores[n])), ("strict", str(strict_scores[n]))] for n in (0, 3)
    ]
