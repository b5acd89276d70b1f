"""A teacher served by any OpenAI-compatible endpoint (DeepSeek, OpenAI, vLLM, Ollama).

Built on the official ``openai`` SDK (async) over its own aiohttp client (:mod:`.http_client`; tests
may inject an ``httpx2.AsyncClient``), with the SDK's own retries off: retries are ours (:mod:`arcticcodex.retry`),
because they must honour Retry-After, stop at a budget, feed a circuit breaker, and leave the decision
to fall back to another teacher to the pool.  Every call asks for its reply's JSON schema (strict)
or JSON mode, as the teacher's ``response_format`` says (:mod:`.reply_schemas`); a reply that is not
the expected JSON gets one re-ask that quotes the problem back to the model.  What is sent is recorded
with the prompt template's hash; secrets never enter a record, an error or a log.  In a run with
``batch`` (``distill --batch``) the calls go up through the endpoint's Batch API instead
(:mod:`.batch_queue`), at its discounted price.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import stat
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from ..errors import (
    BudgetExceededError,
    ConfigError,
    TeacherRejectedError,
    TeacherResponseError,
    TeacherUnavailableError,
    TrustError,
    UnsafeFileError,
)
from ..fileio import read_plain_file
from ..retry import RetryPolicy, parse_retry_after
from .batch_queue import BatchQueue
from .cache import RequestCache, request_key
from .entries import KEYLESS_PRESETS, TeacherConfig
from .faults import RETRYABLE_STATUS, CircuitBreaker
from .http_client import closed_before_answering, failure_cause, read_completion, sdk_client, timed_out
from .ledger import Ledger
from .parsing import ReplyError, parse_reply
from .prompts import (
    critique_messages,
    draft_messages,
    question_messages,
    rewrite_messages,
    template,
    verify_messages,
)
from .reply_schemas import ReplySchema, reply_schema, response_format
from .results import CallRecord, CallRole, Critique, EvidenceItem, Questions, Rewrite, Rubric, Usage, Verification
from .trust import key_source

MAX_KEY_FILE_BYTES = 4096  # an API key is a line; a larger "key file" is something else


class OpenAICompatibleTeacher:
    """One endpoint and model, playing any of the three roles.

    ``http_client`` lets tests and the Vast tunnel inject their own transport; ``api_key`` overrides
    the environment variable named by the configuration (``api_key_env``).
    """

    def __init__(
        self,
        config: TeacherConfig,
        *,
        http_client: httpx.AsyncClient | None = None,
        api_key: str | None = None,
        environ: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        cache: RequestCache | None = None,
        ledger: Ledger | None = None,
        seed: int | None = None,
    ) -> None:
        if not config.trusted:  # before a key is read or a connection opened: see teachers/trust.py
            raise untrusted_teacher_error(config)
        self.config = config
        self.name = config.name
        self.model = config.model
        self.retry = retry or RetryPolicy(max_attempts=config.max_attempts)
        self.breaker = breaker or CircuitBreaker()
        self.cache = cache
        self.ledger = ledger or Ledger()
        self.batches: BatchQueue | None = None  # distill --batch: calls go up as provider batches (.batch_queue)
        self._rng = random.Random(seed)  # noqa: S311 - jitter, not cryptography
        key = (
            api_key
            if api_key is not None
            else _key_from_environment(config, os.environ if environ is None else environ)
        )
        self._key = key
        self._injected_http = http_client
        self._bound: tuple[asyncio.AbstractEventLoop, openai.AsyncOpenAI, asyncio.Semaphore] | None = None

    def _for_this_loop(self) -> tuple[openai.AsyncOpenAI, asyncio.Semaphore]:
        """The SDK client and the concurrency gate of the running event loop.

        Connections belong to the loop that opened them, so a teacher used from two ``asyncio.run``
        calls (two ``*_sync`` calls do that) gets a fresh client for the second loop.
        """
        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound[0] is not loop:
            client = sdk_client(self.config, self._key, self._injected_http)
            self._bound = (loop, client, asyncio.Semaphore(self.config.concurrency))
        return self._bound[1], self._bound[2]

    def __repr__(self) -> str:
        return f"OpenAICompatibleTeacher(name={self.name!r}, model={self.model!r}, base_url={self.config.base_url!r})"

    async def aclose(self) -> None:
        if self._bound is not None:
            if self._injected_http is None:  # an injected client belongs to the caller
                await self._bound[1].close()
            self._bound = None

    # -- the three roles ------------------------------------------------------------------------

    async def critique(
        self, text: str, evidence: Sequence[EvidenceItem], rubric: Rubric, *, instruction: str = ""
    ) -> Critique:
        messages = critique_messages(text, evidence, rubric, instruction)
        result, call = await self._call("critic", messages, rubric)
        return Critique.model_validate({**result.model_dump(exclude={"call"}), "call": call})

    async def verify(self, text: str, evidence: Sequence[EvidenceItem]) -> Verification:
        result, call = await self._call("verifier", verify_messages(text, evidence))
        return Verification.model_validate({**result.model_dump(exclude={"call"}), "call": call})

    async def rewrite(
        self,
        text: str,
        critique: Critique,
        verification: Verification | None,
        evidence: Sequence[EvidenceItem],
        *,
        instruction: str = "",
    ) -> Rewrite:
        messages = rewrite_messages(text, critique, verification, evidence, instruction)
        result, call = await self._call("rewriter", messages)
        return Rewrite.model_validate({**result.model_dump(exclude={"call"}), "call": call})

    # -- what a run asks a student model for ------------------------------------------------------

    async def draft(self, instruction: str, evidence: Sequence[EvidenceItem]) -> Rewrite:
        """A first answer to ``instruction`` from the evidence (this endpoint as the run's student model)."""
        result, call = await self._call("drafter", draft_messages(instruction, evidence))
        return Rewrite.model_validate({**result.model_dump(exclude={"call"}), "call": call})

    async def questions(self, passage: str, *, source: str = "", count: int = 3) -> Questions:
        """Up to ``count`` questions that ``passage`` answers (a curriculum written by this teacher)."""
        result, call = await self._call("questioner", question_messages(passage, source, count))
        found = Questions.model_validate({**result.model_dump(exclude={"call"}), "call": call})
        return found.model_copy(update={"questions": found.questions[:count]})

    # -- one call, with retries and one re-ask ---------------------------------------------------

    def request_body(self, messages: list[dict[str, str]], schema: ReplySchema | None = None) -> dict[str, Any]:
        """The JSON body sent (and the key of the request cache): the one place a body is built.

        ``schema`` is the reply's (:func:`~.reply_schemas.reply_schema`): sent as a strict
        ``json_schema`` when the teacher's ``response_format`` is ``json_schema``; JSON mode otherwise.
        """
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }
        wanted = response_format(self.config.response_format, schema)
        if wanted is not None:
            body["response_format"] = wanted
        return body

    async def complete(self, body: dict[str, Any]) -> tuple[str, Usage, int, float, str | None]:
        """One reply: from the cache, else from the endpoint with retries.  Raises TeacherError.

        Returns (content, usage, attempts, cost charged, cache key to fill once the reply is known to
        be usable — None when it came from the cache).  At most the endpoint's concurrency limit of
        requests are in flight; the budget is checked once a slot is free and before every retry,
        so no request starts after the budget is spent.
        """
        key = request_key(self.config.base_url, body) if self.cache is not None else None
        if self.cache is not None and key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.ledger.record(self.name, hit[1], 0.0, cached=True)
                return hit[0], hit[1], 0, 0.0, None
        if self.batches is not None:
            return await self._complete_in_batch(self.batches, body, key or request_key(self.config.base_url, body))
        client, gate = self._for_this_loop()
        async with gate:
            try:
                content, usage, attempts = await self._send(client, body)
            except BudgetExceededError:
                raise
            except Exception:
                self.ledger.record_failure(self.name)
                raise
        cost = self.config.cost(usage.prompt_tokens, usage.cache_hit_tokens, usage.completion_tokens)
        self.ledger.record(self.name, usage, cost)
        return content, usage, attempts, cost, key

    async def _complete_in_batch(
        self, batches: BatchQueue, body: dict[str, Any], key: str
    ) -> tuple[str, Usage, int, float, str | None]:
        """:meth:`complete` through the run's batch queue: the line's custom id is the cache key; the
        price is the Batch API's (``batch_discount`` off)."""
        self.ledger.check(self.name)
        try:
            content, usage, _ = await batches.ask(self, key, body)
        except BudgetExceededError:
            raise
        except Exception:
            self.ledger.record_failure(self.name)
            raise
        cost = self.config.batch_cost(usage.prompt_tokens, usage.cache_hit_tokens, usage.completion_tokens)
        self.ledger.record(self.name, usage, cost, batched=True)
        return content, usage, 1, cost, key if self.cache is not None else None

    def batch_client(self) -> openai.AsyncOpenAI:
        """The SDK client the batch queue reaches this endpoint's Batch API with (files, batches)."""
        return self._for_this_loop()[0]

    async def _send(self, client: openai.AsyncOpenAI, body: dict[str, Any]) -> tuple[str, Usage, int]:
        if not self.breaker.allow():
            raise TeacherUnavailableError(
                f"teacher {self.name} is paused after repeated failures (circuit open for another "
                f"{self.breaker.reopens_in:.0f} s)",
                teacher=self.name,
            )
        attempt = 0
        resent = False
        while True:
            attempt += 1
            self.ledger.check(self.name)
            retry_after: float | None = None
            at_once = False
            try:
                # the SDK's documented generic request (README, "undocumented requests"), answered raw:
                # the body is already exactly what we mean to send (no per-call TypedDict transform),
                # and the reply's two fields are read without building the SDK's ChatCompletion model
                response = await client.post("/chat/completions", cast_to=httpx.Response, body=body)
            except openai.APIStatusError as error:
                if error.status_code not in RETRYABLE_STATUS:
                    self.breaker.record_failure()
                    # from None: the SDK's error holds the request, whose headers carry the API key
                    raise TeacherRejectedError(
                        f"teacher {self.name} ({self.model}) refused the request: HTTP {error.status_code} "
                        f"{_error_message(error)}{_status_hint(error.status_code, self.config)}",
                        teacher=self.name,
                        attempts=attempt,
                        status=error.status_code,
                    ) from None
                reason = f"HTTP {error.status_code} {_error_message(error)}"
                retry_after = parse_retry_after(error.response.headers.get("retry-after"))
            except openai.APIConnectionError as error:  # APITimeoutError is one: see http_client.timed_out
                if timed_out(error):
                    reason = f"no answer within {self.config.timeout:g} s"
                else:
                    reason = f"connection failed ({failure_cause(error)})"
                    # closed before a byte of the answer: a kept-alive connection the server had just
                    # closed never delivered the request, so it goes again at once (once; then backoff)
                    at_once = not resent and closed_before_answering(error)
                    resent = resent or at_once
            except openai.APIResponseValidationError:
                # from None: the SDK's error holds the request, whose headers carry the API key
                raise self._not_a_completion(attempt) from None
            else:
                completion = read_completion(response)
                if completion is None:
                    raise self._not_a_completion(attempt)
                self.breaker.record_success()
                return completion[0], completion[1], attempt
            delay = self.retry.delay(attempt, retry_after, self._rng)
            if delay is None:
                self.breaker.record_failure()
                raise TeacherUnavailableError(
                    f"teacher {self.name} ({self.model}) failed after {attempt} attempt(s): {reason}",
                    teacher=self.name,
                    attempts=attempt,
                )
            if not at_once:
                await asyncio.sleep(delay)

    def _not_a_completion(self, attempt: int) -> TeacherResponseError:
        """An HTTP 200 whose body is no chat completion (an HTML login page of a proxy, say)."""
        self.breaker.record_failure()
        return TeacherResponseError(
            f"teacher {self.name} ({self.model}) answered HTTP 200 with a body that is not a chat completion; "
            f"is {self.config.base_url} an OpenAI-compatible endpoint?",
            teacher=self.name,
            attempts=attempt,
        )

    async def _call(
        self, role: CallRole, messages: list[dict[str, str]], rubric: Rubric | None = None
    ) -> tuple[BaseModel, CallRecord]:
        started = time.perf_counter()
        notes: list[str] = []
        schema = reply_schema(role, rubric)
        content, usage, attempts, cost, key = await self.complete(self.request_body(messages, schema))
        reply_cost = cost  # what the reply that gets cached cost (a re-ask's first reply is not cached)
        cached = key is None and attempts == 0
        try:
            result = parse_reply(role, content, notes)
        except ReplyError as problem:
            notes.append(f"re-asked: {problem}")
            retry_messages = [
                *messages,
                {"role": "assistant", "content": content[:4000]},
                {
                    "role": "user",
                    "content": f"Your reply could not be used: {problem}. Reply again with the JSON only.",
                },
            ]
            body = self.request_body(retry_messages, schema)
            content, more_usage, more_attempts, more_cost, key = await self.complete(body)
            usage, attempts, cost = usage + more_usage, attempts + more_attempts, cost + more_cost
            reply_cost = more_cost
            cached = cached and key is None and more_attempts == 0
            try:
                result = parse_reply(role, content, notes)
            except ReplyError as second:
                # from None: the ReplyError adds nothing the message does not already say
                raise TeacherResponseError(
                    f"teacher {self.name} ({self.model}) gave no usable {role} reply after a re-ask: {second}",
                    teacher=self.name,
                    attempts=attempts,
                ) from None
        if self.cache is not None and key is not None:
            # only replies that were usable; their cost is settled (a run's spend) in the same transaction
            self.cache.put(key, self.name, self.model, content, usage, cost_usd=reply_cost, ledger=self.ledger)
        call = CallRecord(
            teacher=self.name,
            model=self.model,
            role=role,
            prompt_sha256=template(role).sha256,
            raw_reply=content,
            usage=usage,
            cost_usd=cost,
            latency_s=round(time.perf_counter() - started, 4),
            attempts=attempts,
            cached=cached,
            notes=notes,
        )
        return result, call

    async def chat_message(self, body: dict[str, Any]) -> dict[str, Any]:
        """One chat completion's whole message (content and any ``tool_calls``), for the agent's tool loop.

        Not cached: a tool loop's requests depend on what the tools returned, which may change.
        """
        client, gate = self._for_this_loop()
        async with gate:
            with self._as_teacher_errors("did not answer"):
                response = await client.post("/chat/completions", cast_to=ChatCompletion, body=body)
        if not isinstance(response, ChatCompletion) or not response.choices:
            raise TeacherResponseError(f"teacher {self.name} answered with no chat completion", teacher=self.name)
        message: dict[str, Any] = response.choices[0].message.model_dump(exclude_none=True)
        return message

    async def stream_text(self, body: dict[str, Any], on_text: Callable[[str], None]) -> str:
        """A streamed completion: each piece of text goes to ``on_text`` as it arrives; returns the whole text.

        For people watching an answer being written (the agent's chat); nothing is cached or retried
        mid-stream — a stream that breaks is a TeacherUnavailableError, and what arrived is not used.
        """
        client, gate = self._for_this_loop()
        pieces: list[str] = []
        async with gate:
            with self._as_teacher_errors("stream broke"):
                stream = await client.chat.completions.create(**body, stream=True)
                async for chunk in stream:
                    for choice in chunk.choices:
                        if choice.delta.content:
                            pieces.append(choice.delta.content)
                            on_text(choice.delta.content)
        return "".join(pieces)

    @contextlib.contextmanager
    def _as_teacher_errors(self, failure: str) -> Iterator[None]:
        """The SDK's errors as ours: a refusal (4xx) is TeacherRejectedError, anything else unavailability."""
        try:
            yield
        except openai.APIStatusError as error:
            # from None: the SDK's error holds the request, whose headers carry the API key
            raise TeacherRejectedError(
                f"teacher {self.name} ({self.model}) refused the request: HTTP {error.status_code} "
                f"{_error_message(error)}",
                teacher=self.name,
                status=error.status_code,
            ) from None
        except (openai.APIError, httpx.HTTPError) as error:  # a stream read raises httpx2's errors unwrapped
            if timed_out(error):
                why = f"nothing arrived for {self.config.timeout:g} s"
            elif isinstance(error, openai.APIConnectionError | httpx.TransportError):
                why = f"connection failed ({failure_cause(error)})"
            else:
                why = type(error).__name__
            # from None: the SDK's error holds the request, whose headers carry the API key
            raise TeacherUnavailableError(
                f"teacher {self.name} ({self.model}) {failure}: {why}", teacher=self.name
            ) from None

    async def ping(self) -> list[str]:
        """The model ids the endpoint serves (``GET /models``); raises TeacherError when unreachable."""
        try:
            page = await self._for_this_loop()[0].models.list()
        except openai.APIStatusError as error:
            # from None: the SDK's error holds the request, whose headers carry the API key
            raise TeacherRejectedError(
                f"teacher {self.name}: HTTP {error.status_code} {_error_message(error)}",
                teacher=self.name,
                status=error.status_code,
            ) from None
        except openai.APIConnectionError as error:
            # from None: the SDK's error holds the request, whose headers carry the API key
            raise TeacherUnavailableError(f"teacher {self.name}: {failure_cause(error)}", teacher=self.name) from None
        return [model.id for model in page.data]


def untrusted_teacher_error(config: TeacherConfig) -> TrustError:
    """Why an entry read from a workspace file is not used, and the command that trusts it."""
    urls = ", ".join((config.base_url, *config.replicas))
    return TrustError(
        f"teacher {config.name!r} in {config.origin or 'arcticcodex.toml'} is not trusted: it would send your "
        f"prompts and vault evidence to {urls} with the key from {key_source(config)}; nothing was sent. "
        f"If you wrote this entry (or have checked it), trust it with `arcticcodex teachers trust {config.name}`"
    )


def _key_from_environment(config: TeacherConfig, environ: Mapping[str, str]) -> str:
    if config.api_key_file:
        return read_key_file(Path(config.api_key_file), teacher=config.name)
    if config.api_key_env and environ.get(config.api_key_env):
        return environ[config.api_key_env]
    if config.preset in KEYLESS_PRESETS:
        return "not-needed"  # the SDK insists on a value; vLLM without --api-key and Ollama ignore it
    variable = config.api_key_env or "an API key variable"
    raise ConfigError(
        f"teacher {config.name} needs an API key: set {variable} in the environment "
        f"(e.g. export {config.api_key_env or 'DEEPSEEK_API_KEY'}=…); keys are never stored in arcticcodex.toml"
    )


def read_key_file(path: Path, *, teacher: str) -> str:
    """A key kept in a file: a small plain file, readable by its owner only, holding one line."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        data = read_plain_file(path, limit=MAX_KEY_FILE_BYTES, what="key file", follow_symlinks=True)
        key = data.decode("utf-8").strip()
    except UnsafeFileError as error:
        # from None: the UnsafeFileError adds nothing the message does not already say
        raise ConfigError(f"teacher {teacher}: {error}") from None
    except UnicodeDecodeError:
        # from None: the UnicodeDecodeError would quote bytes of the key file, a secret
        raise ConfigError(f"teacher {teacher}: the key file {path} is not UTF-8 text") from None
    except OSError as error:
        # from None: the OSError adds nothing the message does not already say
        raise ConfigError(f"teacher {teacher}: cannot read its key file {path} ({error.strerror})") from None
    if mode & 0o077:
        raise ConfigError(f"teacher {teacher}: the key file {path} is readable by others ({mode:04o}); chmod 600 it")
    if not key or "\n" in key:
        raise ConfigError(f"teacher {teacher}: the key file {path} must hold the key on one line")
    return key


def _error_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(error.message)[:300]


def _status_hint(status: int, config: TeacherConfig) -> str:
    hints = {
        401: f"; check the key in {config.api_key_env or 'the API key variable'}",
        402: "; the account balance is exhausted: top it up",
        403: "; the key is not allowed to use this model",
        404: f"; check base_url ({config.base_url}) and the model name ({config.model})",
        400: f"; the request was invalid (is {config.model!r} the right model name?)"
        + (
            f'; if {config.base_url} takes no JSON schemas, write response_format = "json_object" in '
            f"teacher {config.name}'s entry of arcticcodex.toml"
            if config.response_format == "json_schema"
            else ""
        ),
        422: "; a parameter was invalid",
    }
    return hints.get(status, "")
