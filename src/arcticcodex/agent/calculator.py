"""A safe arithmetic evaluator for the agent's ``calculate`` tool.

Why not ``eval``: a model's "arithmetic" can be ``__import__('os')…``, and even plain arithmetic can
hang a process (``9**9**9`` has ~370 million digits).  This walks the expression's syntax tree and
allows numbers, the four operations, ``//``, ``%``, ``**``, unary signs, parentheses and a few pure
functions; every intermediate result is checked against bounds *before* it is computed, so a huge
power is refused at once instead of being attempted.

Every failure is a :class:`~arcticcodex.errors.ToolError` with a sentence a model can act on, never
a Python exception escaping into the agent loop: ``2**4000 / 3`` is an integer too large for a
float (``OverflowError``), ``log(2, 1)`` divides by zero, ``sqrt(-1)`` is a domain error.  Each
function's arguments are bounded too: ``round(x, -10**9)`` would compute ``10**1000000000``, so
``round`` takes at most :data:`MAX_ROUND_DIGITS` digits either side of the point — past that,
rounding changes nothing (a float has 17 significant digits, an integer here at most 1,234).
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
MAX_ROUND_DIGITS = 1_300  # |ndigits| of round(): beyond this rounding changes nothing, or gives 0

Number = int | float

_BINARY: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod),
}


def _round(value: Number, digits: Number | None = None) -> Number:
    if digits is None:
        return round(value)
    if not isinstance(digits, int):
        raise ToolError(f"round(): the number of digits must be a whole number, not {_show(digits)}")
    if abs(digits) > MAX_ROUND_DIGITS:
        raise ToolError(
            f"round(): {_show(digits)} digits is out of range; round to at most {MAX_ROUND_DIGITS:,} digits "
            "either side of the point (beyond that nothing changes, or the result is 0)"
        )
    return round(value, digits)


#: name → (function, fewest arguments, most arguments)
_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "min": (lambda *values: min(values), 1, 8),
    "max": (lambda *values: max(values), 1, 8),
    "sqrt": (math.sqrt, 1, 1),
    "log": (math.log, 1, 2),
    "exp": (math.exp, 1, 1),
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_FLOAT_LIMIT = "floating-point numbers reach about 1.8e308"


def calculate(expression: str) -> Number:
    """The value of ``expression``, or ToolError saying what is not allowed, too large or undefined."""
    if not isinstance(expression, str) or not expression.strip():
        raise ToolError("give an arithmetic expression, e.g. (3 + 4) * 2")
    if len(expression) > MAX_CHARS:
        raise ToolError(f"the expression is {len(expression)} characters; at most {MAX_CHARS}")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
        return _evaluate(tree.body, 0)
    except SyntaxError as error:
        # from None: the SyntaxError adds nothing the message does not already say
        raise ToolError(f"not an arithmetic expression: {error.msg} at column {error.offset}") from None
    except ToolError:
        raise
    except (RecursionError, MemoryError):
        # from None: the RecursionError/MemoryError adds nothing the message does not already say
        raise ToolError("the expression is too deeply nested or too large to evaluate; simplify it") from None
    except (ArithmeticError, ValueError, TypeError) as error:  # a last net: each case below has its own message
        # from None: the ArithmeticError/ValueError/TypeError adds nothing the message does not already say
        raise ToolError(f"the expression cannot be evaluated: {error}") from None


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
        return _binary(node.op, left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        return _call(node, depth)
    raise ToolError(
        f"{type(node).__name__} is not allowed: only numbers, + - * / // % **, parentheses, "
        f"pi, e and {', '.join(_FUNCTIONS)}"
    )


def _binary(op: ast.operator, left: Number, right: Number) -> Number:
    entry = _BINARY.get(type(op))
    if entry is None:
        raise ToolError(f"the operator {type(op).__name__} is not allowed; use + - * / // % **")
    symbol, function = entry
    if isinstance(op, ast.Mult) and _bits(left) + _bits(right) > MAX_BITS:
        raise ToolError(f"the product would have more than {MAX_BITS} bits; refused")
    try:
        return _bounded(function(left, right))
    except ZeroDivisionError:
        # from None: the ZeroDivisionError adds nothing the message does not already say
        raise ToolError(f"division by zero in {_show(left)} {symbol} {_show(right)}") from None
    except OverflowError:
        advice = "; divide whole numbers exactly with //" if symbol == "/" else ""
        # from None: the OverflowError adds nothing the message does not already say
        raise ToolError(f"{_show(left)} {symbol} {_show(right)} is out of range ({_FLOAT_LIMIT}{advice})") from None


def _call(node: ast.Call, depth: int) -> Number:
    name = node.func.id if isinstance(node.func, ast.Name) else ""
    function, fewest, most = _FUNCTIONS[name]
    if node.keywords:
        raise ToolError(f"{name}() takes plain arguments, not name=value; e.g. {name}(2)")
    if not fewest <= len(node.args) <= most:
        takes = f"{fewest}" if fewest == most else f"{fewest} to {most}"
        raise ToolError(f"{name}() takes {takes} plain argument(s), not {len(node.args)}; e.g. {name}(2)")
    arguments = [_evaluate(argument, depth + 1) for argument in node.args]
    shown = ", ".join(_show(argument) for argument in arguments)
    try:
        return _bounded(function(*arguments))
    except OverflowError:
        # from None: the OverflowError adds nothing the message does not already say
        raise ToolError(f"{name}({shown}) is out of range ({_FLOAT_LIMIT})") from None
    except (ValueError, ZeroDivisionError):
        # from None: the ValueError/ZeroDivisionError adds nothing the message does not already say
        raise ToolError(f"{name}({shown}) is not defined (outside the function's domain)") from None


def _power(base: Number, exponent: Number) -> Number:
    """``base ** exponent``, refused up front when the result could not be bounded."""
    try:
        if isinstance(base, int) and isinstance(exponent, int):
            if exponent < 0:
                if not base:
                    raise ToolError("0 cannot be raised to a negative power")
                return _bounded(float(base) ** exponent)
            if abs(base) > 1 and exponent * max(1, _bits(base) - 1) > MAX_BITS:
                raise ToolError(f"{_show(base)} ** {_show(exponent)} would have more than {MAX_BITS} bits; refused")
            return _bounded(base**exponent)
        return _bounded(float(base) ** float(exponent))
    except ZeroDivisionError:
        # from None: the ZeroDivisionError adds nothing the message does not already say
        raise ToolError(f"0 cannot be raised to a negative power ({_show(base)} ** {_show(exponent)})") from None
    except OverflowError:
        # from None: the OverflowError adds nothing the message does not already say
        raise ToolError(f"{_show(base)} ** {_show(exponent)} is out of range ({_FLOAT_LIMIT})") from None


def _bits(value: Number) -> int:
    return value.bit_length() if isinstance(value, int) else 64


def _show(value: object) -> str:
    """A number as a model can read it back: short ones as written, long integers by their size."""
    if isinstance(value, int) and value.bit_length() > 100:
        return f"a {len(str(abs(value))):,}-digit integer"
    return repr(value)


def _bounded(value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "a complex number" if isinstance(value, complex) else repr(value)
        raise ToolError(f"the result is {kind}, not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_BITS:
        raise ToolError(f"the result has more than {MAX_BITS} bits")
    if isinstance(value, float) and (math.isnan(value) or abs(value) > MAX_FLOAT):
        raise ToolError("the result is not a finite number of a usable size")
    return value
