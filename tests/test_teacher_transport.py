"""The lean HTTP/1.1 transport under the openai SDK: keep-alive, errors mapped as httpx2 maps them."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import httpx2 as httpx
import openai
import pytest

from arcticcodex.teachers.transport import LeanAsyncTransport
from fakes.openai_server import FakeOpenAIServer


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


def client(base_url: str, timeout: float = 2.0) -> openai.AsyncOpenAI:
    http = httpx.AsyncClient(transport=LeanAsyncTransport(), timeout=timeout)
    return openai.AsyncOpenAI(base_url=base_url, api_key="k", http_client=http, max_retries=0, timeout=timeout)


async def ask(sdk: openai.AsyncOpenAI) -> str:
    reply = await sdk.chat.completions.create(
        model="fake-model",
        messages=[{"role": "user", "content": "Reply in JSON."}],
        response_format={"type": "json_object"},
    )
    return reply.choices[0].message.content or ""


def test_keep_alive_reuses_connections(server: FakeOpenAIServer) -> None:
    async def main() -> list[str]:
        sdk = client(server.base_url)
        try:
            first = [await ask(sdk) for _ in range(5)]
            return first + list(await asyncio.gather(*(ask(sdk) for _ in range(20))))
        finally:
            await sdk.close()

    replies = asyncio.run(main())
    assert len(replies) == 25 and all(reply for reply in replies)
    assert server.connections <= 20  # five sequential calls shared one connection
    assert server.requests[0].headers["authorization"] == "Bearer k"


@pytest.mark.parametrize(
    ("fault", "error"), [("timeout:5", openai.APITimeoutError), ("drop", openai.APIConnectionError)]
)
def test_faults_surface_as_the_sdk_errors(server: FakeOpenAIServer, fault: str, error: type[Exception]) -> None:
    server.inject(fault)

    async def main() -> None:
        sdk = client(server.base_url, timeout=0.5)
        try:
            await ask(sdk)
        finally:
            await sdk.close()

    with pytest.raises(error):
        asyncio.run(main())


def test_nothing_listening_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> None:
        sdk = client(f"http://127.0.0.1:{port}/v1")
        try:
            await ask(sdk)
        finally:
            await sdk.close()

    with pytest.raises(openai.APIConnectionError):
        asyncio.run(main())


def test_https_is_left_to_httpx2() -> None:
    async def main() -> None:
        async with httpx.AsyncClient(transport=LeanAsyncTransport()) as http:
            await http.get("https://127.0.0.1:9/")

    with pytest.raises(httpx.UnsupportedProtocol):
        asyncio.run(main())
