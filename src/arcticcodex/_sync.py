"""The one place that starts an event loop: the ``*_sync`` wrappers at the library's edges call :func:`run_sync`.

The library's workflows are coroutines (``await agent.respond(…)``, ``await router.refine(…)``,
``await distiller.execute(…)``), so an async caller — a notebook cell, a web app, a script under
``asyncio.run`` — runs them on its own loop, and many at once.  Synchronous callers (the command line,
the Studio's worker threads, a plain script) use the ``*_sync`` twin of each entry point, as httpx and
pydantic-ai do; no other module of the package starts a loop (``tests/test_event_loops.py`` checks).

Where no loop runs in the calling thread, the coroutine runs on a new one in that thread.  Where one
already runs (a Jupyter cell), blocking that loop on a second loop in the same thread is impossible,
so the coroutine runs on a loop of its own in a worker thread while the caller waits; context
variables go with it.  The caller's thread is blocked meanwhile, so nothing else uses the objects the
coroutine touches (the workspace's SQLite connections allow that hand-over: see :mod:`.db.connection`).

uvloop, where installed (Linux and macOS), runs the loop in C: with hundreds of teacher calls in
flight the client is CPU-bound, and the faster loop buys about 5% more calls per second
(benchmarks/teachers.py).  Everything works the same on the standard loop.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion and return its result, from synchronous code in any thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop in this thread: the usual case (the CLI, a Studio worker, a script)
        return _run(coroutine)
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="arcticcodex-sync") as worker:
        return worker.submit(context.run, _run, coroutine).result()


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)
