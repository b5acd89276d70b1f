"""The fake OpenAI server answers real clients (the openai SDK, httpx, another process) as the real APIs do.

Every test goes over real TCP on 127.0.0.1: the point of the fake is that client code runs its real
connection, timeout and error paths, so the assertions are on what the SDK raises and returns.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletion

from fakes.openai_server import FakeOpenAIServer, check_fault

SERVER_SCRIPT = Path(__file__).parent / "fakes" / "openai_server.py"
TEXT = "Einstein was born in Ulm. He later moved to Bern."
PROMPTS = {
    "critic": "You are the critic. Score the answer; reply in JSON.",
    "verifier": "You are the VERIFIER. Check every claim; reply in JSON.",
    "rewriter": "you are the rewriter. Improve the text; reply in JSON.",
    "generic": "You are a helpful assistant. Reply in JSON.",
}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(model="deepseek-chat") as fake:
        yield fake


def sync_client(server: FakeOpenAIServer, api_key: str = "sk-test") -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=api_key, max_retries=0, http_client=httpx.Client())


def messages(role: str, text: str = TEXT) -> list[Any]:
    return [{"role": "system", "content": PROMPTS[role]}, {"role": "user", "content": text}]


def ask(client: OpenAI, role: str = "generic", **kwargs: Any) -> ChatCompletion:
    return client.chat.completions.create(model="deepseek-chat", messages=messages(role), **kwargs)


def content_of(completion: ChatCompletion) -> str:
    content = completion.choices[0].message.content
    assert content is not None
    return content


def test_round_trip_has_the_exact_chat_completion_shape(server: FakeOpenAIServer) -> None:
    server.cache_hit_fraction = 0.5
    body = {"model": "deepseek-v4-flash", "messages": messages("generic")}
    with httpx.Client() as client:
        response = client.post(f"{server.base_url}/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert set(data) == {"id", "object", "created", "model", "choices", "usage"}
    assert data["id"].startswith("chatcmpl-")
    assert (data["object"], data["model"]) == ("chat.completion", "deepseek-v4-flash")
    assert abs(data["created"] - time.time()) < 60
    assert data["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": '{"text": "ok"}'}, "finish_reason": "stop"}
    ]
    prompt = (len(PROMPTS["generic"]) + len(TEXT)) // 4
    completion = len('{"text": "ok"}') // 4
    assert data["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_cache_hit_tokens": prompt // 2,
        "prompt_cache_miss_tokens": prompt - prompt // 2,
    }


def test_async_sdk_round_trip_and_deepseek_usage_fields() -> None:
    async def main(server: FakeOpenAIServer) -> ChatCompletion:
        async with AsyncOpenAI(
            base_url=server.base_url, api_key="sk", max_retries=0, http_client=httpx.AsyncClient()
        ) as client:
            return await client.chat.completions.create(model="deepseek-chat", messages=messages("critic"))

    with FakeOpenAIServer(cache_hit_fraction=1.0) as server:
        completion = asyncio.run(main(server))
    assert completion.object == "chat.completion"
    assert completion.model == "deepseek-chat"
    assert completion.choices[0].finish_reason == "stop"
    assert json.loads(content_of(completion))["score"] == 0.9
    usage = completion.usage
    assert usage is not None
    extra = usage.model_extra or {}
    assert extra["prompt_cache_hit_tokens"] == usage.prompt_tokens
    assert extra["prompt_cache_miss_tokens"] == 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_ids_count_up_and_both_paths_answer(server: FakeOpenAIServer) -> None:
    root = server.base_url.removesuffix("/v1")
    with sync_client(server) as client, OpenAI(base_url=root, api_key="k", max_retries=0) as deepseek:
        ids = [ask(client).id, ask(deepseek).id]
    assert ids == ["chatcmpl-1", "chatcmpl-2"]
    assert [r.path for r in server.requests] == ["/v1/chat/completions", "/chat/completions"]


def test_default_replies_per_role(server: FakeOpenAIServer) -> None:
    with sync_client(server) as client:
        replies = {role: json.loads(content_of(ask(client, role))) for role in PROMPTS}
    assert replies["critic"] == {
        "score": 0.9,
        "criteria": {"grounding": 0.9, "clarity": 0.9},
        "strengths": ["clear"],
        "weaknesses": [],
        "suggestions": [],
    }
    assert replies["verifier"] == {
        "claims": [{"claim": "Einstein was born in Ulm.", "verdict": "supported", "evidence": [1], "note": ""}]
    }
    assert replies["rewriter"] == {"text": TEXT, "changes": []}
    assert replies["generic"] == {"text": "ok"}
    assert [r.role for r in server.requests] == list(PROMPTS)


def test_role_comes_from_the_first_message_when_there_is_no_system_message(server: FakeOpenAIServer) -> None:
    with sync_client(server) as client:
        parts = [{"type": "text", "text": "You are the verifier. Check: "}, {"type": "text", "text": "json"}]
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": parts}])
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": ""}])
    assert [r.role for r in server.requests] == ["verifier", "generic"]


def test_scripted_replies_are_sent_in_order_then_the_default(server: FakeOpenAIServer) -> None:
    server.script("critic", [{"score": 0.2, "criteria": {}}, "not json at all"])
    server.script("generic", ["first"])
    server.set_default("rewriter", {"text": "rewritten", "changes": ["all"]})
    with sync_client(server) as client:
        assert json.loads(content_of(ask(client, "critic"))) == {"score": 0.2, "criteria": {}}
        assert content_of(ask(client, "generic")) == "first"
        assert content_of(ask(client, "critic")) == "not json at all"
        assert json.loads(content_of(ask(client, "critic")))["score"] == 0.9
        assert json.loads(content_of(ask(client, "rewriter"))) == {"text": "rewritten", "changes": ["all"]}
        server.reset()
        assert json.loads(content_of(ask(client, "rewriter"))) == {"text": TEXT, "changes": []}


@pytest.mark.parametrize(
    ("fault", "status", "error_class", "code"),
    [
        ("400", 400, openai.BadRequestError, "invalid_request_error"),
        ("401", 401, openai.AuthenticationError, "invalid_request_error"),
        ("402", 402, openai.APIStatusError, "invalid_request_error"),
        ("429", 429, openai.RateLimitError, "rate_limit_exceeded"),
        ("500", 500, openai.InternalServerError, "server_error"),
        ("502", 502, openai.InternalServerError, "bad_gateway"),
        ("503", 503, openai.InternalServerError, "server_overloaded"),
    ],
)
def test_status_faults_reach_the_sdk_as_its_own_errors(
    server: FakeOpenAIServer, fault: str, status: int, error_class: type[openai.APIStatusError], code: str
) -> None:
    server.inject(fault)
    with sync_client(server) as client:
        with pytest.raises(error_class) as caught:
            ask(client)
        assert caught.value.status_code == status
        assert caught.value.code == code
        assert set(caught.value.response.json()["error"]) == {"message", "type", "param", "code"}
        assert "retry-after" not in caught.value.response.headers
        assert content_of(ask(client)) == '{"text": "ok"}'  # one fault, one request
    assert [r.fault for r in server.requests] == [fault, None]


def test_rate_limit_with_retry_after_header() -> None:
    async def main(server: FakeOpenAIServer) -> openai.RateLimitError:
        async with AsyncOpenAI(
            base_url=server.base_url, api_key="sk", max_retries=0, http_client=httpx.AsyncClient()
        ) as client:
            try:
                await client.chat.completions.create(model="m", messages=messages("critic"))
            except openai.RateLimitError as exc:
                return exc
        raise AssertionError("no RateLimitError")

    with FakeOpenAIServer() as server:
        server.inject("429:retry-after=7")
        error = asyncio.run(main(server))
    assert error.response.headers["retry-after"] == "7"
    assert error.body == {
        "message": "Rate Limit Reached",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }


def test_faults_go_to_the_next_request_of_their_role_in_order(server: FakeOpenAIServer) -> None:
    server.inject("500", "503", role="critic")
    server.inject("empty")
    with sync_client(server) as client:
        assert content_of(ask(client, "verifier")) == ""  # the role-free fault, taken by anyone
        assert json.loads(content_of(ask(client, "generic"))) == {"text": "ok"}
        with pytest.raises(openai.InternalServerError, match="Server Error"):
            ask(client, "critic")
        with pytest.raises(openai.InternalServerError, match="Server Overloaded"):
            ask(client, "critic")
        assert json.loads(content_of(ask(client, "critic")))["score"] == 0.9
    assert [r.fault for r in server.requests] == ["empty", None, "500", "503", None]


def test_timeout_fault_makes_the_client_time_out(server: FakeOpenAIServer) -> None:
    server.inject("timeout:30")
    with sync_client(server) as client:
        with pytest.raises(openai.APITimeoutError):
            ask(client, timeout=0.3)
        # the client gave up while the server still holds that reply back: the next request is answered
        # in the meantime (a client that waited would have had the reply, not an error, 30 s later)
        assert content_of(ask(client, timeout=5)) == '{"text": "ok"}'
        assert server.in_flight == 1 and server.peak_in_flight == 2
    assert [r.fault for r in server.requests] == ["timeout:30", None]


def test_drop_fault_closes_the_connection_without_an_answer(server: FakeOpenAIServer) -> None:
    server.inject("drop")
    with sync_client(server) as client:
        with pytest.raises(openai.APIConnectionError) as caught:
            ask(client)
        assert not isinstance(caught.value, openai.APITimeoutError)
        assert content_of(ask(client)) == '{"text": "ok"}'


@pytest.mark.parametrize(
    ("fault", "expected", "finish_reason"),
    [
        ("invalid-json", "Sure! The score is high.", "stop"),
        ("fenced-json", 'Here is the JSON you asked for:\n```json\n{"score": 0.5}\n```', "stop"),
        ("truncated-json", '{"score', "length"),
        ("empty", "", "stop"),
        ("blank", " " * 16, "stop"),
        ("non-numeric-score", '{"score": "high"}', "stop"),
        ("score:1.5", '{"score": 1.5}', "stop"),
        ("score:null", '{"score": null}', "stop"),
        ("score:ninety", '{"score": "ninety"}', "stop"),
    ],
)
def test_content_faults(server: FakeOpenAIServer, fault: str, expected: str, finish_reason: str) -> None:
    server.script("critic", [{"score": 0.5}])
    server.inject(fault, role="critic")
    with sync_client(server) as client:
        faulted = ask(client, "critic")
        assert (content_of(faulted), faulted.choices[0].finish_reason) == (expected, finish_reason)
        assert content_of(ask(client, "critic")) == '{"score": 0.5}'  # a fault never uses up a scripted reply


def test_score_fault_on_a_non_json_reply_uses_the_critic_default(server: FakeOpenAIServer) -> None:
    server.script("critic", ["no json here"])
    server.inject("score:-1", role="critic")
    with sync_client(server) as client:
        reply = json.loads(content_of(ask(client, "critic")))
    assert reply["score"] == -1
    assert reply["criteria"] == {"grounding": 0.9, "clarity": 0.9}


def test_unknown_faults_are_rejected(server: FakeOpenAIServer) -> None:
    for fault in ["404", "timeout", "timeout:soon", "429:retry-after=", "score:", "Empty"]:
        with pytest.raises(ValueError, match="unknown fault"):
            server.inject(fault)
    assert check_fault("429:retry-after=30") == "429:retry-after=30"


def test_api_key_is_required_and_unauthorised_requests_are_logged() -> None:
    with FakeOpenAIServer(api_key="sk-right") as server:
        server.inject("500")
        with sync_client(server, api_key="sk-wrong") as client, pytest.raises(openai.AuthenticationError) as caught:
            ask(client)
        assert caught.value.body == {
            "message": "Authentication Fails, Your api key is invalid",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_request_error",
        }
        with httpx.Client() as plain:
            assert plain.get(f"{server.base_url}/models").status_code == 401
            assert plain.get(server.base_url.replace("/v1", "/health")).status_code == 200
        with sync_client(server, api_key="sk-right") as client, pytest.raises(openai.InternalServerError):
            ask(client)  # the fault waited for an authorised request
        assert [(r.path, r.fault) for r in server.requests] == [
            ("/v1/chat/completions", None),
            ("/v1/models", None),
            ("/health", None),
            ("/v1/chat/completions", "500"),
        ]
        assert server.requests[0].headers["authorization"] == "Bearer sk-wrong"


def test_request_log_holds_what_the_client_sent(server: FakeOpenAIServer) -> None:
    with sync_client(server) as client:
        ask(client, "verifier", temperature=0.2, response_format={"type": "json_object"}, max_tokens=500)
    (record,) = server.requests
    assert (record.method, record.path, record.role, record.fault) == ("POST", "/v1/chat/completions", "verifier", None)
    assert record.body["model"] == "deepseek-chat"
    assert record.body["messages"] == messages("verifier")
    assert record.body["response_format"] == {"type": "json_object"}
    assert record.body["temperature"] == 0.2
    assert record.headers["content-type"] == "application/json"
    assert record.headers["authorization"] == "Bearer sk-test"
    assert abs(record.timestamp - time.time()) < 60
    server.clear()
    assert server.requests == []


def test_json_mode_needs_the_word_json_and_max_tokens_truncates(server: FakeOpenAIServer) -> None:
    plain = [{"role": "user", "content": "Say something."}]
    with sync_client(server) as client:
        with pytest.raises(openai.BadRequestError, match="word 'json'"):
            client.chat.completions.create(model="m", messages=plain, response_format={"type": "json_object"})
        short = client.chat.completions.create(model="m", messages=plain, max_tokens=2)
    assert (content_of(short), short.choices[0].finish_reason) == ('{"text":', "length")


def test_models_health_and_unknown_paths(server: FakeOpenAIServer) -> None:
    with sync_client(server) as client:
        assert [model.id for model in client.models.list()] == ["deepseek-chat"]
    root = server.base_url.removesuffix("/v1")
    with httpx.Client() as plain:
        health = plain.get(f"{root}/health")
        models = plain.get(f"{root}/v1/models").json()
        missing = plain.get(f"{root}/v1/nothing")
        bad = plain.post(f"{root}/v1/chat/completions", content=b"{not json")
    assert (health.status_code, health.content) == (200, b"")
    assert models["object"] == "list"
    assert models["data"][0]["max_model_len"] == 8192
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert bad.status_code == 400


def test_keep_alive_reuses_one_connection(server: FakeOpenAIServer) -> None:
    with sync_client(server) as client:
        for _ in range(20):
            ask(client)
    assert server.connections == 1


def test_concurrent_requests_overlap_their_latency() -> None:
    """200 requests, 64 at a time, 50 ms each: the server answers many at once, on reused connections.

    Overlap is seen by count (``peak_in_flight``: 1 if they queued), not by a clock; how long the
    200 take (about 0.2 s when they overlap, 10 s when they queue) is measured in benchmarks/waits.py.
    This one uses the SDK's default HTTP client (httpx's pool), as a plain SDK user's code does.
    """

    async def main(server: FakeOpenAIServer) -> list[str]:
        gate = asyncio.Semaphore(64)
        async with AsyncOpenAI(base_url=server.base_url, api_key="sk", max_retries=0) as client:

            async def one() -> str:
                async with gate:
                    completion = await client.chat.completions.create(model="m", messages=messages("critic"))
                    return completion.choices[0].finish_reason

            return await asyncio.gather(*(one() for _ in range(200)))

    with FakeOpenAIServer(latency=0.05) as server:
        finish_reasons = asyncio.run(main(server))
        assert len(server.requests) == 200
        assert server.connections <= 64  # kept alive and reused, not one per request
        assert server.peak_in_flight > 1, "the requests were answered one at a time"
        assert server.in_flight == 0
    assert finish_reasons == ["stop"] * 200


def test_runs_as_its_own_process_steered_by_the_control_api() -> None:
    command = [sys.executable, str(SERVER_SCRIPT), "--port", "0", "--model", "served", "--api-key", "sk-p"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            assert line.startswith("LISTENING http://127.0.0.1:")
            root = line.removeprefix("LISTENING ")
            with httpx.Client(base_url=root) as control:
                assert control.post("/_fake/script", json={"role": "critic", "replies": [{"score": 0.1}]}).json() == {
                    "ok": True
                }
                control.post("/_fake/faults", json={"faults": ["503"], "role": "critic"}).raise_for_status()
                control.post("/_fake/latency", json={"seconds": 0.01}).raise_for_status()
                control.post("/_fake/default", json={"role": "generic", "reply": "plain"}).raise_for_status()
                assert control.post("/_fake/faults", json={"faults": ["nope"]}).status_code == 400
                with OpenAI(base_url=f"{root}/v1", api_key="sk-p", max_retries=0) as client:
                    with pytest.raises(openai.InternalServerError):
                        ask(client, "critic")
                    assert content_of(ask(client, "critic")) == '{"score": 0.1}'
                    assert content_of(ask(client, "generic")) == "plain"
                    assert [model.id for model in client.models.list()] == ["served"]
                log = control.get("/_fake/requests").json()
                assert [(r["role"], r["fault"]) for r in log] == [
                    ("critic", "503"),
                    ("critic", None),
                    ("generic", None),
                    (None, None),
                ]
                assert log[0]["body"]["messages"] == messages("critic")
                control.post("/_fake/reset").raise_for_status()
                assert control.get("/_fake/requests").json() == []
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0
