"""A fake OpenAI-compatible chat-completions server (DeepSeek / vLLM flavour) on 127.0.0.1.

Why a real server: external services are tested against fakes that speak their real protocol over real
sockets, never by monkeypatching an HTTP library, so the ``openai`` SDK, httpx and hand-written clients run
their real connection, timeout and error paths.  HTTP/1.1 with keep-alive comes from asyncio streams and
``h11`` (the parser httpx uses): one event loop and no thread per request, so benchmarks can drive it hard.
One module, past 1,000 lines, on purpose: it is a single protocol's server (chat completions, streaming,
files and batches, faults, the control API) that tests and benchmarks start as one process; its pieces
share the request log and the scripts, and splitting them would spread one fake across files.

In process: ``with FakeOpenAIServer() as server: OpenAI(base_url=server.base_url, ...)``, steered with
``script``, ``set_default``, ``inject`` and ``latency``; ``in_flight`` and ``peak_in_flight`` count the
completions being answered at once (overlap seen by count, not by clock).  A streamed reply is written as a
model writes it, ``stream_interval`` seconds between events, its last piece of text held back while
``stream_gate`` (a ``threading.Event``) is unset, and ``last_piece_sent`` set once that piece is on the
wire.  Out of process: ``python tests/fakes/openai_server.py --port 0`` prints ``LISTENING http://127.0.0.1:<port>`` and
is steered through ``/_fake/*``.

The Batch API (``/v1/files``, ``/v1/batches``, results files) is served too (:class:`_BatchAPI`, ``batch_api``):
each line of a batch is answered as the chat endpoint would answer it, scripts and faults applying.

A faulted request never consumes a scripted reply: a fault is an extra event in front of the scripted
conversation, so a client that retries after "429" or "truncated-json" gets the reply that was scripted.

The fake obeys the ``response_format`` it is sent.  Without one, or with ``json_object``, a scripted or
faulted reply goes out as it is (malformed, ill-shaped).  A strict ``json_schema`` is first checked as
OpenAI checks it (a 400 in OpenAI's words for a schema that is not strict-compatible: an open object, a
property not required, a keyword outside the subset every structured-output server takes), then obeyed
as guided decoding obeys it: the reply is always an instance of the schema, made from what was scripted
(an injected content fault cannot break it).  ``structured_outputs=False`` (``--no-structured-outputs``)
refuses ``json_schema`` as DeepSeek does.

One module of about a thousand lines on purpose: benchmarks start it as a script in its own process,
and a script run by path cannot import siblings without a ``sys.path`` edit — so chat completions, the
structured-output modes it enforces and the Batch API live here together, as one endpoint serves them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.policy
import email.utils
import itertools
import json
import math
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from email.parser import BytesParser
from http import HTTPStatus
from typing import Any

import h11

HOST = "127.0.0.1"
Reply = dict[str, Any] | str
Response = tuple[int, list[tuple[str, str]], bytes | AsyncIterator[bytes]]  # an iterator: sent chunked, as written

_CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})  # DeepSeek accepts both
_MODEL_PATHS = frozenset({"/v1/models", "/models"})
_ROLES = ("critic", "verifier", "rewriter", "drafter", "questioner", "judge")
_STARTED = int(time.time())
# status -> (message, type, code), as DeepSeek's error-code page and real bodies have them.
_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid Format", "invalid_request_error", "invalid_request_error"),
    401: ("Authentication Fails, Your api key is invalid", "authentication_error", "invalid_request_error"),
    402: ("Insufficient Balance", "unknown_error", "invalid_request_error"),
    404: ("Not Found", "invalid_request_error", "not_found"),
    405: ("Method Not Allowed", "invalid_request_error", "method_not_allowed"),
    429: ("Rate Limit Reached", "rate_limit_error", "rate_limit_exceeded"),
    500: ("Server Error", "server_error", "server_error"),
    502: ("Bad Gateway", "server_error", "bad_gateway"),
    503: ("Server Overloaded", "server_error", "server_overloaded"),
}
_STATUS_FAULTS = frozenset({"400", "401", "402", "429", "500", "502", "503"})
_CONTENT_FAULTS = frozenset({"invalid-json", "fenced-json", "truncated-json", "empty", "blank", "non-numeric-score"})
# "stall": the answer starts (headers and its first part) and then nothing more comes, the connection open
# "429:retry-after-date=N": Retry-After as an HTTP-date at least N seconds ahead (a whole second, as dates are)
_FAULT_PATTERN = re.compile(r"429:retry-after(-date)?=\d+|timeout:\d+(\.\d+)?|score:.+|drop|stall", re.DOTALL)
_GATE_LIMIT = 30.0  # seconds a held-back last piece waits for stream_gate before it is sent anyway


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it; tests assert on what the code under test really sent."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None when the body was empty or not JSON
    role: str | None  # critic / verifier / rewriter / generic for chat completions, else None
    timestamp: float
    fault: str | None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form ``GET /_fake/requests`` returns."""
        return asdict(self)


def check_fault(fault: str) -> str:
    """Reject unknown fault kinds when injected, so a typo fails the test instead of silently passing."""
    if fault in _STATUS_FAULTS or fault in _CONTENT_FAULTS or _FAULT_PATTERN.fullmatch(fault):
        return fault
    raise ValueError(f"unknown fault {fault!r}")


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of an OpenAI content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _messages(body: Any) -> list[dict[str, Any]]:
    messages = body.get("messages") if isinstance(body, dict) else None
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def detect_role(body: Any) -> str:
    """The teacher role from the system (or first) message, the way the pipeline's prompts announce it."""
    messages = _messages(body)
    if not messages:
        return "generic"
    first = next((m for m in messages if m.get("role") == "system"), messages[0])
    text = _text(first.get("content")).lower()
    return next((role for role in _ROLES if f"you are the {role}" in text), "generic")


def _text_under_review(body: Any) -> str:
    """The last user message: enough for believable defaults without parsing the prompt templates."""
    users = [m for m in _messages(body) if m.get("role") == "user"]
    return _text(users[-1].get("content")) if users else ""


def default_reply(role: str, text: str) -> dict[str, Any]:
    """A well-formed, approving reply for each role, so unscripted runs go through the whole loop."""
    if role == "critic":
        return {
            "score": 0.9,
            "criteria": {"grounding": 0.9, "clarity": 0.9},
            "strengths": ["clear"],
            "weaknesses": [],
            "suggestions": [],
        }
    if role == "verifier":
        first = re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)[0] or "the text"
        return {"claims": [{"claim": first, "verdict": "supported", "evidence": [1], "note": ""}]}
    if role == "rewriter":
        return {"text": text, "changes": []}
    if role == "drafter":  # the first sentences of the first evidence item, as a grounded student would
        evidence = _section(text, "EVIDENCE:")
        body = evidence.split("\n", 1)[1] if evidence.startswith("[") and "\n" in evidence else evidence
        sentences = re.split(r"(?<=[.!?])\s+", body.strip())
        return {"text": " ".join(sentences[:2]) + " [1]", "changes": []}
    if role == "questioner":
        words = _section(text, "PASSAGE:").split()[:8]
        return {"questions": [f"What does the source say about {' '.join(words)}?"]}
    if role == "judge":  # `arcticcodex eval` comparing two answers: no preference unless scripted
        return {"winner": "tie", "reason": "equally good"}
    return {"text": "ok"}


def _section(text: str, label: str) -> str:
    """The block after ``label`` in a prompt, up to the next blank line that starts another section."""
    after = text.partition(label)[2]
    return re.split(r"\n\n(?:[A-Z][A-Z ]+:|Reply with)", after, maxsplit=1)[0].strip()


def _serialize(reply: Reply) -> str:
    return reply if isinstance(reply, str) else json.dumps(reply)


def _loads(text: str | bytes, fallback: Any) -> Any:
    """JSON when it parses, else the fallback: the fake must answer garbage, not crash on it."""
    try:
        return json.loads(text)
    except ValueError:
        return fallback


def _tokens(text: str) -> int:
    """The fake's tokenizer: about four characters a token, never zero (as usage is never zero)."""
    return max(1, len(text) // 4)


def _apply_content_fault(fault: str | None, content: str, text: str) -> tuple[str, str]:
    """Turn the normal reply into the malformed output real models produce; returns (content, finish_reason)."""
    if fault == "invalid-json":
        return "Sure! The score is high.", "stop"
    if fault == "fenced-json":
        return f"Here is the JSON you asked for:\n```json\n{content}\n```", "stop"
    if fault == "truncated-json":
        return content[: len(content) // 2], "length"
    if fault == "empty":
        return "", "stop"
    if fault == "blank":  # DeepSeek's JSON mode replaces non-JSON output with spaces
        return " " * 16, "stop"
    if fault is not None and (fault == "non-numeric-score" or fault.startswith("score:")):
        raw = fault.partition(":")[2]  # "score:X" takes X as JSON, or as a string when it isn't JSON
        value = _loads(raw, raw) if raw else "high"
        reply = _loads(content, None)
        if not isinstance(reply, dict):
            reply = default_reply("critic", text)
        return json.dumps({**reply, "score": value}), "stop"
    return content, "stop"


def _json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return status, [("content-type", "application/json"), *(headers or [])], json.dumps(payload).encode()


def _stream_events(reply_id: str, model: str, content: str, finish: str, usage: dict[str, int]) -> list[bytes]:
    """A streamed completion as server-sent events: the role, the text a word a chunk, the end, ``[DONE]``."""
    base = {"id": reply_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    pieces = re.findall(r"\S+\s*|\s+", content) or [""]
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}, *({"content": p} for p in pieces)]
    events = [base | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    events.append(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}], "usage": usage})
    return [f"data: {json.dumps(event)}\n\n".encode() for event in events] + [b"data: [DONE]\n\n"]


def _error(status: int, message: str | None = None, headers: list[tuple[str, str]] | None = None) -> Response:
    """The OpenAI/DeepSeek error body: {"error": {"message", "type", "param", "code"}}."""
    default_message, kind, code = _ERRORS[status]
    body = {"error": {"message": message or default_message, "type": kind, "param": None, "code": code}}
    return _json_response(status, body, headers)


def _validate(body: Any, require_json_word: bool, structured_outputs: bool = True) -> str | None:
    """The 400s a real server answers; catching them here catches requests the real API would refuse."""
    if not isinstance(body, dict):
        return "Invalid request body: expected a JSON object"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return "Invalid request: 'messages' must be a non-empty list of message objects"
    if body.get("stream") not in (None, True, False):
        return "stream must be true or false"
    fmt = body.get("response_format")
    json_mode = isinstance(fmt, dict) and fmt.get("type") == "json_object"
    if require_json_word and json_mode and "json" not in " ".join(_text(m.get("content")) for m in messages).lower():
        return "Prompt must contain the word 'json' in some form to use 'response_format' of type 'json_object'."
    return _response_format_problem(fmt, structured_outputs)


# -- structured outputs: a json_schema response_format checked as OpenAI checks it, obeyed as guided decoding --

_SCHEMA_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# the keywords every server that enforces a strict schema takes (OpenAI, vLLM, Ollama); others are refused
_STRICT_KEYWORDS = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", "description"}
    | {"title", "$ref", "$defs"}
)
_JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_Context = tuple[str | int, ...]  # where in a schema, as OpenAI's messages name it: ('properties', 'score')


def _response_format_problem(fmt: Any, structured_outputs: bool) -> str | None:
    """Why a ``response_format`` is refused, in OpenAI's words (DeepSeek's when it has no JSON schemas)."""
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        return "Invalid value for 'response_format.type': supported values are 'text', 'json_object' and 'json_schema'."
    if kind != "json_schema":
        return None
    if not structured_outputs:
        return "This response_format type is unavailable now"  # DeepSeek: JSON mode only
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict) or "name" not in spec:
        return "Missing required parameter: 'response_format.json_schema.name'."
    name = spec["name"]
    if not isinstance(name, str) or not _SCHEMA_NAME.fullmatch(name):
        return "Invalid 'response_format.json_schema.name': string does not match pattern '^[a-zA-Z0-9_-]{1,64}$'."
    schema = spec.get("schema", {})
    if not isinstance(schema, dict):
        return "Invalid type for 'response_format.json_schema.schema': expected an object."
    if spec.get("strict") is True:
        if schema.get("type") != "object" or "anyOf" in schema:
            got = schema.get("type", "anyOf" if "anyOf" in schema else None)
            return (
                f"Invalid schema for response_format '{name}': schema must be a JSON Schema of "
                f"'type: \"object\"', got 'type: \"{got}\"'."
            )
        problem = _strict_problem(schema, schema, ())
        if problem is not None:
            return f"Invalid schema for response_format '{name}': In context={problem[0]!r}, {problem[1]}"
    return None


def _strict_problem(node: Any, root: dict[str, Any], context: _Context) -> tuple[_Context, str] | None:
    """The first place (as OpenAI names it: a path of keys) where ``node`` is no strict schema, and why."""
    if not isinstance(node, dict):
        return context, "schema must be a JSON Schema object."
    for key in node:
        if key not in _STRICT_KEYWORDS:
            return context, f"'{key}' is not permitted."
    if "$ref" in node:
        if _resolve(node["$ref"], root) is None:
            return context, f"reference {node['$ref']!r} can't be resolved."
        return None  # its definition is checked under $defs
    if not any(key in node for key in ("type", "enum", "const", "anyOf")):
        return context, "schema must have a 'type' key."
    types = node.get("type", [])
    for kind in types if isinstance(types, list) else [types]:
        if kind not in _JSON_TYPES:
            return context, f"{kind!r} is not a valid type."
    if "enum" in node and (not isinstance(node["enum"], list) or not node["enum"]):
        return context, "'enum' must be a non-empty array."
    properties = node.get("properties", {})
    if "object" in (types if isinstance(types, list) else [types]):
        if not isinstance(properties, dict):
            return context, "'properties' must be an object."
        if node.get("additionalProperties") is not False:
            return context, "'additionalProperties' is required to be supplied and to be false."
        required = node.get("required", [] if not properties else None)
        missing = [name for name in properties if not isinstance(required, list) or name not in required]
        if not isinstance(required, list) or missing:
            return context, (
                "'required' is required to be supplied and to be an array including every key in properties. "
                f"Missing '{missing[0] if missing else ''}'."
            )
        extra = [name for name in required if name not in properties]
        if extra:
            return context, f"'required' names a key not in properties: extra required key '{extra[0]}' supplied."
    children: list[tuple[_Context, Any]] = []
    if isinstance(properties, dict):
        children += [((*context, "properties", name), sub) for name, sub in properties.items()]
    if "items" in node:
        children.append(((*context, "items"), node["items"]))
    if isinstance(node.get("anyOf"), list):
        children += [((*context, "anyOf", index), branch) for index, branch in enumerate(node["anyOf"])]
    if isinstance(node.get("$defs"), dict):
        children += [((*context, "$defs", name), sub) for name, sub in node["$defs"].items()]
    for where, child in children:
        problem = _strict_problem(child, root, where)
        if problem is not None:
            return problem
    return None


def _resolve(reference: Any, root: dict[str, Any]) -> dict[str, Any] | None:
    """The schema a local ``#/$defs/Name`` reference names, or None."""
    if not isinstance(reference, str) or not reference.startswith("#/$defs/"):
        return None
    found = root.get("$defs", {}).get(reference[len("#/$defs/") :]) if isinstance(root.get("$defs"), dict) else None
    return found if isinstance(found, dict) else None


def _guided_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The schema a request constrains its reply to: a strict json_schema (else the reply is as scripted)."""
    fmt = body.get("response_format")
    spec = fmt.get("json_schema") if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None
    schema = spec.get("schema") if isinstance(spec, dict) and spec.get("strict") is True else None
    return schema if isinstance(schema, dict) else None


def _guided(content: str, intended: str, fallback: dict[str, Any], schema: dict[str, Any]) -> str:
    """What guided decoding writes: an instance of ``schema``, as near as it gets to what the model meant.

    The model "meant" the reply as written (a scripted reply, with any injected content fault); when
    that is no JSON (prose, a fence, half an object, nothing) the reply before the fault, else the
    role's default.  Decoding cannot leave the schema, so what does not fit is made to: a missing
    property gets its type's plain value, an extra one is never written, a word where a number goes
    becomes a number.
    """
    missing = object()
    meant = _loads(content, missing)
    if meant is missing:
        meant = _loads(intended, missing)
    if meant is missing:
        meant = fallback
    return json.dumps(_conforming(meant, schema, schema))


def _conforming(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """``value`` as an instance of ``schema`` (a strict schema the request passed :func:`_strict_problem`)."""
    if "$ref" in schema:
        return _conforming(value, _resolve(schema["$ref"], root) or {}, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return value if value in schema["enum"] else schema["enum"][0]
    if "anyOf" in schema:
        fitting = [branch for branch in schema["anyOf"] if _conforming(value, branch, root) == value]
        return value if fitting else _conforming(value, schema["anyOf"][0], root)
    kinds = schema.get("type", [])
    kinds = kinds if isinstance(kinds, list) else [kinds]
    matching = [kind for kind in kinds if _is_type(value, kind)]
    kind = matching[0] if matching else (kinds[0] if kinds else "null")
    if kind == "object":
        given = value if isinstance(value, dict) else {}
        properties = schema.get("properties", {})
        return {name: _conforming(given.get(name), sub, root) for name, sub in properties.items()}
    if kind == "array":
        items = schema.get("items", {})
        return [_conforming(item, items, root) for item in value] if isinstance(value, list) else []
    if matching:
        return value
    if kind in ("number", "integer"):
        number = _loads(value, None) if isinstance(value, str) else None
        if isinstance(number, int | float) and not isinstance(number, bool) and math.isfinite(number):
            return int(number) if kind == "integer" else number
        return 0
    if kind == "string":
        return "" if value is None or isinstance(value, dict | list) else str(value)
    return False if kind == "boolean" else None


def _is_type(value: Any, kind: str) -> bool:
    """Whether ``value`` is of JSON type ``kind`` (a bool is no number; a whole float is an integer)."""
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    checks: dict[str, type | tuple[type, ...]] = {"object": dict, "array": list, "string": str, "boolean": bool}
    return value is None if kind == "null" else isinstance(value, checks.get(kind, ()))


class FakeOpenAIServer:
    """The server and its scripting API; every method is safe to call from any thread."""

    def __init__(
        self,
        *,
        model: str = "fake-model",
        latency: float = 0.0,
        api_key: str | None = None,
        cache_hit_fraction: float = 0.0,
        port: int = 0,
        require_json_word: bool = True,
        structured_outputs: bool = True,
    ) -> None:
        self.model = model
        # json_schema response formats: checked, and obeyed as guided decoding; False: refused, as DeepSeek does
        self.structured_outputs = structured_outputs
        self.latency = latency  # seconds slept before answering each completion
        self.api_key = api_key  # when set, everything but /health and /_fake/* needs "Bearer <key>"
        self.cache_hit_fraction = cache_hit_fraction  # share of prompt tokens reported as cache hits
        self.require_json_word = require_json_word  # json_object mode without "json" in the prompt is a 400
        self.stream_interval = 0.0  # seconds between the events of a streamed reply (a model generating)
        self.stream_gate: threading.Event | None = None  # when set: holds a stream's last text until it is set
        self.last_piece_sent = threading.Event()  # set once a stream's last piece of text was written
        self.connections = 0  # TCP connections accepted: lets tests see keep-alive at work
        self.in_flight = 0  # completions being answered now (in their latency or a "timeout:N" fault)
        self.peak_in_flight = 0  # the most at once: more than 1 shows requests overlapped, by count, not by clock
        self._initial = (latency, cache_hit_fraction)
        self._requested_port = port
        self._port: int | None = None
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[str]] = {}
        self._defaults: dict[str, str | Callable[[str], Reply]] = {}
        self._faults: deque[tuple[str | None, str]] = deque()
        self._log: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.batch_api = _BatchAPI(self)  # /v1/files and /v1/batches

    def script(self, role: str, replies: list[Reply]) -> None:
        """Queue replies for a role: a dict is sent as json.dumps of it, a str verbatim."""
        contents = [_serialize(reply) for reply in replies]
        with self._lock:
            self._scripts.setdefault(role, deque()).extend(contents)

    def set_default(self, role: str, reply: Reply | Callable[[str], Reply]) -> None:
        """The reply a role gets once its script is used up (instead of the built-in default); a callable
        is given the request's prompt text and answers from it (a teacher whose verdict depends on the answer)."""
        content = reply if callable(reply) else _serialize(reply)
        with self._lock:
            self._defaults[role] = content

    def inject(self, *faults: str, role: str | None = None) -> None:
        """Queue faults, one per matching chat request, in order; role=None matches any role."""
        checked = [check_fault(fault) for fault in faults]
        with self._lock:
            self._faults.extend((role, fault) for fault in checked)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the request log (control-API calls are not logged)."""
        with self._lock:
            return list(self._log)

    def clear(self) -> None:
        """Empty the request log only."""
        with self._lock:
            self._log.clear()

    def reset(self) -> None:
        """Back to a fresh server: no scripts, defaults, faults or log; initial latency and cache fraction."""
        with self._lock:
            self._scripts.clear()
            self._defaults.clear()
            self._faults.clear()
            self._log.clear()
            self.latency, self.cache_hit_fraction = self._initial
            self.stream_interval, self.stream_gate = 0.0, None
            self.last_piece_sent.clear()
            self.peak_in_flight = self.in_flight
            self.batch_api.reset()

    def _take_fault(self, role: str) -> str | None:
        with self._lock:
            for index, (wanted, fault) in enumerate(self._faults):
                if wanted is None or wanted == role:
                    del self._faults[index]
                    return fault
        return None

    def _next_content(self, role: str, text: str, consume: bool) -> str:
        with self._lock:
            queue = self._scripts.get(role)
            if queue:
                return queue.popleft() if consume else queue[0]
            override = self._defaults.get(role)
        if callable(override):
            return _serialize(override(text))
        return override if override is not None else json.dumps(default_reply(role, text))

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not listening yet: call start()")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        """Serve from a daemon thread's event loop; returns once the socket listens."""
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        ready = threading.Event()
        errors: list[BaseException] = []
        loop = self._loop = asyncio.new_event_loop()

        def run() -> None:
            try:
                loop.run_until_complete(self.serve(on_ready=lambda _port: ready.set()))
            except BaseException as exc:  # reported by start(), not lost in the thread
                errors.append(exc)
            finally:
                ready.set()
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-openai-server", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            self._thread.join()
            self._thread = None
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stop listening, cancel in-flight requests (e.g. a "timeout:N" still sleeping) and join the thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already ended
            loop.call_soon_threadsafe(self.request_stop)
        thread.join(timeout=10)
        self._thread = None

    def request_stop(self) -> None:
        """Ask serve() to return; call it on the server's own loop (signal handlers do)."""
        if self._stopping is not None:
            self._stopping.set()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def serve(self, on_ready: Callable[[int], None] | None = None) -> None:
        """Listen on 127.0.0.1 until request_stop(); the thread and the command line both run this."""
        self._stopping = asyncio.Event()
        tasks: set[asyncio.Task[Any]] = set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                with contextlib.suppress(asyncio.CancelledError):  # stop() cancels open connections
                    await self._connection(reader, writer)
            finally:
                tasks.discard(task)

        server = await asyncio.start_server(on_connect, HOST, self._requested_port, backlog=1024)
        self._port = server.sockets[0].getsockname()[1]
        if on_ready is not None:
            on_ready(self._port)
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One keep-alive connection: read a request, answer it, start the next cycle until either side closes."""
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._next_event(conn, reader)
                if not isinstance(request, h11.Request):
                    return
                body = bytearray()
                while isinstance(event := await self._next_event(conn, reader), h11.Data):
                    body += event.data
                if not isinstance(event, h11.EndOfMessage):
                    return
                headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers}
                response = await self._respond(request.method.decode(), request.target.decode(), headers, bytes(body))
                if response is None:  # the "drop" fault: close without a byte of response
                    return
                status, extra, payload = response
                out = [(b"server", b"fake-openai")]
                if isinstance(payload, bytes):  # else no length: h11 sends the body chunked, piece by piece
                    out.insert(0, (b"content-length", str(len(payload)).encode()))
                out += [(name.encode(), value.encode()) for name, value in extra]
                writer.write(conn.send(h11.Response(status_code=status, headers=out, reason=HTTPStatus(status).phrase)))
                if isinstance(payload, bytes):
                    writer.write(conn.send(h11.Data(data=payload)))
                else:
                    async for piece in payload:
                        writer.write(conn.send(h11.Data(data=piece)))
                        await writer.drain()
                writer.write(conn.send(h11.EndOfMessage()))
                await writer.drain()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (h11.ProtocolError, OSError):
            return  # a client that hung up or spoke nonsense: nothing to answer
        finally:
            writer.close()

    @staticmethod
    async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
        while (event := conn.next_event()) is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        return event

    async def _respond(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Response | None:
        path = target.split("?", 1)[0]
        if path.startswith("/_fake/"):
            return self._control(method, path, raw)
        body = _loads(raw, None) if raw else None
        is_chat = path in _CHAT_PATHS and method == "POST"
        role = detect_role(body) if is_chat else None
        authorized = self.api_key is None or headers.get("authorization") == f"Bearer {self.api_key}"
        fault = self._take_fault(role) if is_chat and authorized and role is not None else None
        record = RecordedRequest(method, path, headers, body, role, time.time(), fault)
        with self._lock:
            self._log.append(record)
        if path == "/health":
            return 200, [], b""
        if path == "/metrics":  # vLLM's Prometheus counters are unauthenticated, like /health
            with self._lock:
                served = sum(1 for r in self._log if r.role is not None and r.fault is None)
            text = f'vllm:request_success_total{{finished_reason="stop",model_name="{self.model}"}} {served:.1f}\n'
            return 200, [("content-type", "text/plain; version=0.0.4")], text.encode()
        if not authorized:
            return _error(401)
        if path in _MODEL_PATHS and method == "GET":
            card = {"id": self.model, "object": "model", "created": _STARTED, "owned_by": "vllm", "root": self.model}
            card |= {"parent": None, "max_model_len": 8192, "permission": []}
            return _json_response(200, {"object": "list", "data": [card]})
        if is_chat:
            return await self._chat(body, role or "generic", fault)
        if _BatchAPI.serves(path):
            return await self.batch_api.respond(method, path, headers, raw)
        return _error(405 if path in _CHAT_PATHS | _MODEL_PATHS else 404)

    async def _chat(self, body: Any, role: str, fault: str | None) -> Response | None:
        """Answer one completion, counted in ``in_flight`` until its answer (or its stream) is ready."""
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._completion(body, role, fault)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _completion(self, body: Any, role: str, fault: str | None) -> Response | None:
        """One completion: latency, then the fault (if any), then the scripted or default reply."""
        delay = self.latency + (float(fault[8:]) if fault and fault.startswith("timeout:") else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        if fault == "drop":
            return None
        if fault and fault[:3] in _STATUS_FAULTS:
            retry_after = fault.partition("=")[2]
            if retry_after and fault.startswith("429:retry-after-date="):
                retry_after = email.utils.formatdate(math.ceil(time.time()) + int(retry_after), usegmt=True)
            return _error(int(fault[:3]), headers=[("retry-after", retry_after)] if retry_after else None)
        problem = _validate(body, self.require_json_word, self.structured_outputs)
        if problem is not None:
            return _error(400, problem)
        text = _text_under_review(body)
        intended = self._next_content(role, text, consume=fault is None)
        content, finish = _apply_content_fault(fault, intended, text)
        schema = _guided_schema(body)
        if schema is not None:  # guided decoding: whatever was scripted or injected, the reply fits the schema
            content, finish = _guided(content, intended, default_reply(role, text), schema), "stop"
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(limit, int) and _tokens(content) > limit:  # a real model stops mid-JSON too
            content, finish = content[: limit * 4], "length"
        prompt = _tokens("".join(_text(m.get("content")) for m in body["messages"]))
        hits = min(prompt, max(0, int(prompt * self.cache_hit_fraction)))
        completion = _tokens(content)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        usage |= {"prompt_cache_hit_tokens": hits, "prompt_cache_miss_tokens": prompt - hits}
        choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
        scripted = _loads(content, None)
        if isinstance(scripted, dict) and isinstance(scripted.get("tool_calls"), list) and body.get("tools"):
            # a scripted {"tool_calls": [{"name", "arguments"}]} is sent as the model's request to call tools
            calls = [
                {
                    "id": f"call_{n}",
                    "type": "function",
                    "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
                }
                for n, c in enumerate(scripted["tool_calls"], 1)
            ]
            message = {"role": "assistant", "content": None, "tool_calls": calls}
            choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
        model = body.get("model") or self.model
        if body.get("stream") is True:
            events = _stream_events(f"chatcmpl-{next(self._ids)}", model, content, finish, usage)
            return 200, [("content-type", "text/event-stream")], self._written(events, stall=fault == "stall")
        reply = {"id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion", "created": int(time.time())}
        status, headers, payload = _json_response(200, reply | {"model": model, "choices": [choice], "usage": usage})
        if fault == "stall" and isinstance(payload, bytes):  # half the body, then silence
            return status, headers, self._written([payload[: len(payload) // 2], payload[len(payload) // 2 :]], True)
        return status, headers, payload

    async def _written(self, events: list[bytes], stall: bool) -> AsyncIterator[bytes]:
        """A streamed body as a model writes it: ``stream_interval`` apart, the last text held by ``stream_gate``.

        With ``stall`` only the first two events leave (for a stream: the role and the first piece of text);
        then the server says nothing more and keeps the connection open until the client gives up or the
        server stops.
        """
        last_text = len(events) - 3  # role, text pieces …, the finish event, [DONE]
        for index, event in enumerate(events):
            if index and self.stream_interval:
                await asyncio.sleep(self.stream_interval)
            gate = self.stream_gate
            if index == last_text and gate is not None:
                deadline = time.monotonic() + _GATE_LIMIT
                while not gate.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.005)
            yield event
            if index == last_text:
                self.last_piece_sent.set()
            if stall and index == 1:
                await asyncio.Event().wait()  # never set: cancelled when the server stops

    def _control(self, method: str, path: str, raw: bytes) -> Response:
        """The /_fake/* API, so a server in another process can be scripted like an in-process one."""
        try:
            data = json.loads(raw) if raw else {}
            if method == "GET" and path == "/_fake/requests":
                return _json_response(200, [record.as_dict() for record in self.requests])
            if method != "POST":
                return _error(405)
            if path == "/_fake/script":
                self.script(data["role"], data["replies"])
            elif path == "/_fake/default":
                self.set_default(data["role"], data["reply"])
            elif path == "/_fake/faults":
                self.inject(*data["faults"], role=data.get("role"))
            elif path == "/_fake/latency":
                self.latency = float(data["seconds"])
            elif path == "/_fake/reset":
                self.reset()
            elif path == "/_fake/batches":  # {"hold": bool} and/or {"end": ["expired", ...]}
                if "hold" in data:
                    self.batch_api.hold = bool(data["hold"])
                self.batch_api.end_next(*data.get("end", []))
            else:
                return _error(404)
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, f"bad control request: {exc!r}")
        return _json_response(200, {"ok": True})


class _BatchAPI:
    """The Batch API (``/v1/files``, ``/v1/batches``) of the fake, answering each line as its chat endpoint would.

    A batch moves one status a poll (``GET /v1/batches/{id}``): ``validating`` → ``in_progress`` →
    ``finalizing`` (its lines are answered now, scripts and faults applying to each as to a chat request)
    → ``completed``; ``hold`` keeps every batch ``in_progress`` until released (a batch provably in flight).
    A line answered with an error status (an injected "500", a 400 the chat endpoint would give) goes to the
    error file, the rest to the output file.  ``end_next("expired")`` (or "failed", "cancelled") ends the
    next batch that way instead.  Each answered line is logged as a request to
    ``/v1/batches/{id}/lines/{custom_id}`` with its role, so tests count what the batch answered.
    """

    def __init__(self, server: FakeOpenAIServer) -> None:
        self.server = server
        self.hold = False
        # when set: a created batch's answer waits for this event (a client killed after the provider made the
        # batch and before it learned the batch's id)
        self.create_gate: threading.Event | None = None
        self.files: dict[str, dict[str, Any]] = {}  # id -> the file object, plus its "content" (bytes)
        self.batches: dict[str, dict[str, Any]] = {}
        self._ends: deque[str] = deque()
        self._ids = itertools.count(1)

    def reset(self) -> None:
        self.hold = False
        self.create_gate = None
        self.files.clear()
        self.batches.clear()
        self._ends.clear()

    def end_next(self, *statuses: str) -> None:
        """The next batches end with these statuses ("failed", "expired", "cancelled") instead of completing."""
        unknown = [status for status in statuses if status not in ("failed", "expired", "cancelled", "completed")]
        if unknown:
            raise ValueError(f"unknown batch ending {unknown}")
        self._ends.extend(statuses)

    def submitted_lines(self) -> list[tuple[str, str]]:
        """(batch id, custom id) of every line of every batch created, in order."""
        found = []
        for batch_id, batch in self.batches.items():
            for line in self._lines(self.files[batch["input_file_id"]]["content"]):
                found.append((batch_id, str(line.get("custom_id"))))
        return found

    @staticmethod
    def serves(path: str) -> bool:
        return path.startswith(("/v1/files", "/v1/batches", "/files", "/batches"))

    async def respond(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Response:
        parts = path.removeprefix("/v1").strip("/").split("/")
        if parts == ["files"] and method == "POST":
            return self._upload(headers.get("content-type", ""), raw)
        if len(parts) == 3 and parts[0] == "files" and parts[2] == "content" and method == "GET":
            found = self.files.get(parts[1])
            if found is None:
                return _error(404, f"No such File object: {parts[1]}")
            return 200, [("content-type", "application/octet-stream")], found["content"]
        if len(parts) == 2 and parts[0] == "files" and method == "GET":
            found = self.files.get(parts[1])
            if found is None:
                return _error(404, f"No such File object: {parts[1]}")
            return _json_response(200, {k: v for k, v in found.items() if k != "content"})
        if parts == ["batches"] and method == "POST":
            created = self._create(_loads(raw, None))
            gate = self.create_gate
            while gate is not None and not gate.is_set():
                await asyncio.sleep(0.005)
            return created
        if parts == ["batches"] and method == "GET":
            data = [self._public(b) for b in reversed(self.batches.values())]
            first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
            return _json_response(
                200, {"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": False}
            )
        if len(parts) == 2 and parts[0] == "batches" and method == "GET":
            batch = self.batches.get(parts[1])
            if batch is None:
                return _error(404, f"No such Batch object: {parts[1]}")
            await self._advance(batch)
            return _json_response(200, self._public(batch))
        return _error(405 if len(parts) <= 3 else 404)

    def _upload(self, content_type: str, raw: bytes) -> Response:
        """multipart/form-data with ``purpose`` and ``file``, as the SDK sends it."""
        message = BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
        )
        fields: dict[str, tuple[str | None, bytes]] = {}
        if message.is_multipart():
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if isinstance(name, str) and isinstance(payload, bytes):
                    fields[name] = (part.get_filename(), payload)
        if "file" not in fields or "purpose" not in fields:
            return _error(400, "Invalid file upload: 'file' and 'purpose' are required (multipart/form-data)")
        purpose = fields["purpose"][1].decode()
        file_id = f"file-{next(self._ids)}"
        filename, content = fields["file"]
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename or "upload",
            "purpose": purpose,
            "status": "processed",
            "content": content,
        }
        return _json_response(200, {k: v for k, v in self.files[file_id].items() if k != "content"})

    def _create(self, body: Any) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("input_file_id"), str):
            return _error(400, "Invalid request: 'input_file_id' is required")
        found = self.files.get(body["input_file_id"])
        if found is None:
            return _error(400, f"No such File object: {body['input_file_id']}")
        if found["purpose"] != "batch":
            return _error(400, "the input file's purpose must be 'batch'")
        if body.get("endpoint") not in ("/v1/chat/completions", "/chat/completions"):
            return _error(400, f"unsupported endpoint {body.get('endpoint')!r}")
        if body.get("completion_window") != "24h":
            return _error(400, "completion_window must be '24h'")
        now = int(time.time())
        batch_id = f"batch_{next(self._ids)}"
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 86400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        return _json_response(200, self.batches[batch_id])

    @staticmethod
    def _public(batch: dict[str, Any]) -> dict[str, Any]:
        return dict(batch)

    @staticmethod
    def _lines(content: bytes) -> list[dict[str, Any]]:
        lines = [_loads(line, None) for line in content.splitlines() if line.strip()]
        return [line if isinstance(line, dict) else {} for line in lines]

    async def _advance(self, batch: dict[str, Any]) -> None:
        """One step of the batch's life, taken when it is polled."""
        now = int(time.time())
        status = batch["status"]
        if status == "validating":
            lines = self._lines(self.files[batch["input_file_id"]]["content"])
            problem = self._invalid(lines)
            if problem is not None or (self._ends and self._ends[0] == "failed"):
                if problem is None:
                    self._ends.popleft()
                batch |= {"status": "failed", "failed_at": now}
                batch["errors"] = {"object": "list", "data": [{"code": "invalid_file", "message": problem or "failed"}]}
                return
            batch |= {"status": "in_progress", "in_progress_at": now}
            batch["request_counts"]["total"] = len(lines)
        elif status == "in_progress" and not self.hold:
            if self._ends and self._ends[0] in ("expired", "cancelled"):
                ending = self._ends.popleft()
                batch |= {"status": ending, f"{ending}_at": now}
                return
            await self._answer(batch)
            batch |= {"status": "finalizing", "finalizing_at": now}
        elif status == "finalizing":
            if self._ends and self._ends[0] == "completed":
                self._ends.popleft()
            batch |= {"status": "completed", "completed_at": now}

    @staticmethod
    def _invalid(lines: list[dict[str, Any]]) -> str | None:
        seen: set[str] = set()
        for number, line in enumerate(lines, 1):
            custom_id = line.get("custom_id")
            if not isinstance(custom_id, str) or custom_id in seen:
                return f"line {number}: custom_id must be a string unique in the file"
            seen.add(custom_id)
            if line.get("method") != "POST" or line.get("url") not in ("/v1/chat/completions", "/chat/completions"):
                return f"line {number}: method must be POST and url /v1/chat/completions"
            if not isinstance(line.get("body"), dict):
                return f"line {number}: body must be an object"
        return None if lines else "the input file holds no requests"

    async def _answer(self, batch: dict[str, Any]) -> None:
        lines = self._lines(self.files[batch["input_file_id"]]["content"])
        answers = await asyncio.gather(*(self._line(batch["id"], line) for line in lines))
        output = [answer for ok, answer in answers if ok]
        errors = [answer for ok, answer in answers if not ok]
        for name, kept in (("output_file_id", output), ("error_file_id", errors)):
            if kept:
                file_id = f"file-{next(self._ids)}"
                content = b"".join(json.dumps(line).encode() + b"\n" for line in kept)
                self.files[file_id] = {
                    "id": file_id,
                    "object": "file",
                    "bytes": len(content),
                    "created_at": int(time.time()),
                    "filename": f"{batch['id']}_{name[:-8]}.jsonl",
                    "purpose": "batch_output",
                    "status": "processed",
                    "content": content,
                }
                batch[name] = file_id
        batch["request_counts"] |= {"completed": len(output), "failed": len(errors)}

    async def _line(self, batch_id: str, line: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """One line answered exactly as ``POST /v1/chat/completions`` would answer its body."""
        server, body, custom_id = self.server, line["body"], line["custom_id"]
        role = detect_role(body)
        fault = server._take_fault(role)
        record = RecordedRequest(
            "POST", f"/v1/batches/{batch_id}/lines/{custom_id}", {}, body, role, time.time(), fault
        )
        with server._lock:
            server._log.append(record)
        answer_id = f"batch_req_{next(self._ids)}"
        if body.get("stream") is True:
            response: Response | None = _error(400, "stream is not supported in a batch")
        else:
            response = await server._chat(body, role, fault)
        payload = response[2] if response is not None else None
        if response is None or not isinstance(payload, bytes):  # "drop", "stall": the line failed
            error = {"code": "server_error", "message": "the request could not be completed"}
            return False, {"id": answer_id, "custom_id": custom_id, "response": None, "error": error}
        status = response[0]
        reply = {"status_code": status, "request_id": f"req_{answer_id}", "body": _loads(payload, None)}
        return status == 200, {"id": answer_id, "custom_id": custom_id, "response": reply, "error": None}


def main(argv: list[str] | None = None) -> int:
    """Run as its own process until SIGTERM/SIGINT, announcing the port on stdout."""
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible chat-completions server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each completion")
    parser.add_argument("--model", default="fake-model", help="the served model id (/v1/models)")
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    parser.add_argument("--cache-hit-fraction", type=float, default=0.0, help="share of prompt tokens cached")
    parser.add_argument(
        "--no-structured-outputs",
        dest="structured_outputs",
        action="store_false",
        help="refuse response_format json_schema, as DeepSeek does",
    )
    server = FakeOpenAIServer(**vars(parser.parse_args(argv)))  # the option names are the keyword names

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, server.request_stop)
        await server.serve(on_ready=lambda port: print(f"LISTENING http://{HOST}:{port}", flush=True))

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
