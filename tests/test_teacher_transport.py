"""The HTTP under a teacher (the SDK's aiohttp client) against the fake server over real sockets:
keep-alive, streaming as the server writes, a timeout per read, faults named for what they are, and a
stale kept-alive connection sent again at once."""

from __future__ import annotations

import asyncio
import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import openai
import pytest

from arcticcodex.errors import TeacherRejectedError, TeacherResponseError, TeacherUnavailableError
from arcticcodex.retry import RetryPolicy
from arcticcodex.teachers.entries import TeacherConfig
from arcticcodex.teachers.http_client import sdk_client
from arcticcodex.teachers.openai_compat import OpenAICompatibleTeacher
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer

T = TypeVar("T")
ANSWER = "Otters eat mostly fish, and crabs and frogs when fish are scarce; they hunt at dusk along the banks."
FREEZE = 60.0  # seconds: only a hang, never a slow machine, runs into it
ARCTICCODEX = str(Path(sys.executable).with_name("arcticcodex"))


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        fake.set_default("generic", ANSWER)
        yield fake


def teacher(
    base_url: str, *, timeout: float = 5.0, attempts: int = 4, base_delay: float = 0.01
) -> OpenAICompatibleTeacher:
    config = TeacherConfig(
        name="fake", preset="vllm", model="fake-model", base_url=base_url, timeout=timeout, concurrency=32
    )
    return OpenAICompatibleTeacher(config, retry=RetryPolicy(max_attempts=attempts, base_delay=base_delay))


def run(teacher: OpenAICompatibleTeacher, call: Callable[[], Awaitable[T]]) -> T:
    """Run one call on a fresh loop and close the teacher's connections before the loop ends."""

    async def main() -> T:
        try:
            return await asyncio.wait_for(call(), FREEZE)
        finally:
            await teacher.aclose()

    return asyncio.run(main())


def body(text: str = "What do otters eat?", **extra: object) -> dict[str, object]:
    return {"model": "fake-model", "messages": [{"role": "user", "content": text}], **extra}


def test_keep_alive_reuses_connections(server: FakeOpenAIServer) -> None:
    fake = teacher(server.base_url)

    async def calls() -> list[str]:
        first = [(await fake.complete(body(f"q{n}")))[0] for n in range(5)]
        rest = await asyncio.gather(*(fake.complete(body(f"r{n}")) for n in range(20)))
        return first + [reply[0] for reply in rest]

    replies = run(fake, calls)
    assert replies == [ANSWER] * 25
    assert server.connections <= 20  # the five sequential calls shared one connection
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"


def test_chat_over_http_streams_each_piece_as_it_is_written(server: FakeOpenAIServer) -> None:
    """The first piece arrives while the server still holds the last one back (an event, not a clock)."""
    server.stream_gate = threading.Event()
    fake = teacher(server.base_url)
    pieces: list[str] = []
    last_sent_at_first_piece: list[bool] = []

    def on_text(piece: str) -> None:
        if not pieces:
            last_sent_at_first_piece.append(server.last_piece_sent.is_set())
            assert server.stream_gate is not None
            server.stream_gate.set()  # now the server may finish
        pieces.append(piece)

    text = run(fake, lambda: fake.stream_text(body(), on_text))
    assert last_sent_at_first_piece == [False]  # a client that buffers sees the first piece only at the end
    assert text == ANSWER and len(pieces) == len(ANSWER.split())


def test_a_stream_the_endpoint_turns_away_for_now_is_opened_again(server: FakeOpenAIServer) -> None:
    """A 503 or a 429 before the first piece is retried, as a completion is; a refusal is not."""
    server.inject("503", "429:retry-after=0")
    fake = teacher(server.base_url)
    pieces: list[str] = []
    assert run(fake, lambda: fake.stream_text(body(), pieces.append)) == ANSWER
    assert len([r for r in server.requests if r.path.endswith("/chat/completions")]) == 3
    server.clear()
    server.inject("400")
    with pytest.raises(TeacherRejectedError, match=r"refused the request: HTTP 400"):
        run(fake, lambda: fake.stream_text(body(), pieces.append))
    assert len([r for r in server.requests if r.path.endswith("/chat/completions")]) == 1


def test_a_long_generation_that_keeps_sending_outlasts_the_timeout(server: FakeOpenAIServer) -> None:
    """The timeout is per read: 19 pieces 0.12 s apart take over 2 s, twice the 1 s timeout, and all arrive."""
    words = len(ANSWER.split())
    server.stream_interval = 0.12
    assert words * server.stream_interval >= 2 * 1.0  # the premise: the whole stream outlasts the timeout
    fake = teacher(server.base_url, timeout=1.0)
    pieces: list[str] = []
    assert run(fake, lambda: fake.stream_text(body(), pieces.append)) == ANSWER
    assert len(pieces) == words


def test_a_stream_that_stops_sending_is_given_up_on(server: FakeOpenAIServer) -> None:
    server.inject("stall")
    fake = teacher(server.base_url, timeout=0.5)
    pieces: list[str] = []
    with pytest.raises(TeacherUnavailableError) as caught:
        run(fake, lambda: fake.stream_text(body(), pieces.append))
    assert pieces == ["Otters "]  # what arrived before the silence reached the caller
    assert str(caught.value) == "teacher fake (fake-model) stream broke: nothing arrived for 0.5 s"


def test_an_answer_that_stops_halfway_is_a_timeout_and_retried(server: FakeOpenAIServer) -> None:
    server.inject("stall")
    fake = teacher(server.base_url, timeout=0.5)
    content, _, attempts, _, _ = run(fake, lambda: fake.complete(body()))
    assert content == ANSWER and attempts == 2


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("timeout:3", "no answer within 0.5 s"), ("drop", "connection failed (ServerDisconnectedError)")],
)
def test_a_fault_is_named_for_what_it_is(server: FakeOpenAIServer, fault: str, reason: str) -> None:
    """The adapter calls every aiohttp connection error a timeout; the message must not."""
    server.inject(fault, fault)
    fake = teacher(server.base_url, timeout=0.5, attempts=2)
    with pytest.raises(TeacherUnavailableError) as caught:
        run(fake, lambda: fake.complete(body()))
    assert str(caught.value) == f"teacher fake (fake-model) failed after 2 attempt(s): {reason}"


def test_nothing_listening_is_a_refused_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = teacher(f"http://127.0.0.1:{port}/v1", attempts=1)
    with pytest.raises(TeacherUnavailableError, match=r"connection failed \(ConnectionRefusedError\)"):
        run(fake, lambda: fake.complete(body()))


def test_a_kept_alive_connection_closed_by_the_server_is_sent_again_at_once(server: FakeOpenAIServer) -> None:
    """The server closes the reused connection without answering (a stale keep-alive): the request goes
    again at once, not after a backoff (an hour here: waiting for it would be a freeze), and the call
    succeeds without counting as a failure of the endpoint."""
    fake = teacher(server.base_url, base_delay=3600.0)

    async def calls() -> str:
        await fake.complete(body("first"))
        server.inject("drop")
        content, _, attempts, _, _ = await fake.complete(body("second"))
        assert attempts == 2
        return content

    assert run(fake, calls) == ANSWER
    assert [r.fault for r in server.requests] == [None, "drop", None]
    assert fake.breaker.failures == 0


def test_the_reply_and_its_token_counts_are_read_from_the_raw_response() -> None:
    with FakeOpenAIServer(cache_hit_fraction=0.5) as server:  # DeepSeek's prompt_cache_hit_tokens
        server.set_default("generic", ANSWER)
        fake = teacher(server.base_url)
        content, usage, attempts, _, _ = run(fake, lambda: fake.complete(body("x" * 400)))
    assert (content, attempts) == (ANSWER, 1)
    assert usage.prompt_tokens >= 100 and usage.cache_hit_tokens == usage.prompt_tokens // 2
    assert usage.completion_tokens == len(ANSWER) // 4


class LoginPage(http.server.BaseHTTPRequestHandler):
    """A proxy's login page where the endpoint should be: HTTP 200, HTML."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        page = b"<html><body>Please sign in</body></html>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: object) -> None:
        pass


def test_an_http_200_that_is_no_chat_completion_is_named_as_such() -> None:
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), LoginPage) as proxy:
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        base_url = f"http://127.0.0.1:{proxy.server_address[1]}/v1"
        fake = teacher(base_url)
        try:
            with pytest.raises(TeacherResponseError) as caught:
                run(fake, lambda: fake.complete(body()))
        finally:
            proxy.shutdown()
    assert str(caught.value) == (
        "teacher fake (fake-model) answered HTTP 200 with a body that is not a chat completion; "
        f"is {base_url} an OpenAI-compatible endpoint?"
    )


def test_every_endpoint_gets_the_sdks_aiohttp_client() -> None:
    for url in ("http://127.0.0.1:8000/v1", "https://api.deepseek.com"):
        config = TeacherConfig(name="t", preset="vllm", model="m", base_url=url, concurrency=48, timeout=7.0)
        client = sdk_client(config, "k")
        assert isinstance(client._client, openai.DefaultAioHttpClient)
        assert client.max_retries == 0 and client.timeout == 7.0


def test_chat_on_the_command_line_prints_the_answer_as_it_is_written(
    server: FakeOpenAIServer, tmp_path: Path, acx: Acx
) -> None:
    """`arcticcodex chat --model` over http://: the first words are on the terminal before the server
    has sent the last ones."""
    root = tmp_path / "ws"
    add = ["teachers", "add", "student", "--preset", "vllm", "--base-url", server.base_url, "--model", "fake-model"]
    acx("init", root)
    acx("-w", root, *add)
    with (root / "arcticcodex.toml").open("a") as config:
        config.write('\n[vault]\nembedding_model = "hashing-64"\n')
    server.stream_gate = threading.Event()
    seen = bytearray()
    first_words = threading.Event()
    last_sent_at_first_words: list[bool] = []
    command = [ARCTICCODEX, "-w", str(root), "chat", "--model", "student"]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as chat:
        assert chat.stdin is not None and chat.stdout is not None and chat.stderr is not None
        stdout = chat.stdout

        def read() -> None:
            while piece := stdout.read1(4096):
                seen.extend(piece)
                if not first_words.is_set() and b"Otters" in seen:
                    last_sent_at_first_words.append(server.last_piece_sent.is_set())
                    first_words.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            chat.stdin.write(b"What do otters eat?\n\n")
            chat.stdin.flush()
            assert first_words.wait(FREEZE), f"no answer on the terminal: {bytes(seen)!r}"
            server.stream_gate.set()
            reader.join(FREEZE)  # the reader owns stdout: it ends when the process closes it
            chat.wait(FREEZE)
        finally:
            if chat.poll() is None:
                chat.kill()
        errors = chat.stderr.read().decode()
    assert chat.returncode == 0, errors
    assert last_sent_at_first_words == [False]
    assert ANSWER in seen.decode()


def test_the_cause_named_is_the_connection_error_not_an_unrelated_context() -> None:
    """uvloop chains a refused connection to an unrelated RuntimeError; the message must say "refused"."""
    import httpx2

    from arcticcodex.teachers.http_client import failure_cause

    refused = ConnectionRefusedError(111, "Connect call failed")
    refused.__context__ = RuntimeError("raised while the loop handled another error")
    try:
        raise openai.APIConnectionError(request=httpx2.Request("GET", "http://127.0.0.1:9/v1/models")) from refused
    except openai.APIConnectionError as error:
        assert failure_cause(error) == "ConnectionRefusedError"
