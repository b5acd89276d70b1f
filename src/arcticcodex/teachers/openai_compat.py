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

Just over 400 lines: one client's whole call path (body, cache, batch or send, retries, re-ask,
chat and streaming for the agent, ping); its key rules and error wording live in :mod:`.api_keys`
and :mod:`.endpoint_errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx2 as httpx
import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from ..errors import (
    BudgetExceededError,
    TeacherRejectedError,
    TeacherResponseError,
    TeacherUnavailableError,
)
from ..retry import RetryPolicy, parse_retry_after
from .api_keys import key_from_environment, untrusted_teacher_error
from .batch_queue import BatchQueue
from .cache import RequestCache, request_key
from .endpoint_errors import endpoint_message, status_hint
from .entries import TeacherConfig
from .faults import RETRYABLE_STATUS, CircuitBreaker
from .gates import FixedGate, GateSlot, RequestGate
from .http_client import closed_before_answering, failure_cause, read_completion, sdk_client, timed_out
from .ledger import Ledger
from .parsing import ReplyError, parse_reply
from .prompts import (
    compare_messages,
    critique_messages,
    draft_messages,
    question_messages,
    rewrite_messages,
    template,
    verify_messages,
)
from .reply_schemas import ReplySchema, reply_schema, response_format
from .results import (
    CallRecord,
    CallRole,
    Comparison,
    Critique,
    EvidenceItem,
    Questions,
    Rewrite,
    Rubric,
    Usage,
    Verification,
)


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
            api_key if api_key is not None else key_from_environment(config, os.environ if environ is None else environ)
        )
        self._key = key
        self._injected_http = http_client
        self._make_gate: Callable[[], RequestGate] = lambda: FixedGate(config.concurrency)
        self._bound: tuple[asyncio.AbstractEventLoop, openai.AsyncOpenAI, RequestGate] | None = None

    def _for_this_loop(self) -> tuple[openai.AsyncOpenAI, RequestGate]:
        """The SDK client and the concurrency gate of the running event loop.

        Connections belong to the loop that opened them, so a teacher used from two ``asyncio.run``
        calls (two ``*_sync`` calls do that) gets a fresh client for the second loop.
        """
        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound[0] is not loop:
            client = sdk_client(self.config, self._key, self._injected_http)
            self._bound = (loop, client, self._make_gate())
        return self._bound[1], self._bound[2]

    def use_gates(self, make: Callable[[], RequestGate]) -> None:
        """Gate requests with what ``make`` returns (one per event loop) instead of a fixed limit of
        ``concurrency``: an endpoint shared with other processes, governed adaptively (:mod:`.gates`)."""
        self._make_gate = make
        if self._bound is not None:
            self._bound = (self._bound[0], self._bound[1], make())

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

    async def compare(self, question: str, first: str, second: str, evidence: Sequence[EvidenceItem]) -> Comparison:
        """Which of two answers to ``question`` is better (``A`` is ``first``): `arcticcodex eval`'s judge."""
        result, call = await self._call("judge", compare_messages(question, first, second, evidence))
        return Comparison.model_validate({**result.model_dump(exclude={"call"}), "call": call})

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
        async with gate.slot() as slot:
            try:
                content, usage, attempts = await self._send(client, body, slot)
            except BudgetExceededError:
                raise
            except Exception:
                self.ledger.record_failure(self.name)
                raise
            # counted while the slot is held, so a budget shared with other processes hears of it
            # before another call takes the slot
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

    async def _send(self, client: openai.AsyncOpenAI, body: dict[str, Any], slot: GateSlot) -> tuple[str, Usage, int]:
        """One reply from the endpoint, retried; each attempt waits for the gate, the budget's word, and
        tells the gate how it went (its latency, or that it was throttled and for how long)."""
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
            await slot.before_attempt()
            await self.ledger.admit(self.name)
            retry_after: float | None = None
            at_once = False
            sent = time.perf_counter()
            try:
                # the SDK's documented generic request (README, "undocumented requests"), answered raw:
                # the body is already exactly what we mean to send (no per-call TypedDict transform),
                # and the reply's two fields are read without building the SDK's ChatCompletion model
                response = await client.post("/chat/completions", cast_to=httpx.Response, body=body)
            except openai.APIStatusError as error:
                if error.status_code not in RETRYABLE_STATUS:
                    self.breaker.record_failure()
                    # from None: the SDK's error holds the request, whose headers carry the API key
                    raise self._refusal(error, attempt) from None
                reason = f"HTTP {error.status_code} {endpoint_message(error)}"
                retry_after = parse_retry_after(error.response.headers.get("retry-after"))
                if error.status_code == 429 or retry_after is not None:
                    throttled = error.status_code == 429
                    await slot.report(time.perf_counter() - sent, throttled=throttled, retry_after=retry_after)
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
                await slot.report(time.perf_counter() - sent)
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

    def _refusal(self, error: openai.APIStatusError, attempt: int) -> TeacherRejectedError:
        """A status the endpoint will not change its mind about (not 429 or 5xx), as our error."""
        return TeacherRejectedError(
            f"teacher {self.name} ({self.model}) refused the request: HTTP {error.status_code} "
            f"{endpoint_message(error)}{status_hint(error.status_code, self.config)}",
            teacher=self.name,
            attempts=attempt,
            status=error.status_code,
        )

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

    async def answer(self, messages: list[dict[str, str]], *, max_tokens: int | None = None) -> tuple[str, float]:
        """The model's prose answer to ``messages`` (a student asked as it was trained), and what it cost.

        Deterministic (temperature 0), cached, paid for and budgeted like every call of this teacher.
        """
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": 0.0,
            "max_tokens": max_tokens or self.config.max_tokens,
        }
        content, usage, _, cost, key = await self.complete(body)
        if self.cache is not None and key is not None:
            self.cache.put(key, self.name, self.model, content, usage, cost_usd=cost, ledger=self.ledger)
        return content.strip(), cost

    async def chat_message(self, body: dict[str, Any]) -> dict[str, Any]:
        """One chat completion's whole message (content and any ``tool_calls``), for the agent's tool loop.

        Not cached: a tool loop's requests depend on what the tools returned, which may change.
        """
        client, gate = self._for_this_loop()
        async with gate.slot():
            with self._as_teacher_errors("did not answer"):
                response = await client.post("/chat/completions", cast_to=ChatCompletion, body=body)
        if not isinstance(response, ChatCompletion) or not response.choices:
            raise TeacherResponseError(f"teacher {self.name} answered with no chat completion", teacher=self.name)
        message: dict[str, Any] = response.choices[0].message.model_dump(exclude_none=True)
        return message

    async def stream_text(self, body: dict[str, Any], on_text: Callable[[str], None]) -> str:
        """A streamed completion: each piece of text goes to ``on_text`` as it arrives; returns the whole text.

        For people watching an answer being written (the agent's chat); nothing is cached.  Opening
        the stream is retried as a completion is (a 429 or 5xx, a connection that failed: nothing has
        been shown yet); once pieces flow nothing is retried — a stream that breaks is a
        TeacherUnavailableError, and what arrived is not used.
        """
        client, gate = self._for_this_loop()
        pieces: list[str] = []
        async with gate.slot() as slot:
            stream = await self._open_stream(client, body, slot)
            with self._as_teacher_errors("stream broke"):
                async for chunk in stream:
                    for choice in chunk.choices:
                        if choice.delta.content:
                            pieces.append(choice.delta.content)
                            on_text(choice.delta.content)
        return "".join(pieces)

    async def _open_stream(self, client: openai.AsyncOpenAI, body: dict[str, Any], slot: GateSlot) -> Any:
        """The stream, once the endpoint has accepted it; retried on what :meth:`_send` retries."""
        attempt = 0
        while True:
            attempt += 1
            await slot.before_attempt()
            retry_after: float | None = None
            try:
                return await client.chat.completions.create(**body, stream=True)
            except openai.APIStatusError as error:
                if error.status_code not in RETRYABLE_STATUS:
                    # from None: the SDK's error holds the request, whose headers carry the API key
                    raise self._refusal(error, attempt) from None
                reason = f"HTTP {error.status_code} {endpoint_message(error)}"
                retry_after = parse_retry_after(error.response.headers.get("retry-after"))
                if error.status_code == 429 or retry_after is not None:
                    await slot.report(0.0, throttled=error.status_code == 429, retry_after=retry_after)
            except openai.APIConnectionError as error:
                reason = (
                    f"no answer within {self.config.timeout:g} s"
                    if timed_out(error)
                    else f"connection failed ({failure_cause(error)})"
                )
            delay = self.retry.delay(attempt, retry_after, self._rng)
            if delay is None:
                raise TeacherUnavailableError(
                    f"teacher {self.name} ({self.model}) failed after {attempt} attempt(s): {reason}",
                    teacher=self.name,
                    attempts=attempt,
                )
            await asyncio.sleep(delay)

    @contextlib.contextmanager
    def _as_teacher_errors(self, failure: str) -> Iterator[None]:
        """The SDK's errors as ours: a refusal (4xx) is TeacherRejectedError, anything else unavailability."""
        try:
            yield
        except openai.APIStatusError as error:
            # from None: the SDK's error holds the request, whose headers carry the API key
            raise TeacherRejectedError(
                f"teacher {self.name} ({self.model}) refused the request: HTTP {error.status_code} "
                f"{endpoint_message(error)}",
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
                f"teacher {self.name}: HTTP {error.status_code} {endpoint_message(error)}",
                teacher=self.name,
                status=error.status_code,
            ) from None
        except openai.APIConnectionError as error:
            # from None: the SDK's error holds the request, whose headers carry the API key
            raise TeacherUnavailableError(f"teacher {self.name}: {failure_cause(error)}", teacher=self.name) from None
        return [model.id for model in page.data]
