"""The agent's parts: sandboxed tools (files inside one root, safe arithmetic) — the agent itself follows.

::

    sandbox.py      Sandbox: paths checked before and after resolving, sizes bounded, atomic writes
    calculator.py   calculate(): arithmetic on the syntax tree, every result bounded before it is computed
"""

from .calculator import calculate
from .sandbox import Sandbox

__all__ = ["Sandbox", "calculate"]
