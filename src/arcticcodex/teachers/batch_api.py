"""One endpoint's Batch API, through the ``openai`` SDK's own methods: upload, create, follow, read results.

The protocol (OpenAI's, which compatible servers copy): the requests go up as a JSONL file
(``purpose="batch"``), one ``{custom_id, method, url, body}`` a line; a batch is created from it and
moves through ``validating → in_progress → finalizing → completed`` (or ``failed``, ``expired``,
``cancelled``); a completed batch names an output file (one ``{custom_id, response: {status_code,
body}}`` a line) and an error file (the lines that failed).  The custom id of a line is its
request-cache key, so a result is matched to its request by the key that also caches it.

The SDK's calls get the teacher's retries (429 and 5xx, ``Retry-After``), and its errors become the
project's: a refusal is :class:`TeacherRejectedError`, the rest :class:`TeacherUnavailableError`; as
in :mod:`.openai_compat` they are raised ``from None``, since the SDK's error holds the request and
its key.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import httpx2 as httpx
import openai
import orjson
from openai.types import Batch

from ..errors import TeacherError, TeacherRejectedError, TeacherUnavailableError
from ..retry import RetryPolicy, parse_retry_after
from .faults import RETRYABLE_STATUS
from .http_client import failure_cause, read_completion
from .results import Usage

__all__ = ["CHAT_URL", "FINISHED", "BatchEndpoint", "LineResult", "jsonl", "line_error"]

CHAT_URL: Final = "/v1/chat/completions"
FINISHED = frozenset({"completed", "failed", "expired", "cancelled"})
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LineResult:
    """One line's answer: the reply's text and token counts, or the provider's error (status, message)."""

    content: str | None = None
    usage: Usage = field(default_factory=Usage)
    status: int = 200
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.content is not None


def jsonl(lines: Mapping[str, dict[str, Any]]) -> bytes:
    """The batch input file: a line per request, its custom id the request-cache key."""
    return b"".join(
        orjson.dumps({"custom_id": key, "method": "POST", "url": CHAT_URL, "body": body}) + b"\n"
        for key, body in lines.items()
    )


class BatchEndpoint:
    """The Batch API of one teacher's endpoint (``client``), retried by ``retry``; ``teacher`` names it in errors."""

    def __init__(self, client: openai.AsyncOpenAI, *, teacher: str, retry: RetryPolicy, rng: random.Random) -> None:
        self.client = client
        self.teacher = teacher
        self.retry = retry
        self._rng = rng

    async def upload_lines(self, lines: Mapping[str, dict[str, Any]]) -> str:
        data = jsonl(lines)
        uploaded = await self._retried(
            "upload the batch file",
            lambda: self.client.files.create(file=("batch.jsonl", data, "application/jsonl"), purpose="batch"),
        )
        return uploaded.id

    async def create_batch(self, input_file_id: str, run_id: str) -> str:
        batch = await self._retried(
            "create the batch",
            lambda: self.client.batches.create(
                input_file_id=input_file_id,
                endpoint=CHAT_URL,
                completion_window="24h",
                metadata={"arcticcodex_run": run_id},
            ),
        )
        return batch.id

    async def find_batch(self, input_file_id: str) -> str | None:
        """The batch made from ``input_file_id``, if one was (a run killed before it wrote the batch id)."""

        async def search() -> str | None:
            async for batch in self.client.batches.list(limit=100):
                if batch.input_file_id == input_file_id:
                    return batch.id
            return None

        return await self._retried("list the batches", search)

    async def retrieve(self, batch_id: str) -> Batch:
        return await self._retried(f"check batch {batch_id}", lambda: self.client.batches.retrieve(batch_id))

    async def read_results(self, batch: Batch) -> dict[str, LineResult]:
        """Every line the output and error files hold, by custom id."""
        results: dict[str, LineResult] = {}
        for file_id in (batch.error_file_id, batch.output_file_id):  # an answer wins over an error
            if not file_id:
                continue
            content = await self._download(f"download the results of batch {batch.id}", file_id)
            for raw in content.splitlines():
                if raw.strip():
                    key, result = _line(raw)
                    if key:
                        results[key] = result
        return results

    async def _download(self, what: str, file_id: str) -> bytes:
        async def download() -> bytes:
            return (await self.client.files.content(file_id)).content

        return await self._retried(what, download)

    async def _retried(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                return await call()
            except openai.APIStatusError as error:
                if error.status_code not in RETRYABLE_STATUS:
                    # from None: the SDK's error holds the request, whose headers carry the API key
                    raise TeacherRejectedError(
                        f"teacher {self.teacher} refused to {what}: HTTP {error.status_code} {_message(error.body)}; "
                        "does its endpoint serve the Batch API (/v1/files, /v1/batches)?",
                        teacher=self.teacher,
                        attempts=attempt,
                        status=error.status_code,
                    ) from None
                reason = f"HTTP {error.status_code}"
                retry_after = parse_retry_after(error.response.headers.get("retry-after"))
            except openai.APIConnectionError as error:
                reason = f"connection failed ({failure_cause(error)})"
            except openai.APIError as error:
                reason = type(error).__name__
            delay = self.retry.delay(attempt, retry_after, self._rng)
            if delay is None:
                raise TeacherUnavailableError(
                    f"teacher {self.teacher} could not {what} after {attempt} attempt(s): {reason}",
                    teacher=self.teacher,
                    attempts=attempt,
                ) from None
            await asyncio.sleep(delay)


def _line(raw: bytes) -> tuple[str, LineResult]:
    """(custom id, result) of one line of an output or error file; an unreadable line is an error result."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "", LineResult(status=0, error="an unreadable line in the results file")
    if not isinstance(data, dict):
        return "", LineResult(status=0, error="an unreadable line in the results file")
    key = str(data.get("custom_id") or "")
    found = data.get("response")
    response: dict[str, Any] = found if isinstance(found, dict) else {}
    code = response.get("status_code")
    status = code if isinstance(code, int) else 0
    body = response.get("body")
    if data.get("error") or status != 200:
        return key, LineResult(status=status, error=_message(data.get("error") or body) or "no reason given")
    completion = read_completion(httpx.Response(200, content=orjson.dumps(body)))
    if completion is None:
        return key, LineResult(status=200, error="the line's body is not a chat completion")
    return key, LineResult(content=completion[0], usage=completion[1])


def _message(body: object) -> str:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return ""


def line_error(result: LineResult, *, teacher: str, model: str, batch_id: str) -> TeacherError:
    """The error a task sees for a line its batch answered with an error (the pool may try another teacher)."""
    message = f"teacher {teacher} ({model}) answered a line of batch {batch_id} with an error: "
    if 400 <= result.status < 500 and result.status not in RETRYABLE_STATUS:
        return TeacherRejectedError(
            message + f"HTTP {result.status} {result.error}", teacher=teacher, status=result.status
        )
    why = f"HTTP {result.status} {result.error}" if result.status else result.error
    return TeacherUnavailableError(message + why, teacher=teacher)
