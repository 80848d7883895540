"""One long-lived thread for the embedding engine's forward passes.

A pass is handed to the thread through a queue, and its result comes back through the event
loop's thread-safe callback. That is one wake-up each way: ``anyio.to_thread.run_sync`` adds
two event-loop turns (its checkpoint and its limiter's) and its worker bookkeeping, about
0.1 ms of a one-text request's ~0.5 ms over raw ONNX on a 2-core VM. ONNX Runtime releases
the GIL while it computes, so the loop goes on serving meanwhile. As with ``to_thread``, a
call runs in a copy of the caller's context variables, and the interpreter waits for a pass
under way before it exits.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")


class _Work(NamedTuple):
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    context: contextvars.Context
    call: Callable[[], Any]


class PassThread:
    """Runs one call at a time in its own thread; :meth:`close` ends the thread."""

    def __init__(self, name: str = "memlane-embed-pass") -> None:
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name)
        self._thread.start()

    async def run(self, call: Callable[[], T]) -> T:
        """``call()``'s result (or what it raised), computed in the thread. Awaited under a
        shield by the engine: a pass once started is always waited for."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._work.put(_Work(loop, future, contextvars.copy_context(), call))
        return await future

    def close(self) -> None:
        """Stop the thread after the call under way, if any."""
        self._work.put(None)

    def _serve(self) -> None:
        while (work := self._work.get()) is not None:
            _run(work)
            del work  # hold no pass's texts or loop while waiting for the next


def _run(work: _Work) -> None:
    try:
        result, error = work.context.run(work.call), None
    except BaseException as exc:  # handed to the awaiting task, which raises it
        result, error = None, exc
    try:
        work.loop.call_soon_threadsafe(_settle, work.future, result, error)
    except RuntimeError:  # the loop closed while the call ran: nobody waits for it any more
        if not work.loop.is_closed():
            raise


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if isinstance(error, StopIteration):  # a future refuses it (it would end a coroutine)
        wrapped = RuntimeError(f"the pass raised StopIteration: {error}")
        wrapped.__cause__ = error
        error = wrapped
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
