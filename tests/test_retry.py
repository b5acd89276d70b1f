"""One retry policy for the teachers and the Vast client, honouring ``Retry-After`` in both its forms.

RFC 9110 §10.2.3 allows delta-seconds or an HTTP-date; the policy turns either into seconds from now.
The clients are driven against their fakes on 127.0.0.1, which answer 429 with an HTTP-date; that the
client waited is read from the fake's own request log (a lower bound on the gap between the refused
request and its retry: a slow machine only widens it), never from a wall clock in the test.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time

import httpx2 as httpx
import pytest

from arcticcodex.gpu.vast import VastClient
from arcticcodex.retry import RetryPolicy, parse_retry_after
from arcticcodex.teachers.entries import TeacherConfig
from arcticcodex.teachers.openai_compat import OpenAICompatibleTeacher
from arcticcodex.teachers.results import Rubric
from conftest import VAST_KEY
from fakes.openai_server import FakeOpenAIServer
from fakes.vast_server import FakeVastServer

NOW = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT


# -- parsing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), (" 120 ", 120.0), ("0", 0.0), ("1.5", 1.5)])
def test_delta_seconds(header: str, seconds: float) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize(
    "header",
    [
        "Wed, 21 Oct 2015 07:28:30 GMT",  # IMF-fixdate, the form servers send
        "Wednesday, 21-Oct-15 07:28:30 GMT",  # obsolete RFC 850 form
        "Wed Oct 21 07:28:30 2015",  # obsolete asctime form: no zone, GMT by definition
    ],
)
def test_an_http_date_in_the_future_is_the_seconds_until_it(header: str) -> None:
    assert parse_retry_after(header, now=NOW) == 30.0


def test_an_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=NOW) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=NOW) == 0.0


def test_an_http_date_is_relative_to_the_clock_by_default() -> None:
    ahead = email.utils.formatdate(time.time() + 3600, usegmt=True)
    assert 3000 < (parse_retry_after(ahead) or 0.0) <= 3600


@pytest.mark.parametrize("header", [None, "", "  ", "soon", "-5", "nan", "NaN", "inf", "Wed, 99 Foo 2015 07:28:00 GMT"])
def test_garbage_negative_and_non_finite_values_are_no_retry_after(header: str | None) -> None:
    assert parse_retry_after(header, now=NOW) is None


# -- the policy ------------------------------------------------------------------------------------------


def test_backoff_is_exponential_jittered_and_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=5.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        delays = [policy.delay(attempt, None, rng) for _ in range(50)]
        assert all(d is not None and ceiling / 2 <= d <= ceiling for d in delays), (attempt, delays)
    assert policy.delay(10, None, rng) is None  # the last attempt gets no wait: there is no next one


def test_a_retry_after_within_the_limit_is_waited_for_and_a_longer_one_is_each_callers_choice() -> None:
    teacher = RetryPolicy(max_retry_after=60.0)  # the teachers' default: give up, the pool moves on
    vast = RetryPolicy(base_delay=1.0, max_delay=1.0, beyond_max_retry_after="backoff")
    assert teacher.delay(1, 60.0) == 60.0 and vast.delay(1, 0.0) == 0.0
    assert teacher.delay(1, 3600.0) is None
    assert 0.5 <= (vast.delay(1, 3600.0) or 0.0) <= 1.0
    assert teacher.delay(teacher.max_attempts, 1.0) is None


# -- the clients against their fakes ---------------------------------------------------------------------


def test_a_teacher_waits_until_the_http_date_and_then_succeeds(server: FakeOpenAIServer) -> None:
    server.inject("429:retry-after-date=1")
    config = TeacherConfig(name="a", preset="vllm", model="fake-model", base_url=server.base_url, timeout=5.0)
    # a backoff of at most 10 ms: only the header can account for a gap of a second
    teacher = OpenAICompatibleTeacher(config, retry=RetryPolicy(max_attempts=2, base_delay=0.01), seed=3)

    async def critique() -> float:
        try:
            return (await teacher.critique("text", [], Rubric())).score
        finally:
            await teacher.aclose()

    assert asyncio.run(critique()) == 0.9
    refused, retried = server.requests
    assert (refused.fault, retried.fault) == ("429:retry-after-date=1", None)
    assert retried.timestamp - refused.timestamp >= 1.0


def test_the_vast_client_waits_until_the_http_date_and_then_succeeds(vast: FakeVastServer) -> None:
    vast.inject("429-retry-date:1", path="/api/v0/users/current")
    with VastClient(VAST_KEY, base_url=vast.url, backoff=0.001, max_backoff=0.01) as client:
        assert client.balance() >= 0
    refused, retried = [r for r in vast.requests if r.path.startswith("/api/v0/users/current")]
    assert (refused.status, refused.fault, retried.status) == (429, "429-retry-date:1", 200)
    assert retried.timestamp - refused.timestamp >= 1.0


def test_the_fakes_send_retry_after_as_an_http_date(server: FakeOpenAIServer, vast: FakeVastServer) -> None:
    """Fidelity: the header is an IMF-fixdate in GMT, at least the asked seconds ahead."""
    server.inject("429:retry-after-date=5")
    vast.inject("429-retry-date:5")
    before = time.time()
    teacher_answer = httpx.post(f"{server.base_url}/chat/completions", json={"model": "fake-model", "messages": []})
    vast_answer = httpx.get(f"{vast.url}/api/v0/users/current", headers={"Authorization": f"Bearer {VAST_KEY}"})
    for answer in (teacher_answer, vast_answer):
        assert answer.status_code == 429
        header = answer.headers["retry-after"]
        assert header.endswith(" GMT")
        assert email.utils.parsedate_to_datetime(header).timestamp() >= before + 5
