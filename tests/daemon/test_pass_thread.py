"""The engine's pass thread: results and errors come back to the awaiting task, the caller's
context variables reach the call, and neither a cancelled caller nor a closed loop breaks it."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import anyio
import pytest

from memlane.daemon.adapters.pass_thread import PassThread

REQUEST = contextvars.ContextVar("request", default="<unset>")


def test_a_call_runs_in_the_thread_and_its_result_or_error_comes_back() -> None:
    async def main() -> None:
        passes = PassThread(name="test-pass")
        try:
            assert await passes.run(lambda: threading.current_thread().name) == "test-pass"
            with pytest.raises(ZeroDivisionError):
                await passes.run(lambda: 1 / 0)
            with anyio.fail_after(10), pytest.raises(RuntimeError, match="StopIteration"):
                await passes.run(lambda: next(iter(())))  # a future refuses StopIteration
            assert await passes.run(lambda: 6 * 7) == 42  # errors did not end the thread
        finally:
            passes.close()
        passes._thread.join(timeout=10)
        assert not passes._thread.is_alive()

    anyio.run(main)


def test_the_call_sees_the_callers_context_variables() -> None:
    async def main() -> None:
        passes = PassThread()
        try:
            REQUEST.set("r-1")
            assert await passes.run(REQUEST.get) == "r-1"
        finally:
            passes.close()

    anyio.run(main)


def test_a_caller_cancelled_while_its_call_runs_costs_nothing_but_the_call() -> None:
    """The result of a call whose caller went away is dropped: no error reaches the loop's
    handler, and the thread serves the next call."""
    errors: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
        passes = PassThread()
        release = threading.Event()
        try:
            with anyio.move_on_after(0.05):
                await passes.run(lambda: release.wait(10))
            release.set()
            assert await passes.run(lambda: "next") == "next"
        finally:
            passes.close()

    anyio.run(main)
    assert errors == []


def test_a_loop_closed_while_a_call_runs_leaves_the_thread_to_end_quietly() -> None:
    failures: list[threading.ExceptHookArgs] = []
    hook, threading.excepthook = threading.excepthook, failures.append
    release = threading.Event()
    passes: list[PassThread] = []

    async def main() -> None:
        passes.append(PassThread())
        with anyio.move_on_after(0.05):
            await passes[0].run(lambda: release.wait(10))

    try:
        anyio.run(main)  # the loop closes while the call still runs
        release.set()
        passes[0].close()
        passes[0]._thread.join(timeout=10)
    finally:
        threading.excepthook = hook
    assert not passes[0]._thread.is_alive()
    assert failures == []
