"""Running the async teacher code from synchronous callers (the CLI, the seed's API).

uvloop, where installed (Linux and macOS), runs the event loop in C: with hundreds of teacher calls
in flight the client is CPU-bound, and the faster loop buys about 5% more calls per second
(benchmarks/teachers.py).  Everything works the same on the standard loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)
