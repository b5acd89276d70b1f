"""The agent's sandboxed tools: no path leaves the root, no arithmetic runs away."""

from __future__ import annotations

import json
import math
import re
import tracemalloc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arcticcodex.agent import Sandbox, ToolRegistry, calculate, default_tools
from arcticcodex.errors import ApprovalRequiredError, SandboxError, ToolError
from arcticcodex.vault import HashingBackend, Searcher, Vault
from arcticcodex.vault.proposals import ReviewQueue
from arcticcodex.workspace import Workspace


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    root = tmp_path / "root"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "a.md").write_text("hello")
    (tmp_path / "secret.txt").write_text("outside")
    return Sandbox(root, max_read_bytes=100, max_write_bytes=50, max_entries=5)


def test_reads_lists_and_writes_inside_the_root(sandbox: Sandbox) -> None:
    assert sandbox.read_text("notes/a.md") == "hello"
    assert sandbox.list() == ["notes/"] and sandbox.list("notes") == ["notes/a.md"]
    sandbox.write_text("notes/b.md", "new")
    assert (sandbox.root / "notes" / "b.md").read_text() == "new"
    assert sandbox.read_text("./notes/a.md") == "hello"


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("../secret.txt", "'..'"),
        ("notes/../../secret.txt", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:/Windows/win.ini", "absolute"),
        ("..\\secret.txt", "'..'"),
        ("", "required"),
        ("notes/\0a", "NUL"),
    ],
)
def test_paths_that_leave_the_root_are_refused_for_what_they_say(sandbox: Sandbox, path: str, rule: str) -> None:
    for call in (sandbox.read_text, sandbox.list, lambda p: sandbox.write_text(p, "x")):
        with pytest.raises(SandboxError, match=rule):
            call(path)
    assert (sandbox.root.parent / "secret.txt").read_text() == "outside"


def test_symlinks_pointing_outside_are_refused(sandbox: Sandbox) -> None:
    (sandbox.root / "escape").symlink_to(sandbox.root.parent)
    (sandbox.root / "leak.txt").symlink_to(sandbox.root.parent / "secret.txt")
    (sandbox.root / "inside.txt").symlink_to(sandbox.root / "notes" / "a.md")
    for path in ("escape/secret.txt", "leak.txt", "escape"):
        with pytest.raises(SandboxError, match="symbolic link"):
            sandbox.read_text(path)
    with pytest.raises(SandboxError, match="symbolic link"):
        sandbox.write_text("leak.txt", "overwrite")
    assert (sandbox.root.parent / "secret.txt").read_text() == "outside"
    assert sandbox.read_text("inside.txt") == "hello"  # a link that stays inside is fine


def test_sizes_are_bounded(sandbox: Sandbox) -> None:
    (sandbox.root / "big.txt").write_text("x" * 101)
    with pytest.raises(SandboxError, match="at most 100"):
        sandbox.read_text("big.txt")
    with pytest.raises(SandboxError, match="write limit"):
        sandbox.write_text("w.txt", "y" * 51)
    for n in range(6):
        (sandbox.root / "notes" / f"f{n}").write_text("")
    with pytest.raises(SandboxError, match="more than 5 entries"):
        sandbox.list("notes")


@pytest.mark.parametrize(
    ("expression", "value"),
    [("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("7 // 2", 3), ("7 % 4", 3), ("2 ** 10", 1024), ("-3 + +2", -1),
     ("sqrt(16)", 4.0), ("max(1, 5, 3)", 5), ("round(2.567, 2)", 2.57), ("2 ** -1", 0.5), ("pi", math.pi)],
)  # fmt: skip
def test_arithmetic(expression: str, value: float) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("9**9**9", "9 ** 387420489 would have more than 4096 bits; refused"),
        ("2**100000", "2 ** 100000 would have more than 4096 bits; refused"),
        ("10**5000", "10 ** 5000 would have more than 4096 bits; refused"),
        ("(10**1000) * (10**1000)", "the product would have more than 4096 bits; refused"),
        ("1e308 * 10", "the result is not a finite number of a usable size"),
        ("99999999 ** 99999999", "99999999 ** 99999999 would have more than 4096 bits; refused"),
    ],
)
def test_runaway_arithmetic_is_refused_before_it_is_computed(expression: str, message: str) -> None:
    """'would have': the bound is checked on the operands, so 9**9**9 (minutes, 150 MB) is never started.

    The memory traced while refusing stays far below what any of the big results would occupy.
    How fast a refusal is, is measured in benchmarks/waits.py.
    """
    tracemalloc.start()
    try:
        with pytest.raises(ToolError) as refused:
            calculate(expression)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(refused.value) == message
    assert peak < 1 << 20, f"{peak:,} bytes allocated while refusing {expression}"


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('true')", "open('/etc/passwd')", "(1).__class__", "[1, 2]", "x", "lambda: 1",
     "1 if 1 else 2", "'a' * 3", "1 / 0", "sqrt(-1)", "abs(x=1)", "1 << 1000000", ""],
)  # fmt: skip
def test_everything_but_arithmetic_is_refused(expression: str) -> None:
    with pytest.raises(ToolError):
        calculate(expression)


@given(st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6))
def test_agrees_with_python_on_small_integers(a: int, b: int) -> None:
    assert calculate(f"({a}) + ({b}) * 3 - ({a}) // 7") == a + b * 3 - a // 7
    if b:
        assert calculate(f"({a}) % ({b})") == a % b


def test_the_registry_checks_arguments_approves_writes_and_records_calls(sandbox: Sandbox) -> None:
    asked: list[tuple[str, dict[str, object]]] = []

    def approve(name: str, arguments: Mapping[str, object]) -> bool:
        asked.append((name, dict(arguments)))
        return arguments.get("path") == "ok.md"

    registry = default_tools(sandbox=sandbox, approve=approve)
    assert {s["function"]["name"] for s in registry.schemas()} == {"read_file", "list_files", "write_file", "calculate"}
    assert registry.call("calculate", '{"expression": "6 * 7"}') == "42"
    assert registry.call("read_file", {"path": "notes/a.md"}) == "hello"
    assert registry.call("write_file", {"path": "ok.md", "text": "fine"}).startswith("wrote 4 bytes")
    with pytest.raises(ApprovalRequiredError):
        registry.call("write_file", {"path": "no.md", "text": "refused"})
    assert not (sandbox.root / "no.md").exists() and len(asked) == 2
    refusals: list[tuple[str, str | dict[str, object], str]] = [
        ("read_file", {"path": 3}, "must be a string"),
        ("read_file", {}, "missing arguments"),
        ("read_file", {"path": "a", "mode": "w"}, "unknown arguments"),
        ("shell", {"command": "rm -rf /"}, "no tool 'shell'"),
        ("calculate", "not json", "not a JSON object"),
        ("read_file", {"path": "../secret.txt"}, "'..'"),
    ]
    for name, arguments, message in refusals:
        with pytest.raises(ToolError, match=message):
            registry.call(name, arguments)
    assert [c.error is None for c in registry.calls] == [True, True, True] + [False] * 7
    with pytest.raises(ApprovalRequiredError):  # no approver: writing is refused
        default_tools(sandbox=sandbox).call("write_file", {"path": "ok.md", "text": "x"})


# --- the calculator under attack, called as an agent calls it: through the registry -----------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("9**9**9", r"9 \*\* 387420489 would have more than 4096 bits; refused"),
        ("2**4000 / 3", r"a 1,205-digit integer / 3 is out of range \(floating-point .*exactly with //\)"),
        ("10**1000 + 0.5", r"a 1,001-digit integer \+ 0.5 is out of range"),
        ("10**1200 // 0.1", r"a 1,201-digit integer // 0.1 is out of range"),
        ("10**1000 % 0.5", r"% 0.5 is out of range"),
        ("(10**1000) ** -1", r"\*\* -1 is out of range"),
        ("0.0 ** -1", "0 cannot be raised to a negative power"),
        ("1 % 0", r"division by zero in 1 % 0"),
        ("(-8) ** (1/3)", "complex number, not a real number"),
        ("log(2, 1)", r"log\(2, 1\) is not defined"),
        ("log(0)", r"log\(0\) is not defined"),
        ("exp(1000)", r"exp\(1000\) is out of range"),
        ("sqrt(10**1000)", r"sqrt\(a 1,001-digit integer\) is out of range"),
        ("round(1.5, 10**9)", r"round\(\): 1000000000 digits is out of range; round to at most 1,300 digits"),
        ("round(1.5, -10**9)", r"round\(\): -1000000000 digits is out of range"),
        ("round(10**1000, -10**9)", r"round\(\): -1000000000 digits"),  # would compute 10**(10**9)
        ("round(2.5, 1.5)", r"round\(\): the number of digits must be a whole number, not 1.5"),
        ("max()", r"max\(\) takes 1 to 8 plain argument\(s\), not 0"),
        ("abs(1, 2)", r"abs\(\) takes 1 plain argument\(s\), not 2"),
        ("round(x=1)", r"round\(\) takes plain arguments, not name=value"),
        ("1 + \ud800", "cannot be evaluated"),  # a lone surrogate, as a model's JSON can spell it
    ],
)
def test_every_calculator_failure_is_a_tool_error_with_a_clear_message(expression: str, message: str) -> None:
    registry = default_tools()
    with pytest.raises(ToolError, match=message):  # refused up front: 9**9**9 or 10**(10**9) would take minutes
        registry.call("calculate", {"expression": expression})
    assert registry.calls[-1].error is not None and registry.calls[-1].result is None


@pytest.mark.parametrize(
    ("expression", "value"),
    [("round(10**1000, -1300)", "0"), ("round(2.567, 2)", "2.57"), ("round(2.5)", "2"), ("max(3)", "3"),
     ("round(123456, -1300)", "0"), ("round(1.5, 1300)", "1.5"), ("(-1) ** (10**1000)", "1"), ("log(10**1000)",
     "2302.585092994045")],
)  # fmt: skip
def test_bounded_arguments_still_work_at_their_limits(expression: str, value: str) -> None:
    assert default_tools().call("calculate", {"expression": expression}) == value


_NUMBERS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["10**1000", "2**4000", "9**9", "-0.0", "1e308", "1e-308", "0", "0.5", "-1", "pi"]),
)


def _expressions() -> st.SearchStrategy[str]:
    def grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%", "**"]), inner)
        call = st.tuples(
            st.sampled_from(["abs", "round", "min", "max", "sqrt", "log", "exp"]), st.lists(inner, max_size=3)
        )
        return st.one_of(
            binary.map(lambda parts: f"({parts[0]}) {parts[1]} ({parts[2]})"),
            call.map(lambda parts: f"{parts[0]}({', '.join(parts[1])})"),
            inner.map(lambda text: f"-({text})"),
        )

    return st.recursive(_NUMBERS, grow, max_leaves=6)


@settings(max_examples=400, deadline=None)
@given(_expressions())
def test_no_expression_escapes_as_anything_but_a_number_or_a_tool_error(expression: str) -> None:
    """Every operator and function against huge, tiny, zero and negative arguments: a number or a ToolError."""
    try:
        result = calculate(expression)
    except ToolError as error:
        assert str(error)
        return
    assert isinstance(result, int | float) and not isinstance(result, bool)


# --- issue 13: argument schemas come from the tools' typed signatures ---------------------------------


def _text(description: str) -> dict[str, str]:
    return {"type": "string", "description": description}


def _arguments(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    return {**schema, "required": list(required)} if required else schema


EXPECTED_PARAMETERS = {
    "propose_fact": _arguments(
        {
            "subject": _text("who or what the fact is about"),
            "predicate": _text("the relation, e.g. eats"),
            "object": _text("the value, e.g. fish"),
            "chunk_id": {**_text("the evidence chunk it comes from"), "default": ""},
        },
        "subject",
        "predicate",
        "object",
    ),
    "vault_search": _arguments(
        {
            "query": _text("what to look for"),
            "k": {
                "type": "integer",
                "description": "how many chunks to return",
                "minimum": 1,
                "maximum": 20,
                "default": 5,
            },
        },
        "query",
    ),
    "read_file": _arguments({"path": _text("relative to the tool root")}, "path"),
    "list_files": _arguments({"path": {**_text("a folder, relative to the tool root"), "default": "."}}),
    "write_file": _arguments(
        {"path": _text("relative to the tool root"), "text": _text("the whole new content")}, "path", "text"
    ),
    "calculate": _arguments({"expression": _text("e.g. (3 + 4) * 2")}, "expression"),
}
_JSON_TYPES = {"string", "integer", "number", "boolean", "array", "object"}
_KEYWORDS = {"type", "description", "default", "minimum", "maximum", "items", "enum"}


def assert_openai_tool(entry: dict[str, Any]) -> None:
    """The shape the chat-completions ``tools`` parameter takes: a function with a JSON Schema object."""
    assert set(entry) == {"type", "function"} and entry["type"] == "function"
    function = entry["function"]
    assert set(function) == {"name", "description", "parameters"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", function["name"]) and function["description"].endswith(".")
    parameters = function["parameters"]
    assert parameters["type"] == "object" and parameters["additionalProperties"] is False
    assert set(parameters) <= {"type", "properties", "required", "additionalProperties"}
    assert set(parameters.get("required", [])) <= set(parameters["properties"])
    for described in parameters["properties"].values():
        assert set(described) <= _KEYWORDS and described["type"] in _JSON_TYPES and described["description"]
    json.dumps(entry)  # sent as JSON as it is


@pytest.fixture
def every_tool(sandbox: Sandbox, tmp_path: Path) -> tuple[ToolRegistry, Vault]:
    workspace, _ = Workspace.init(tmp_path / "ws")
    vault = Vault(workspace, embedder=HashingBackend(64))
    return default_tools(
        searcher=Searcher(vault), sandbox=sandbox, review=ReviewQueue(vault), approve=lambda *_: True
    ), vault


def test_every_tool_schema_is_its_typed_signature_in_the_openai_tool_shape(
    every_tool: tuple[ToolRegistry, Vault],
) -> None:
    registry, vault = every_tool
    schemas = registry.schemas()
    assert {entry["function"]["name"]: entry["function"]["parameters"] for entry in schemas} == EXPECTED_PARAMETERS
    for entry in schemas:
        assert_openai_tool(entry)
    assert registry.tools["propose_fact"].description == "Propose a fact for long-term memory (a person reviews it)."
    vault.close()


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        (
            "propose_fact",
            {"subject": 3, "predicate": "eats", "object": "fish"},
            "propose_fact: subject must be a string, not 3",
        ),
        ("propose_fact", {"subject": "otter", "predicate": "eats"}, "propose_fact: missing arguments ['object']"),
        ("vault_search", {"query": "otters", "k": "5"}, "vault_search: k must be an integer between 1 and 20, not '5'"),
        ("vault_search", {"query": "otters", "k": 0}, "vault_search: k must be an integer between 1 and 20, not 0"),
        (
            "vault_search",
            {"query": "otters", "k": True},
            "vault_search: k must be an integer between 1 and 20, not True",
        ),
        ("write_file", {"path": "a.md", "text": ["x"]}, "write_file: text must be a string, not ['x']"),
        (
            "calculate",
            {"expression": "1 + 1", "mode": "exact"},
            "calculate: missing arguments [], unknown arguments ['mode']",
        ),
    ],
)
def test_a_bad_argument_is_a_tool_error_naming_it_and_nothing_runs(
    every_tool: tuple[ToolRegistry, Vault], sandbox: Sandbox, name: str, arguments: dict[str, Any], message: str
) -> None:
    registry, vault = every_tool
    with pytest.raises(ToolError) as refused:
        registry.call(name, json.dumps(arguments))  # as a model sends them
    assert str(refused.value).startswith(message), str(refused.value)
    assert registry.calls[-1].error == str(refused.value) and registry.calls[-1].arguments == arguments
    assert ReviewQueue(vault).list() == [] and not (sandbox.root / "a.md").exists()
    vault.close()
