"""Pool behaviour: ensembles, circuit breaker, Retry-After, per-endpoint concurrency, accounting."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from arcticcodex import errors
from arcticcodex.retry import RetryPolicy, parse_retry_after
from arcticcodex.teachers.entries import TeacherConfig, load_teachers
from arcticcodex.teachers.faults import CircuitBreaker
from arcticcodex.teachers.ledger import Ledger
from arcticcodex.teachers.openai_compat import OpenAICompatibleTeacher
from arcticcodex.teachers.pool import TeacherPool
from arcticcodex.teachers.results import Rubric
from fakes.openai_server import FakeOpenAIServer


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


def make(server: FakeOpenAIServer, name: str, *, ledger: Ledger | None = None, **kw: object) -> OpenAICompatibleTeacher:
    config = TeacherConfig(name=name, preset="vllm", model="fake-model", base_url=server.base_url, timeout=2.0, **kw)  # type: ignore[arg-type]
    return OpenAICompatibleTeacher(config, retry=RetryPolicy(max_attempts=2, base_delay=0.01), ledger=ledger, seed=3)


def run(pool: TeacherPool, coroutine_factory: object) -> object:
    async def main() -> object:
        try:
            return await coroutine_factory()  # type: ignore[operator]
        finally:
            await pool.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize(("aggregate", "expected"), [("mean", 0.6), ("min", 0.3), ("majority", 0.6)])
def test_ensemble_critics_aggregate_and_record_disagreement(
    server: FakeOpenAIServer, aggregate: str, expected: float
) -> None:
    server.script("critic", [{"score": 0.3}, {"score": 0.6}, {"score": 0.9}])
    pool = TeacherPool(
        [make(server, "a"), make(server, "b"), make(server, "c")], critics=["a", "b", "c"], aggregate=aggregate
    )
    critique = run(pool, lambda: pool.critique("text", [], Rubric()))
    assert critique.score == pytest.approx(expected)  # type: ignore[attr-defined]
    assert critique.disagreement == pytest.approx(0.6) and len(critique.members) == 3  # type: ignore[attr-defined]


def test_an_ensemble_with_a_failed_member_fails(server: FakeOpenAIServer) -> None:
    # with "min", the strict critic failing must not leave the lenient one to accept alone
    server.inject("401")
    pool = TeacherPool([make(server, "a"), make(server, "b")], critics=["a", "b"], aggregate="min")
    with pytest.raises(errors.TeacherUnavailableError, match="ensemble is incomplete"):
        run(pool, lambda: pool.critique("text", [], Rubric()))


def test_retry_after_is_honoured(server: FakeOpenAIServer) -> None:
    """The retry reaches the server no sooner than Retry-After said, by the server's own log.

    A lower bound on the gap between two requests the server recorded: a slow machine only widens it.
    How close to Retry-After the retry comes is measured in benchmarks/waits.py.
    """
    server.inject("429:retry-after=1")
    pool = TeacherPool([make(server, "a")])
    assert run(pool, lambda: pool.critique("text", [], Rubric())).score == 0.9  # type: ignore[attr-defined]
    refused, retried = server.requests
    assert (refused.fault, retried.fault) == ("429:retry-after=1", None)
    assert retried.timestamp - refused.timestamp >= 1.0


def test_plain_429_backs_off_and_a_long_retry_after_gives_up(server: FakeOpenAIServer) -> None:
    server.inject("429")
    pool = TeacherPool([make(server, "a")])
    assert run(pool, lambda: pool.critique("text", [], Rubric())).score == 0.9  # type: ignore[attr-defined]
    server.inject("429:retry-after=3600")  # a daily quota: no point waiting an hour
    pool = TeacherPool([make(server, "a")])
    with pytest.raises(errors.TeacherUnavailableError, match="429"):
        run(pool, lambda: pool.critique("text", [], Rubric()))


def test_circuit_breaker_opens_and_probes_after_the_cooldown() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown=10.0, clock=lambda: now[0])
    breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert not breaker.allow() and breaker.reopens_in == 10.0
    now[0] = 10.5
    assert breaker.allow()  # one probe …
    assert not breaker.allow()  # … and only one while it is out
    breaker.record_failure()
    assert not breaker.allow()
    now[0] = 21.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.allow()


def test_an_open_circuit_fails_fast_and_the_pool_falls_back(server: FakeOpenAIServer) -> None:
    broken = make(server, "broken")
    broken.breaker = CircuitBreaker(threshold=1, cooldown=60.0)
    broken.breaker.record_failure()
    pool = TeacherPool([broken, make(server, "backup")])
    critique = run(pool, lambda: pool.critique("text", [], Rubric()))
    assert critique.call.teacher == "backup"  # type: ignore[attr-defined]
    assert all(request.headers for request in server.requests) and len(server.requests) == 1


def test_concurrency_per_endpoint_is_enforced(server: FakeOpenAIServer) -> None:
    server.latency = 0.05
    teacher = make(server, "a", concurrency=4)
    pool = TeacherPool([teacher])

    async def many() -> None:
        await asyncio.gather(*(pool.critique(f"text {i}", [], Rubric()) for i in range(20)))

    run(pool, many)
    times = sorted(request.timestamp for request in server.requests)
    # with at most 4 in flight and 50 ms each, 20 requests need at least 5 waves
    assert times[-1] - times[0] >= 4 * 0.05 * 0.9


def test_ledger_accounts_tokens_and_money(server: FakeOpenAIServer) -> None:
    ledger = Ledger()
    teacher = make(server, "priced", ledger=ledger, price_input=1.0, price_output=2.0)
    pool = TeacherPool([teacher], ledger=ledger)
    run(pool, lambda: pool.critique("some text to judge", [], Rubric()))
    stats = ledger.stats["priced"]
    assert stats.calls == 1 and stats.prompt_tokens > 0 and stats.completion_tokens > 0
    assert stats.cost_usd == pytest.approx((stats.prompt_tokens * 1.0 + stats.completion_tokens * 2.0) / 1e6)
    assert ledger.to_json()["spent_usd"] == round(stats.cost_usd, 6)


def test_retry_after_header_formats() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_teacher_configuration_is_validated(tmp_path: object) -> None:
    from pathlib import Path

    from arcticcodex.config import Config

    def config(raw: dict[str, object]) -> Config:
        return Config(Path("arcticcodex.toml").resolve(), raw)

    teachers, pool = load_teachers(config({"teachers": [{"name": "ds", "preset": "deepseek"}]}))
    assert teachers[0].model == "deepseek-v4-flash" and teachers[0].api_key_env == "DEEPSEEK_API_KEY"
    assert pool.aggregate == "mean"
    for bad, message in [
        ({"teachers": [{"name": "x", "preset": "nope"}]}, "unknown preset"),
        ({"teachers": [{"name": "x", "preset": "vllm"}]}, "needs a model"),
        ({"teachers": [{"name": "x", "preset": "vllm", "model": "m", "colour": 1}]}, "unknown settings"),
        ({"teachers": [{"name": "x", "preset": "deepseek"}, {"name": "x", "preset": "openai"}]}, "unique"),
        ({"teachers": [], "teacher_pool": {"aggregate": "median"}}, "aggregate"),
        ({"teachers": [], "teacher_pool": {"critics": ["ghost"]}}, "unknown teacher"),
    ]:
        with pytest.raises(errors.ConfigError, match=message):
            load_teachers(config(bad))


@pytest.mark.parametrize("score", ["6", "Infinity", "-3"])
def test_out_of_scale_scores_are_reasked_not_clamped_into_a_pass(server: FakeOpenAIServer, score: str) -> None:
    server.inject(f"score:{score}", role="critic")
    pool = TeacherPool([make(server, "a")])
    critique = run(pool, lambda: pool.critique("text", [], Rubric()))
    assert critique.score == 0.9 and len(server.requests) == 2  # type: ignore[attr-defined]


def test_budget_is_checked_when_a_slot_frees_up(server: FakeOpenAIServer) -> None:
    server.latency = 0.02
    ledger = Ledger(budget_usd=0.00005)
    teacher = make(server, "priced", ledger=ledger, price_input=1.0, price_output=1.0, concurrency=2)
    pool = TeacherPool([teacher], ledger=ledger)

    async def many() -> list[object]:
        return await asyncio.gather(*(pool.critique(f"t{i}", [], Rubric()) for i in range(40)), return_exceptions=True)

    outcomes = run(pool, many)
    assert any(isinstance(o, errors.BudgetExceededError) for o in outcomes)  # type: ignore[union-attr]
    assert len(server.requests) < 10  # not all 40: calls queued behind the gate re-check the budget
