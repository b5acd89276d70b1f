"""The teacher loop against the fake OpenAI-compatible server over real HTTP, and as a property."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arcticcodex import compat, errors
from arcticcodex.refine import TeacherRouter
from arcticcodex.retry import RetryPolicy
from arcticcodex.teachers.entries import TeacherConfig
from arcticcodex.teachers.local_judge import LocalJudge
from arcticcodex.teachers.openai_compat import OpenAICompatibleTeacher
from arcticcodex.teachers.pool import TeacherPool
from arcticcodex.teachers.results import Critique, EvidenceItem, Rewrite, Rubric, Verification
from fakes.openai_server import FakeOpenAIServer

EVIDENCE = "Otters eat mostly fish. They also eat crabs and frogs."


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


def run(coroutine_factory: object, *closing: object) -> object:
    """Run a coroutine on a fresh loop and close the teachers' connections before the loop ends."""

    async def main() -> object:
        try:
            return await coroutine_factory()  # type: ignore[operator]
        finally:
            for item in closing:
                await item.aclose()  # type: ignore[attr-defined]

    return asyncio.run(main())


def teacher(server: FakeOpenAIServer, name: str = "fake", **overrides: object) -> OpenAICompatibleTeacher:
    config = TeacherConfig(
        name=name, preset="vllm", model="fake-model", base_url=server.base_url, timeout=2.0, **overrides
    )  # type: ignore[arg-type]
    return OpenAICompatibleTeacher(config, retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05), seed=1)


def test_seed_example_runs_against_the_fake(server: FakeOpenAIServer) -> None:
    server.script("critic", [{"score": 0.4, "suggestions": ["cite crabs"]}, {"score": 0.92}])
    server.script("rewriter", [{"text": "Otters eat mostly fish, and also crabs.", "changes": ["added crabs"]}])
    client = compat.DeepSeekClient(api_key="sk-test", base_url=server.base_url, model="deepseek-v4-flash")
    router = compat.TeacherRouter(deepseek_client=client)
    result = router.draft_critique_revise(draft="Otters eat fish.", evidence=EVIDENCE, rubric="be accurate")
    assert result["quality_score"] == 0.92
    assert result["iterations_used"] == 2
    assert result["final_text"] == "Otters eat mostly fish, and also crabs."
    assert result["threshold_reached"] is True
    first = server.requests[0]
    assert first.body["model"] == "deepseek-v4-flash"
    assert first.body["response_format"] == {"type": "json_object"}
    assert first.body["temperature"] == 0.2
    assert first.body["messages"][0]["role"] == "system" and "critic" in first.body["messages"][0]["content"]
    assert "JSON" in first.body["messages"][1]["content"] and EVIDENCE in first.body["messages"][1]["content"]
    assert first.headers["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize(
    ("faults", "attempts"),
    [(["429:retry-after=0"], 2), (["500"], 2), (["503", "502"], 3), (["timeout:5"], 2), (["drop"], 2)],
)
def test_transient_faults_are_retried(server: FakeOpenAIServer, faults: list[str], attempts: int) -> None:
    server.inject(*faults)
    fake = teacher(server)
    critique = run(lambda: fake.critique("Otters eat fish.", [EvidenceItem(number=1, text=EVIDENCE)], Rubric()), fake)
    assert critique.score == 0.9 and critique.call is not None and critique.call.attempts == attempts


@pytest.mark.parametrize(
    "fault", ["fenced-json", "invalid-json", "truncated-json", "empty", "blank", "non-numeric-score"]
)
def test_bad_replies_are_read_or_reasked_once(server: FakeOpenAIServer, fault: str) -> None:
    server.inject(fault, role="critic")
    fake = teacher(server)
    critique = run(lambda: fake.critique("Otters eat fish.", [], Rubric()), fake)
    assert critique.score == 0.9
    reasked = fault != "fenced-json"
    assert len(server.requests) == (2 if reasked else 1)
    assert critique.call is not None and any(note.startswith("re-asked") for note in critique.call.notes) == reasked


def test_a_failure_is_an_error_never_a_pass(server: FakeOpenAIServer) -> None:
    server.inject("500", "500", "500", "401")
    down = teacher(server, name="down")
    router = TeacherRouter(pool=TeacherPool([down]))
    result = run(lambda: router.refine("Otters eat fish.", [EvidenceItem(number=1, text=EVIDENCE)]), down)
    assert result.status == "failed" and not result.accepted
    assert "500" in (result.failure or "")
    second = run(lambda: router.refine("Otters eat fish.", []), down)
    assert second.status == "failed" and "refused" in (second.failure or "")


def test_fallback_to_the_next_teacher_and_scores_are_clamped(server: FakeOpenAIServer) -> None:
    server.inject("402", "score:1.02")
    pool = TeacherPool([teacher(server, name="broke"), teacher(server, name="backup")])
    critique = run(lambda: pool.critique("Otters eat fish.", [], Rubric()), pool)
    assert critique.score == 1.0 and critique.call is not None
    assert critique.call.teacher == "backup" and any("clamped" in note for note in critique.call.notes)


def test_missing_api_key_names_the_variable() -> None:
    config = TeacherConfig(
        name="ds", preset="deepseek", model="m", base_url="http://127.0.0.1:9", api_key_env="DEEPSEEK_API_KEY"
    )
    with pytest.raises(errors.ConfigError, match="DEEPSEEK_API_KEY"):
        OpenAICompatibleTeacher(config, environ={})


class ScriptedTeacher:
    """A teacher whose critiques follow a script: for the loop's property test."""

    def __init__(self, scores: list[float], contradictions: list[bool], rewrites: list[str]) -> None:
        self.name, self.model = "scripted", "script"
        self.scores, self.contradictions, self.rewrites = list(scores), list(contradictions), list(rewrites)
        self.critiqued: list[str] = []

    async def critique(self, text: str, evidence: object, rubric: object, *, instruction: str = "") -> Critique:
        self.critiqued.append(text)
        return Critique(score=self.scores.pop(0))

    async def verify(self, text: str, evidence: object) -> Verification:
        verdict = "contradicted" if self.contradictions.pop(0) else "supported"
        return Verification(claims=[{"claim": text, "verdict": verdict}])  # type: ignore[list-item]

    async def rewrite(
        self, text: str, critique: object, verification: object, evidence: object, *, instruction: str = ""
    ) -> Rewrite:
        return Rewrite(text=self.rewrites.pop(0))

    async def aclose(self) -> None:
        return None


@settings(max_examples=200)
@given(
    scores=st.lists(st.floats(min_value=0, max_value=1), min_size=3, max_size=3),
    contradictions=st.lists(st.booleans(), min_size=3, max_size=3),
    threshold=st.sampled_from([0.5, 0.8, 0.95]),
)
def test_accepted_iff_last_critiqued_score_passes_without_contradiction(
    scores: list[float], contradictions: list[bool], threshold: float
) -> None:
    scripted = ScriptedTeacher(scores, contradictions, ["second draft", "third draft"])
    router = TeacherRouter(pool=TeacherPool([scripted]), threshold=threshold)
    result = asyncio.run(router.refine("first draft", [EvidenceItem(number=1, text="e")]))
    last = len(result.rounds) - 1
    assert result.final_text == scripted.critiqued[-1] and result.final_text.strip()
    assert result.score == scores[last]
    assert result.accepted == (scores[last] >= threshold and not contradictions[last])
    for earlier in range(last):
        assert scores[earlier] < threshold or contradictions[earlier]


def test_local_judge_scores_grounded_text_higher_and_rewrites_extractively() -> None:
    judge = LocalJudge()
    evidence = [EvidenceItem(number=1, text=EVIDENCE), EvidenceItem(number=2, text="Sea otters live in kelp forests.")]
    grounded = asyncio.run(
        judge.critique("Otters eat mostly fish. Sea otters live in kelp forests.", evidence, Rubric())
    )
    invented = asyncio.run(judge.critique("Otters are excellent pilots. They fly to Mars.", evidence, Rubric()))
    assert grounded.score > invented.score
    assert grounded.call is not None and "no LLM" in grounded.call.model
    wrong = asyncio.run(judge.verify("Otters eat mostly fish. They never eat crabs and frogs.", evidence))
    assert [claim.verdict for claim in wrong.claims] == ["supported", "contradicted"]
    rewrite = asyncio.run(judge.rewrite("They fly to Mars.", invented, None, evidence))
    assert rewrite.text.strip() and "Mars" not in rewrite.text
    router = TeacherRouter(pool=TeacherPool([judge]))
    result = asyncio.run(router.refine("Otters fly to Mars.", evidence))
    assert result.final_text.strip() and json.dumps(result.to_json())
