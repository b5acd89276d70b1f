"""The agent's tools: typed, described for a model's tool-calling API, checked, and approved when they write.

Each tool has a name, a description and a JSON schema for its arguments (what the OpenAI-compatible
``tools`` parameter takes), and a function.  :meth:`ToolRegistry.call` is the one way a tool runs:

* the arguments are checked against the schema's required names and types first — a model that sends
  ``{"path": 3}`` gets a clear error back, not a crash;
* tools that change something (``writes=True``) run only when the approval callback says yes; with no
  callback they are refused (:class:`~arcticcodex.errors.ApprovalRequiredError`);
* every call is recorded (name, arguments, result or error), so an answer shows what it did;
* file tools go through the :class:`~arcticcodex.agent.sandbox.Sandbox`, arithmetic through
  :func:`~arcticcodex.agent.calculator.calculate`; results are cut to a size a prompt can hold.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ApprovalRequiredError, ToolError
from ..vault.review import ReviewQueue
from ..vault.search import Searcher
from .calculator import calculate
from .sandbox import Sandbox

MAX_RESULT_CHARS = 8_000
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {"string": str, "integer": int, "number": (int, float)}


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    function: Callable[..., Any]
    writes: bool = False

    def schema(self) -> dict[str, Any]:
        """The entry for the ``tools`` parameter of a chat-completions request."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass(frozen=True)
class ToolCallRecord:
    name: str
    arguments: dict[str, Any]
    result: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "result": self.result, "error": self.error}


Approver = Callable[[str, Mapping[str, Any]], bool]


@dataclass
class ToolRegistry:
    """The tools an agent may call, and the record of the calls it made."""

    tools: dict[str, Tool] = field(default_factory=dict)
    approve: Approver | None = None
    calls: list[ToolCallRecord] = field(default_factory=list)

    def add(self, tool: Tool) -> None:
        self.tools[tool.name] = tool

    def schemas(self) -> list[dict[str, Any]]:
        return [tool.schema() for tool in self.tools.values()]

    def call(self, name: str, arguments: str | Mapping[str, Any]) -> str:
        """Run a tool and return its result as text; a refusal or failure is raised *and* recorded."""
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else dict(arguments)
        except ValueError:
            parsed = {"raw": str(arguments)[:200]}
            self.calls.append(ToolCallRecord(name, parsed, error="arguments are not a JSON object"))
            raise ToolError(f"the arguments of {name} are not a JSON object") from None
        try:
            tool = self.tools.get(name)
            if tool is None:
                raise ToolError(f"there is no tool {name!r}; tools are {', '.join(self.tools) or 'none'}")
            _check_arguments(tool, parsed)
            if tool.writes and not (self.approve is not None and self.approve(name, parsed)):
                raise ApprovalRequiredError(f"{name} changes files and was not approved; nothing was written")
            result = tool.function(**parsed)
            text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
            if len(text) > MAX_RESULT_CHARS:
                text = text[:MAX_RESULT_CHARS] + f"… [cut at {MAX_RESULT_CHARS} characters]"
        except ToolError as error:
            self.calls.append(ToolCallRecord(name, parsed, error=str(error)))
            raise
        self.calls.append(ToolCallRecord(name, parsed, result=text))
        return text


def _check_arguments(tool: Tool, arguments: Mapping[str, Any]) -> None:
    properties: dict[str, Any] = tool.parameters.get("properties", {})
    missing = [name for name in tool.parameters.get("required", []) if name not in arguments]
    unknown = [name for name in arguments if name not in properties]
    if missing or unknown:
        raise ToolError(f"{tool.name}: missing arguments {missing}, unknown arguments {unknown}")
    for name, value in arguments.items():
        wanted = _JSON_TYPES.get(properties[name].get("type", ""), object)
        if isinstance(value, bool) or not isinstance(value, wanted):
            raise ToolError(f"{tool.name}: {name} must be a {properties[name].get('type')}, not {value!r}")


def _string(description: str) -> dict[str, str]:
    return {"type": "string", "description": description}


def default_tools(
    *,
    searcher: Searcher | None = None,
    sandbox: Sandbox | None = None,
    approve: Approver | None = None,
    review: ReviewQueue | None = None,
) -> ToolRegistry:
    """Vault search, file reading/listing/writing inside ``sandbox``, arithmetic, and fact proposals."""
    registry = ToolRegistry(approve=approve)
    if review is not None:
        queue = review

        def propose_fact(subject: str, predicate: str, object: str, chunk_id: str = "") -> str:
            item = queue.propose_fact(subject, predicate, object, source_chunk_id=chunk_id or None)
            return f"proposed {item.id}; it enters memory once a person approves it"

        fact = {
            "type": "object",
            "properties": {
                "subject": _string("who or what the fact is about"),
                "predicate": _string("the relation, e.g. eats"),
                "object": _string("the value, e.g. fish"),
                "chunk_id": _string("the evidence chunk it comes from"),
            },
            "required": ["subject", "predicate", "object"],
        }
        registry.add(
            Tool("propose_fact", "Propose a fact for long-term memory (a person reviews it).", fact, propose_fact)
        )
    if searcher is not None:
        bound = searcher

        def vault_search(query: str, k: int = 5) -> list[dict[str, Any]]:
            if not 1 <= k <= 20:
                raise ToolError("vault_search: k is between 1 and 20")
            hits = bound.search(query, k=k)
            return [{"chunk_id": h.chunk_id, "source": h.source, "text": h.text[:1500]} for h in hits]

        registry.add(
            Tool(
                "vault_search",
                "Search the document vault (hybrid BM25 + vectors); returns chunks with ids to cite.",
                {
                    "type": "object",
                    "properties": {"query": _string("what to look for"), "k": {"type": "integer"}},
                    "required": ["query"],
                },
                vault_search,
            )
        )
    if sandbox is not None:
        path = {"type": "object", "properties": {"path": _string("relative to the tool root")}, "required": ["path"]}
        registry.add(
            Tool(
                "read_file", "Read a UTF-8 text file inside the tool root.", path, lambda path: sandbox.read_text(path)
            )
        )
        listing = {"type": "object", "properties": {"path": _string("a folder, relative to the tool root")}}
        registry.add(
            Tool("list_files", "List a folder inside the tool root.", listing, lambda path=".": sandbox.list(path))
        )

        def write_file(path: str, text: str) -> str:
            written = sandbox.write_text(path, text)
            return f"wrote {len(text.encode())} bytes to {written.relative_to(sandbox.root).as_posix()}"

        writing = {
            "type": "object",
            "properties": {"path": _string("relative to the tool root"), "text": _string("the whole new content")},
            "required": ["path", "text"],
        }
        registry.add(
            Tool(
                "write_file",
                "Write a text file inside the tool root (needs approval).",
                writing,
                write_file,
                writes=True,
            )
        )
    arithmetic = {
        "type": "object",
        "properties": {"expression": _string("e.g. (3 + 4) * 2")},
        "required": ["expression"],
    }
    registry.add(
        Tool(
            "calculate",
            "Evaluate an arithmetic expression exactly and safely.",
            arithmetic,
            lambda expression: str(calculate(expression)),
        )
    )
    return registry
