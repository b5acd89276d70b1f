"""The agent's tools: typed functions, described for a model's tool-calling API, checked, approved when they write.

A tool is a Python function, and its typed signature is its argument schema: ``Annotated[str,
Field(description=…)]`` says what an argument is, a default makes it optional, ``Field(ge=…, le=…)``
bounds it, and the first line of the docstring describes the tool.  From that one signature come both
the JSON schema sent in the OpenAI-compatible ``tools`` parameter (:meth:`Tool.schema`) and the check
of the arguments a model sends back (pydantic, strict: ``{"path": 3}`` is refused, never turned into
``"3"``), so the two cannot disagree.  :meth:`ToolRegistry.call` is the one way a tool runs:

* the arguments are checked first — a model that sends ``{"path": 3}`` gets an error naming the
  argument and what it must be, not a crash;
* tools that change something (``writes=True``) run only when the approval callback says yes; with no
  callback they are refused (:class:`~arcticcodex.errors.ApprovalRequiredError`);
* every call is recorded (name, arguments, result or error), so an answer shows what it did;
* file tools go through the :class:`~arcticcodex.agent.sandbox.Sandbox`, arithmetic through
  :func:`~arcticcodex.agent.calculator.calculate`; results are cut to a size a prompt can hold.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..errors import ApprovalRequiredError, ToolError
from ..vault.proposals import ReviewQueue
from ..vault.search import Searcher
from .calculator import calculate
from .sandbox import Sandbox

MAX_RESULT_CHARS = 8_000


@dataclass(frozen=True)
class Tool:
    """A function a model may call: named for it, described by its docstring, its arguments by its signature."""

    function: Callable[..., Any]
    name: str = ""  # default: the function's name
    description: str = ""  # default: the first line of the function's docstring
    writes: bool = False
    arguments: type[BaseModel] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name = self.name or self.function.__name__
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "description", self.description or _summary(self.function))
        object.__setattr__(self, "arguments", _arguments_model(self.function, name))

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments object."""
        schema = self.arguments.model_json_schema()
        schema.pop("title", None)
        for described in schema.get("properties", {}).values():
            described.pop("title", None)
        return schema

    def schema(self) -> dict[str, Any]:
        """The entry for the ``tools`` parameter of a chat-completions request."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def check(self, arguments: object) -> dict[str, Any]:
        """The arguments as the function takes them, defaults filled in; ToolError naming what is wrong."""
        try:
            checked = self.arguments.model_validate(arguments)
        except ValidationError as error:
            raise ToolError(f"{self.name}: {_explained(error, self.parameters)}") from error
        return {name: getattr(checked, name) for name in type(checked).model_fields}


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
            if not isinstance(parsed, dict):
                raise ValueError("not an object")
        except ValueError:
            parsed = {"raw": str(arguments)[:200]}
            self.calls.append(ToolCallRecord(name, parsed, error="arguments are not a JSON object"))
            # from None: the ValueError adds nothing the message does not already say
            raise ToolError(f"the arguments of {name} are not a JSON object") from None
        try:
            tool = self.tools.get(name)
            if tool is None:
                raise ToolError(f"there is no tool {name!r}; tools are {', '.join(self.tools) or 'none'}")
            checked = tool.check(parsed)
            if tool.writes and not (self.approve is not None and self.approve(name, parsed)):
                raise ApprovalRequiredError(f"{name} changes files and was not approved; nothing was written")
            text = _as_text(tool.function(**checked))
        except ToolError as error:
            self.calls.append(ToolCallRecord(name, parsed, error=str(error)))
            raise
        self.calls.append(ToolCallRecord(name, parsed, result=text))
        return text


def _as_text(result: object) -> str:
    text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"… [cut at {MAX_RESULT_CHARS} characters]"
    return text


# -- arguments from signatures ------------------------------------------------------------------------


def _arguments_model(function: Callable[..., Any], name: str) -> type[BaseModel]:
    """A model with one field per parameter of ``function``: its annotation, its default (none: required)."""
    hints = typing.get_type_hints(function, include_extras=True)
    fields: dict[str, Any] = {
        parameter.name: (
            hints[parameter.name],
            ... if parameter.default is inspect.Parameter.empty else parameter.default,
        )
        for parameter in inspect.signature(function).parameters.values()
    }
    return create_model(f"{name}_arguments", __config__=ConfigDict(extra="forbid", strict=True), **fields)


def _summary(function: Callable[..., Any]) -> str:
    return (inspect.getdoc(function) or "").partition("\n")[0]


_KINDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false"}


def _explained(error: ValidationError, schema: Mapping[str, Any]) -> str:
    """The first thing wrong with the arguments, in the words of the schema the model was sent."""
    problems = error.errors(include_url=False)
    missing = [str(problem["loc"][0]) for problem in problems if problem["type"] == "missing"]
    unknown = [str(problem["loc"][0]) for problem in problems if problem["type"] == "extra_forbidden"]
    if missing or unknown:
        return f"missing arguments {missing}, unknown arguments {unknown}"
    first = problems[0]
    name = str(first["loc"][0])
    return f"{name} must be {_kind(schema['properties'][name], first['msg'])}, not {first['input']!r}"


def _kind(described: Mapping[str, Any], fallback: str) -> str:
    """``an integer between 1 and 20``: a property of the schema the model was sent, in words."""
    kind = _KINDS.get(str(described.get("type")), f"valid ({fallback})")
    low, high = described.get("minimum"), described.get("maximum")
    if low is not None and high is not None:
        return f"{kind} between {low} and {high}"
    if low is not None:
        return f"{kind} of at least {low}"
    return f"{kind} of at most {high}" if high is not None else kind


# -- the tools ----------------------------------------------------------------------------------------

InRoot = Annotated[str, Field(description="relative to the tool root")]


class FileTools:
    """Reading, listing and (approved) writing of files inside a sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def read_file(self, path: InRoot) -> str:
        """Read a UTF-8 text file inside the tool root."""
        return self.sandbox.read_text(path)

    def list_files(
        self, path: Annotated[str, Field(description="a folder, relative to the tool root")] = "."
    ) -> list[str]:
        """List a folder inside the tool root."""
        return self.sandbox.list(path)

    def write_file(self, path: InRoot, text: Annotated[str, Field(description="the whole new content")]) -> str:
        """Write a text file inside the tool root (needs approval)."""
        written = self.sandbox.write_text(path, text)
        return f"wrote {len(text.encode())} bytes to {written.relative_to(self.sandbox.root).as_posix()}"


class VaultTools:
    """Searching the document vault."""

    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher

    def vault_search(
        self,
        query: Annotated[str, Field(description="what to look for")],
        k: Annotated[int, Field(ge=1, le=20, description="how many chunks to return")] = 5,
    ) -> list[dict[str, Any]]:
        """Search the document vault (hybrid BM25 + vectors); returns chunks with ids to cite."""
        hits = self.searcher.search(query, k=k)
        return [{"chunk_id": h.chunk_id, "source": h.source, "text": h.text[:1500]} for h in hits]


class MemoryTools:
    """Proposing facts for long-term memory, which a person reviews."""

    def __init__(self, review: ReviewQueue) -> None:
        self.review = review

    def propose_fact(
        self,
        subject: Annotated[str, Field(description="who or what the fact is about")],
        predicate: Annotated[str, Field(description="the relation, e.g. eats")],
        object: Annotated[str, Field(description="the value, e.g. fish")],  # the name the model sees
        chunk_id: Annotated[str, Field(description="the evidence chunk it comes from")] = "",
    ) -> str:
        """Propose a fact for long-term memory (a person reviews it)."""
        item = self.review.propose_fact(subject, predicate, object, source_chunk_id=chunk_id or None)
        return f"proposed {item.id}; it enters memory once a person approves it"


def arithmetic(expression: Annotated[str, Field(description="e.g. (3 + 4) * 2")]) -> str:
    """Evaluate an arithmetic expression exactly and safely."""
    return str(calculate(expression))


def default_tools(
    *,
    searcher: Searcher | None = None,
    sandbox: Sandbox | None = None,
    approve: Approver | None = None,
    review: ReviewQueue | None = None,
) -> ToolRegistry:
    """Vault search, file reading/listing/writing inside ``sandbox``, arithmetic, and fact proposals."""
    tools = [
        *([Tool(MemoryTools(review).propose_fact)] if review is not None else []),
        *([Tool(VaultTools(searcher).vault_search)] if searcher is not None else []),
        *(_file_tools(FileTools(sandbox)) if sandbox is not None else []),
        Tool(arithmetic, name="calculate"),
    ]
    return ToolRegistry({tool.name: tool for tool in tools}, approve=approve)


def _file_tools(files: FileTools) -> list[Tool]:
    return [Tool(files.read_file), Tool(files.list_files), Tool(files.write_file, writes=True)]
