"""A streamed answer: the model's text from a worker thread to the visitor, as server-sent events.

The agent is blocking work (a vault search, SQLite writes, a model's reply), so it runs on one of the
Studio's worker threads, which runs the agent's coroutine on a loop of its own (``run_sync``).  The
pieces of text the model writes (the agent's ``on_text``) cross to the Studio's event loop through an
:class:`asyncio.Queue` and leave as ``token`` events; the answer, once checked and stored, leaves as one
``done`` event; a failure as one ``error`` event.

A visitor who closes the page mid-answer must not keep a worker busy: :meth:`AnswerStream.leave` cancels
the agent's task on the worker's loop (even while the model is silent), so the model's request is
closed, nothing is stored, and the worker is free for the next page.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["AnswerStream", "VisitorLeftError", "event"]

T = TypeVar("T")
END = ("done", "error")  # the kinds of event after which a stream says nothing more


class VisitorLeftError(Exception):
    """The visitor closed the page before the answer was done: the worker stopped writing it."""


def event(kind: str, data: dict[str, Any]) -> bytes:
    """One server-sent event: its kind, and its data as JSON on one line (json.dumps writes no newline)."""
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


class AnswerStream:
    """The link between one streamed answer's worker and the Studio's event loop that sends its events.

    Made on the Studio's loop; :meth:`on_text` and :meth:`run` are used on the worker; :meth:`events`
    and :meth:`leave` on the Studio's loop.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._lock = threading.Lock()
        self._left = False
        self._cancel_task: Callable[[], object] | None = None  # set while the answer runs on a worker's loop

    # -- on the worker ---------------------------------------------------------------------------

    def on_text(self, piece: str) -> None:
        """A piece of the model's reply, as it arrives (the agent's ``on_text``)."""
        self._loop.call_soon_threadsafe(self._queue.put_nowait, ("token", {"text": piece}))

    async def run(self, answering: Coroutine[Any, Any, T]) -> T:
        """Await ``answering`` on the worker's loop as a task that :meth:`leave` can cancel."""
        task = asyncio.ensure_future(answering)
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._left:
                task.cancel()
            else:
                self._cancel_task = lambda: loop.call_soon_threadsafe(task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            if task.cancelled() and self._left:
                # from None: the cancellation is ours (the visitor left); the message says all there is
                raise VisitorLeftError("the visitor left before the answer was done; nothing was stored") from None
            raise
        finally:
            with self._lock:
                self._cancel_task = None

    # -- on the Studio's loop --------------------------------------------------------------------

    def finish(self, kind: str, data: dict[str, Any]) -> None:
        """The last event (``done`` or ``error``), after every piece of text the worker sent."""
        self._queue.put_nowait((kind, data))

    def leave(self) -> None:
        """The visitor is gone: stop the answer wherever it is (it is not stored)."""
        with self._lock:
            self._left = True
            if self._cancel_task is not None:
                self._cancel_task()

    async def events(self) -> AsyncIterator[bytes]:
        """The stream's events until its last; leaving early (a disconnect) stops the answer."""
        try:
            while True:
                kind, data = await self._queue.get()
                yield event(kind, data)
                if kind in END:
                    return
        finally:
            self.leave()
