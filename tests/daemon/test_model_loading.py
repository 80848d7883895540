"""The model starts loading before anyone waits for it (the start opens the projections
meanwhile), and a load that fails leaves the engine reporting why, as a load in its task did."""

from __future__ import annotations

import threading

import anyio
import pytest

from memlane.daemon.adapters.engine import EmbedEngine, start_loading
from memlane.daemon.domain.errors import Unavailable


def test_the_model_loads_in_its_own_thread_before_it_is_asked_for() -> None:
    """The load runs at once in another thread; the returned call hands its model over."""
    began = threading.Event()
    release = threading.Event()
    threads: list[threading.Thread] = []
    model = object()

    def load() -> object:
        threads.append(threading.current_thread())
        began.set()
        release.wait(30)
        return model

    wait_for_model = start_loading(load)  # type: ignore[arg-type]
    assert began.wait(30), "the load did not start before its result was asked for"
    assert threads[0] is not threading.current_thread()
    release.set()
    assert wait_for_model() is model


def test_the_loads_error_is_raised_to_whoever_waits() -> None:
    """What the load raised, the waiting call raises."""
    def load() -> object:
        raise RuntimeError("the model file is damaged")

    wait_for_model = start_loading(load)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="damaged"):
        wait_for_model()


@pytest.mark.anyio
async def test_an_engine_over_a_failed_load_stays_up_and_says_why() -> None:
    """The engine reports the failed load and refuses embeddings with it, as before."""
    def load() -> object:
        raise RuntimeError("the model file is damaged")

    engine = EmbedEngine(start_loading(load))  # type: ignore[arg-type]
    async with anyio.create_task_group() as tg:
        await tg.start(engine.run)
        with pytest.raises(Unavailable, match="damaged"):
            await engine.embed(["a text"], timeout=30)
        tg.cancel_scope.cancel()
    assert engine.load_error is not None and not engine.ready
