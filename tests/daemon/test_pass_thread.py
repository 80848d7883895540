"""The engine's pass thread: results and errors come back to the awaiting task; close ends it."""

from __future__ import annotations

import threading

import anyio
import pytest

from memlane.daemon.adapters.pass_thread import PassThread


def test_a_call_runs_in_the_thread_and_its_result_or_error_comes_back() -> None:
    async def main() -> None:
        passes = PassThread(name="test-pass")
        try:
            assert await passes.run(lambda: threading.current_thread().name) == "test-pass"
            with pytest.raises(ZeroDivisionError):
                await passes.run(lambda: 1 / 0)
            assert await passes.run(lambda: 6 * 7) == 42  # an error did not end the thread
        finally:
            passes.close()
        passes._thread.join(timeout=10)
        assert not passes._thread.is_alive()

    anyio.run(main)


def test_a_task_cancelled_while_its_call_runs_leaves_the_thread_serving() -> None:
    async def main() -> None:
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
