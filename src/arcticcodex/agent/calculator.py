"""A safe arithmetic evaluator for the agent's ``calculate`` tool.

Why not ``eval``: a model's "arithmetic" can be ``__import__('os')…``, and even plain arithmetic can
hang a process (``9**9**9`` has ~370 million digits).  This walks the expression's syntax tree and
allows numbers, the four operations, ``//``, ``%``, ``**``, unary signs, parentheses and a few pure
functions; every intermediate result is checked against bounds *before* it is computed, so a huge
power is refused at once instead of being attempted.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from ..errors import ToolError

MAX_CHARS = 500
MAX_DEPTH = 40
MAX_BITS = 4096  # integers up to ~1,233 digits
MAX_FLOAT = 1e300

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "log": math.log,
    "exp": math.exp,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}

Number = int | float


def calculate(expression: str) -> Number:
    """The value of ``expression``, or ToolError saying what is not allowed or too large."""
    if not isinstance(expression, str) or not expression.strip():
        raise ToolError("give an arithmetic expression, e.g. (3 + 4) * 2")
    if len(expression) > MAX_CHARS:
        raise ToolError(f"the expression is {len(expression)} characters; at most {MAX_CHARS}")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as error:
        raise ToolError(f"not an arithmetic expression: {error.msg} at column {error.offset}") from None
    return _evaluate(tree.body, 0)


def _evaluate(node: ast.AST, depth: int) -> Number:
    if depth > MAX_DEPTH:
        raise ToolError(f"the expression nests deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _bounded(node.value)
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        value = _evaluate(node.operand, depth + 1)
        return value if isinstance(node.op, ast.UAdd) else -value
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, depth + 1), _evaluate(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        function = _BINARY.get(type(node.op))
        if function is None:
            raise ToolError(f"the operator {type(node.op).__name__} is not allowed; use + - * / // % **")
        if isinstance(node.op, ast.Mult) and _bits(left) + _bits(right) > MAX_BITS:
            raise ToolError(f"the product would have more than {MAX_BITS} bits")
        try:
            return _bounded(function(left, right))
        except ZeroDivisionError:
            raise ToolError("division by zero") from None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if node.keywords or len(node.args) > 8:
            raise ToolError(f"{node.func.id}() takes up to 8 plain arguments")
        arguments = [_evaluate(argument, depth + 1) for argument in node.args]
        try:
            return _bounded(_FUNCTIONS[node.func.id](*arguments))
        except (TypeError, ValueError, OverflowError) as error:
            raise ToolError(f"{node.func.id}(): {error}") from None
    raise ToolError(
        f"{type(node).__name__} is not allowed: only numbers, + - * / // % **, parentheses, "
        f"pi, e and {', '.join(_FUNCTIONS)}"
    )


def _power(base: Number, exponent: Number) -> Number:
    """``base ** exponent``, refused up front when the result could not be bounded."""
    if isinstance(base, int) and isinstance(exponent, int):
        if exponent < 0:
            return _bounded(float(base) ** exponent) if base else _zero_division()
        if abs(base) > 1 and exponent * max(1, _bits(base) - 1) > MAX_BITS:
            raise ToolError(f"{base} ** {exponent} would have more than {MAX_BITS} bits; refused")
        return _bounded(base**exponent)
    try:
        return _bounded(float(base) ** float(exponent))
    except (OverflowError, ZeroDivisionError):
        raise ToolError(f"{base} ** {exponent} is out of range") from None


def _zero_division() -> Number:
    raise ToolError("0 cannot be raised to a negative power")


def _bits(value: Number) -> int:
    return value.bit_length() if isinstance(value, int) else 64


def _bounded(value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolError(f"the result {value!r} is not a number")
    if isinstance(value, int) and value.bit_length() > MAX_BITS:
        raise ToolError(f"the result has more than {MAX_BITS} bits")
    if isinstance(value, float) and (math.isnan(value) or abs(value) > MAX_FLOAT):
        raise ToolError("the result is not a finite number of a usable size")
    return value
