"""The indexer's backlog (status's ``embedding_backlog``, what `memlane wait` and the tests wait
on) reads 0 only when nothing is left to do: not while the start's own work runs, nor while a
sweep still looks for memories to queue; and a model that failed leaves nothing to wait for."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pytest

from memlane.daemon.runtime.indexer import Indexer


class Engine:
    load_error: str | None = None


@contextmanager
def indexer(engine: Engine) -> Iterator[Indexer]:
    """An indexer that is never run (its queue closed at the end, as ``run`` would)."""
    unused: Any = None
    one = Indexer(engine, unused, unused)  # type: ignore[arg-type]
    try:
        yield one
    finally:
        one._send.close()
        one._receive.close()


def test_the_start_counts_until_the_pipeline_is_on_record() -> None:
    engine = Engine()
    with indexer(engine) as one:
        assert one.backlog == 1
        engine.load_error = "embedding model failed to load: no file"
        assert one.backlog == 0
        engine.load_error = None
        one.pipeline_recorded.set()
        assert one.backlog == 0


@pytest.mark.anyio
async def test_a_sweep_still_reading_counts() -> None:
    reading, release = anyio.Event(), anyio.Event()

    async def nothing_missing() -> AsyncIterator[list[tuple[int, str]]]:
        reading.set()
        await release.wait()  # the projection is being read
        return
        yield  # an async generator that finds nothing

    seen: list[int] = []
    with indexer(Engine()) as one:
        one.pipeline_recorded.set()
        async with anyio.create_task_group() as tg:
            tg.start_soon(one.enqueue, nothing_missing())
            await reading.wait()
            seen.append(one.backlog)
            release.set()
        seen.append(one.backlog)
    assert seen == [1, 0]
