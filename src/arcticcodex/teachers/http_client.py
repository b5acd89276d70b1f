"""The HTTP client under the ``openai`` SDK, and what its failures mean.

Every endpoint, ``http://`` (vLLM, Ollama, an SSH tunnel) and ``https://`` (DeepSeek, OpenAI) alike,
is reached through the SDK's own aiohttp client (``openai[aiohttp]``, :class:`openai.DefaultAioHttpClient`).
Measured in ``benchmarks/teachers.py`` it is as fast as the hand-written HTTP/1.1 transport it
replaced, and unlike that one it streams (each server-sent event reaches the caller as it arrives)
and its timeout is per read: a long generation that keeps sending is never cut off, while an
endpoint that stops sending is given up on after ``timeout`` seconds of silence.

A reply is read from the raw response (:func:`read_completion`): the text and the token counts are
all a teacher needs, and building the SDK's ``ChatCompletion`` model for them cost about a fifth of the
client's CPU per call.

What the adapter does not keep is the kind of failure: it maps every aiohttp connection error to
httpx2's ``ConnectTimeout``, so the SDK calls a refused or dropped connection a timeout too.
:func:`timed_out` and :func:`failure_cause` read the exceptions it was raised from instead, so a
message says "no answer within 60 s" only when that is what happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx2 as httpx
import openai
import orjson

from .entries import TeacherConfig
from .results import Usage

# Idle connections are dropped after this many seconds, before the servers' own keep-alive timeouts
# (uvicorn, so vLLM, closes them at 5 s): a connection is never picked just as the server closes it.
KEEPALIVE_SECONDS = 4.0


def sdk_client(config: TeacherConfig, api_key: str, http: httpx.AsyncClient | None = None) -> openai.AsyncOpenAI:
    """The SDK client for one endpoint; ``http`` (tests, a tunnel) replaces the aiohttp client.

    The SDK's retries are off: retries are the teacher's own (:mod:`.faults`).  The connection limit
    is the endpoint's concurrency, which the teacher's gate never exceeds, so no request waits for a
    connection.
    """
    if http is None:
        limits = httpx.Limits(
            max_connections=config.concurrency,
            max_keepalive_connections=config.concurrency,
            keepalive_expiry=KEEPALIVE_SECONDS,
        )
        http = openai.DefaultAioHttpClient(limits=limits, timeout=config.timeout)
    return openai.AsyncOpenAI(
        base_url=config.base_url, api_key=api_key, http_client=http, max_retries=0, timeout=config.timeout
    )


def read_completion(response: httpx.Response) -> tuple[str, Usage] | None:
    """The first choice's text and the token counts of a chat completion's raw response; None when
    the body is not a chat completion at all (an HTML page of a proxy, an error object with HTTP 200)."""
    try:
        data = orjson.loads(response.content)
        content = data["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return None
    if content is not None and not isinstance(content, str):
        return None
    return content or "", _usage(data.get("usage"))


def _usage(usage: Any) -> Usage:
    """Token counts, with the prompt tokens served from the provider's cache (DeepSeek and OpenAI name
    them differently); a missing or malformed count is zero."""
    if not isinstance(usage, dict):
        return Usage()
    details = usage.get("prompt_tokens_details")
    cached = usage.get("prompt_cache_hit_tokens") or (details.get("cached_tokens") if isinstance(details, dict) else 0)
    return Usage(
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        cache_hit_tokens=_count(cached),
    )


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value > 0 else 0


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions it was raised from (or while handling), innermost last."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def timed_out(error: BaseException) -> bool:
    """Whether a failed request ran out of time (rather than being refused or dropped)."""
    links = list(_chain(error))
    if any(isinstance(link, TimeoutError) for link in links):  # aiohttp's and anyio's timeouts are these
        return True
    timeout_named = isinstance(error, openai.APITimeoutError | httpx.TimeoutException)
    return timeout_named and not any(isinstance(link, OSError | aiohttp.ClientError) for link in links)


def closed_before_answering(error: BaseException) -> bool:
    """The server closed the connection before a byte of the response: it never answered the request.

    On a kept-alive connection that is the server having just closed it as idle (the request never
    reached it), so the request may be sent again at once; see ``OpenAICompatibleTeacher._send``.
    """
    return any(isinstance(link, aiohttp.ServerDisconnectedError) for link in _chain(error))


def failure_cause(error: BaseException) -> str:
    """The name of what really failed: the innermost OS or connection error (``ConnectionRefusedError`` …).

    Not simply the innermost link: an error raised while another was handled chains to that one too
    (uvloop's refused connection ends in an unrelated ``RuntimeError``), which would name the wrong cause.
    """
    links = list(_chain(error))
    causes = [link for link in links if isinstance(link, OSError | aiohttp.ClientError)]
    return type((causes or links)[-1]).__name__
