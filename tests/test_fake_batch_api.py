"""The fake server's Batch API, driven by the real ``openai`` SDK (files, batches, results files) over HTTP.

Why: ``distill --batch`` is tested against this fake, so the fake must behave as the provider documents it —
statuses that move over polls, an output file and an error file, whole-batch endings, refusals of a malformed
input file — and answer each line exactly as its chat endpoint would (scripts and faults apply).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from fakes.openai_server import FakeOpenAIServer

CRITIC = [{"role": "system", "content": "You are the critic. Reply with JSON."}, {"role": "user", "content": "x"}]


@pytest.fixture
def client(server: FakeOpenAIServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


def upload(client: openai.OpenAI, lines: list[dict[str, Any]]) -> str:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return client.files.create(file=("in.jsonl", data, "application/jsonl"), purpose="batch").id


def line(custom_id: str, messages: list[dict[str, str]] = CRITIC) -> dict[str, Any]:
    body = {"model": "fake-model", "messages": messages, "response_format": {"type": "json_object"}}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def results(client: openai.OpenAI, file_id: str | None) -> dict[str, dict[str, Any]]:
    if file_id is None:
        return {}
    rows = [json.loads(raw) for raw in client.files.content(file_id).content.splitlines()]
    return {row["custom_id"]: row for row in rows}


def test_a_batch_moves_a_status_a_poll_and_answers_each_line_as_the_chat_endpoint(
    server: FakeOpenAIServer, client: openai.OpenAI
) -> None:
    server.script("critic", [{"score": 0.25, "criteria": {}}])
    server.inject("500", role="critic")  # the first line fails; the script is kept for the next
    batch = client.batches.create(
        input_file_id=upload(client, [line("a"), line("b")]), endpoint="/v1/chat/completions", completion_window="24h"
    )
    seen = [batch.status]
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        batch = client.batches.retrieve(batch.id)
        seen.append(batch.status)
    assert seen == ["validating", "in_progress", "finalizing", "completed"]
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (2, 1, 1)

    output, errors = results(client, batch.output_file_id), results(client, batch.error_file_id)
    assert set(output) == {"b"} and set(errors) == {"a"}
    answer = output["b"]["response"]
    assert (
        answer["status_code"] == 200 and json.loads(answer["body"]["choices"][0]["message"]["content"])["score"] == 0.25
    )
    assert answer["body"]["usage"]["prompt_tokens"] > 0
    assert errors["a"]["response"]["status_code"] == 500 and errors["a"]["response"]["body"]["error"]["message"]
    logged = [(r.path, r.role, r.fault) for r in server.requests if "/lines/" in r.path]
    assert logged == [
        (f"/v1/batches/{batch.id}/lines/a", "critic", "500"),
        (f"/v1/batches/{batch.id}/lines/b", "critic", None),
    ]
    assert [b.id for b in client.batches.list()] == [batch.id]


def test_hold_keeps_a_batch_in_flight_and_endings_and_bad_files_are_reported(
    server: FakeOpenAIServer, client: openai.OpenAI
) -> None:
    server.batch_api.hold = True
    held = client.batches.create(
        input_file_id=upload(client, [line("a")]), endpoint="/v1/chat/completions", completion_window="24h"
    )
    statuses = {client.batches.retrieve(held.id).status for _ in range(5)}
    assert statuses == {"in_progress"} and not [r for r in server.requests if "/lines/" in r.path]
    server.batch_api.hold = False

    server.batch_api.end_next("expired")
    expired = client.batches.create(
        input_file_id=upload(client, [line("c")]), endpoint="/v1/chat/completions", completion_window="24h"
    )
    while (expired := client.batches.retrieve(expired.id)).status not in ("completed", "expired"):
        pass
    assert expired.status == "expired" and expired.output_file_id is None and expired.error_file_id is None

    duplicate = upload(client, [line("d"), line("d")])
    bad = client.batches.create(input_file_id=duplicate, endpoint="/v1/chat/completions", completion_window="24h")
    bad = client.batches.retrieve(bad.id)
    assert bad.status == "failed" and bad.errors is not None and bad.errors.data
    assert "custom_id must be a string unique" in (bad.errors.data[0].message or "")

    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")
    with pytest.raises(openai.BadRequestError, match="No such File"):
        client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")


def test_the_batch_api_is_steered_out_of_process_too(server: FakeOpenAIServer) -> None:
    """``/_fake/batches`` sets hold and endings, as a benchmark's server in another process needs."""
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as http:
        assert http.post("/_fake/batches", json={"hold": True, "end": ["cancelled"]}).status_code == 200
        assert http.post("/_fake/batches", json={"end": ["sideways"]}).status_code == 400
    held = server.batch_api.hold
    server.reset()
    assert held is True and server.batch_api.hold is False and server.batch_api.batches == {}
