"""The threads that do the Studio's blocking work, each with its own vault connection.

The Studio serves every request on one event loop, so anything that blocks there — importing and
embedding a file, answering a question, searching, verifying a dataset — would freeze every other
page until it is done.  That work runs here instead, on a few worker threads.

A :class:`~arcticcodex.vault.store.Vault` wraps one SQLite connection, and a connection belongs to
the thread that opened it (``sqlite3`` refuses to be used from another).  So each worker opens its
own vault and :class:`~arcticcodex.vault.search.Searcher` the first time it needs them, uses them
for every job it runs, and closes them when it stops.  The database is in WAL mode, so readers never
wait for a writer, and writers wait for each other (``busy_timeout``) instead of failing; every
write is a short transaction (an import embeds outside its transaction).  The embedding model is
loaded once and shared by all workers.

Workers are started when more jobs wait than workers are free, up to ``size``.  A worker counts as
free from the moment its job is done (before its caller hears of it), so one client's requests one
after another are all served by the same worker, with its warm connection and search vectors.  The
worker that became free last is woken first, so after a burst the extra workers stay idle, and one
that has had nothing to do for ``idle_seconds`` closes its vault and stops: an idle Studio holds no
threads and no second copy of the search vectors.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from ..vault.embeddings import EmbeddingBackend
from ..vault.search import Searcher
from ..vault.store import Vault
from ..workspace import Workspace

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(slots=True)
class _Job:
    future: Future[Any]
    context: contextvars.Context
    function: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class VaultWorkers:
    """Runs blocking functions on worker threads that each hold their own vault and searcher."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        embedder: EmbeddingBackend | None = None,
        size: int = 4,
        idle_seconds: float = 60.0,
    ) -> None:
        if size < 1:
            raise ValueError("a Studio needs at least one worker thread")
        self.workspace = workspace
        self.size = size
        self.idle_seconds = idle_seconds
        self._embedder = embedder
        self._jobs: deque[_Job] = deque()
        self._lock = threading.Lock()
        self._waiting: list[threading.Condition] = []  # idle workers, the one idle the shortest last
        self._free = 0  # workers not running a job: waiting, or about to wait
        self._threads: set[threading.Thread] = set()
        self._closed = False
        self._local = threading.local()
        self._opening = threading.Lock()

    @property
    def running(self) -> int:
        """How many worker threads there are now (busy or idle)."""
        with self._lock:
            return len(self._threads)

    # -- inside a job ----------------------------------------------------------------------------

    @property
    def vault(self) -> Vault:
        """The calling worker's vault (opened on first use)."""
        return self._held()[0]

    @property
    def searcher(self) -> Searcher:
        """The calling worker's searcher, over its vault."""
        return self._held()[1]

    def _held(self) -> tuple[Vault, Searcher]:
        held: tuple[Vault, Searcher] | None = getattr(self._local, "held", None)
        if held is None:
            if not getattr(self._local, "is_worker", False):
                raise RuntimeError("the Studio's vault is only used inside VaultWorkers.run (a worker thread)")
            with self._opening:  # the first worker decides the shared embedding backend
                vault = Vault(self.workspace, embedder=self._embedder)
                if self._embedder is None:
                    self._embedder = vault.embedder
            held = (vault, Searcher(vault))
            self._local.held = held
        return held

    # -- from the event loop ---------------------------------------------------------------------

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``function(*args, **kwargs)`` on a worker, with the caller's context variables; awaits it."""
        future: Future[T] = Future()
        job = _Job(future, contextvars.copy_context(), function, args, kwargs)
        with self._lock:
            if self._closed:
                raise RuntimeError("the Studio is shutting down")
            self._jobs.append(job)
            if len(self._jobs) > self._free and len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, name="studio-worker", daemon=True)
                self._threads.add(thread)
                self._free += 1
                thread.start()
            if self._waiting:
                self._waiting.pop().notify()
        return await asyncio.wrap_future(future)

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking jobs; idle workers close their vaults and stop, busy ones when their job ends."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
            for waiting in self._waiting:
                waiting.notify()
            self._waiting.clear()
        for thread in threads:
            thread.join(timeout)

    # -- the worker thread -----------------------------------------------------------------------

    def _work(self) -> None:
        self._local.is_worker = True
        wake = threading.Condition(self._lock)
        try:
            while (job := self._next_job(wake)) is not None:
                if not job.future.set_running_or_notify_cancel():
                    with self._lock:
                        self._free += 1
                    continue
                try:
                    result = job.context.run(job.function, *job.args, **job.kwargs)
                except BaseException as error:
                    with self._lock:
                        self._free += 1  # free before the caller hears, so its next job finds this worker
                    job.future.set_exception(error)
                else:
                    with self._lock:
                        self._free += 1
                    job.future.set_result(result)
                del job  # no reference to a finished request kept while idle
        finally:
            held: tuple[Vault, Searcher] | None = getattr(self._local, "held", None)
            if held is not None:
                held[0].close()

    def _next_job(self, wake: threading.Condition) -> _Job | None:
        """The next job, for a free worker; None when it should stop (closed, or idle too long)."""
        with self._lock:
            while not self._jobs:
                if self._closed:
                    self._leave()
                    return None
                self._waiting.append(wake)
                woken = wake.wait(self.idle_seconds)
                if wake in self._waiting:  # not woken by a job (timed out): no longer waiting either way
                    self._waiting.remove(wake)
                if not woken and not self._jobs:
                    self._leave()
                    return None
            self._free -= 1
            return self._jobs.popleft()

    def _leave(self) -> None:
        """Called, with the lock held, by a free worker that stops."""
        self._free -= 1
        self._threads.discard(threading.current_thread())
