"""The indexer embeds the next batch while the last one's vectors are committed and linked:
the model is the ingest's bottleneck and must not wait on the disk or the link pass. Batches
are still committed and linked in order, one at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import anyio
import numpy as np
import pytest

from memlane.daemon.domain.errors import PayloadTooLarge
from memlane.daemon.runtime import indexer as indexer_module
from memlane.daemon.runtime.indexer import BATCH, Indexer
from memlane.events.model import Embedded, Event, Record, Stored

AT = datetime(2026, 12, 4, tzinfo=UTC)
EMBED_S = 0.05
LINK_S = 0.2


class Steps:
    """What the fakes did, in order."""

    def __init__(self) -> None:
        self.done: list[tuple[str, int]] = []  # (step, first memory of its batch)


class Engine:
    load_error: str | None = None
    embedder = SimpleNamespace(spec=SimpleNamespace(name="fake"), pipeline="fake:4")

    def __init__(self, steps: Steps) -> None:
        self.steps = steps

    async def embed(self, texts: Sequence[str], **_: Any) -> np.ndarray:
        first = int(texts[0].split()[1])
        self.steps.done.append(("embed started", first))
        await anyio.sleep(EMBED_S)
        return np.ones((len(texts), 4), dtype=np.float32) / 2


class Writer:
    def __init__(self) -> None:
        self.seq = 0

    async def append(self, events: list[Event]) -> list[Record]:
        records = []
        for event in events:
            self.seq += 1
            records.append(Record(seq=self.seq, at=AT, event=event))
        return records


class Linker:
    def __init__(self, steps: Steps) -> None:
        self.steps = steps
        self.linked: list[int] = []

    async def link(self, _spec: object, records: Sequence[Record]) -> None:
        ids = [r.event.memory for r in records if isinstance(r.event, Embedded)]
        self.steps.done.append(("link started", ids[0]))
        await anyio.sleep(LINK_S)
        self.linked += ids
        self.steps.done.append(("link ended", ids[0]))


def stored(n: int) -> Record:
    return Record(seq=n, at=AT,
                  event=Stored(id=n, text=f"memory {n}", project="p", kind="note",
                               content_hash=f"{n:032x}"))


async def no_sweep() -> AsyncIterator[list[tuple[int, str]]]:
    """A backlog sweep that finds nothing the queue dropped."""
    return
    yield


@asynccontextmanager
async def running(indexer: Indexer) -> AsyncIterator[None]:
    """The indexer running, its pipeline on record; stopped on the way out."""
    async with anyio.create_task_group() as tg:
        await tg.start(indexer.run, no_sweep)
        indexer.pipeline_recorded.set()
        yield
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_the_next_batch_is_embedded_while_the_last_one_is_linked() -> None:
    steps = Steps()
    linker = Linker(steps)
    indexer = Indexer(Engine(steps), Writer(), linker)  # type: ignore[arg-type]
    total = 3 * BATCH
    async with running(indexer):
        indexer.push([stored(n) for n in range(1, total + 1)])
        assert await indexer.wait_idle(30)
        assert indexer.backlog == 0
    firsts = [1, BATCH + 1, 2 * BATCH + 1]
    assert linker.linked == list(range(1, total + 1))  # every memory, in order
    assert [first for step, first in steps.done if step == "link started"] == firsts
    order = steps.done.index
    for before, after in zip(firsts, firsts[1:]):
        assert order(("embed started", after)) < order(("link ended", before)), steps.done
        # one batch is committed and linked at a time
        assert order(("link ended", before)) < order(("link started", after)), steps.done


class GatedLinker:
    """A link pass that ends when the test says."""

    def __init__(self) -> None:
        self.gate = anyio.Event()

    async def link(self, _spec: object, _records: Sequence[Record]) -> None:
        await self.gate.wait()


@pytest.mark.anyio
async def test_a_memory_handed_over_as_the_last_link_pass_ends_keeps_it_busy() -> None:
    """The embed loop waits on an empty queue while batch 1 is linked; memory 2 arrives on
    the tick its link pass ends. It is handed straight to the waiting loop (never in the
    queue's buffer, not yet a batch in flight): the indexer is still not idle."""
    linker = GatedLinker()
    indexer = Indexer(Engine(Steps()), Writer(), linker)  # type: ignore[arg-type]
    async with running(indexer):
        indexer.push([stored(1)])
        await anyio.sleep(EMBED_S * 4)  # batch 1 waits in its link pass
        linker.gate.set()
        indexer.push([stored(2)])
        assert not await indexer.wait_idle(EMBED_S / 10), "idle while memory 2 has no vector"
        assert await indexer.wait_idle(30)


class RefusingEngine(Engine):
    """Refuses a request over ``cap`` characters, as the engine refuses one over its token
    cap, and fails the first request it is sent."""

    def __init__(self, steps: Steps, cap: int) -> None:
        super().__init__(steps)
        self.cap, self.requests, self.refused = cap, 0, 0

    async def embed(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        self.requests += 1
        if sum(map(len, texts)) > self.cap:
            self.refused += 1
            raise PayloadTooLarge("over the cap", code="embeddings_too_large")
        if self.requests == 1:
            raise RuntimeError("a pass failed")
        return await super().embed(texts, **kwargs)


@pytest.mark.anyio
async def test_long_memories_make_rounds_the_engine_takes_and_a_failure_is_retried(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Rounds hold at most BATCH_CHARS characters (so 128 long memories never make a request
    the engine refuses), and a round the engine fails waits for a sweep instead of ending the
    indexer: every memory gets its vector."""
    monkeypatch.setattr(indexer_module, "RETRY_AFTER", 0.05)
    long_text = "x" * (indexer_module.BATCH_CHARS // 3)
    records = [Record(seq=n, at=AT, event=Stored(id=n, text=f"memory {n} {long_text}",
                                                 project="p", kind="note",
                                                 content_hash=f"{n:032x}"))
               for n in range(1, 11)]
    texts = {r.event.id: r.event.text for r in records}  # type: ignore[union-attr]
    linker = Linker(Steps())
    engine = RefusingEngine(Steps(), cap=indexer_module.BATCH_CHARS)
    indexer = Indexer(engine, Writer(), linker)  # type: ignore[arg-type]

    async def sweep() -> AsyncIterator[list[tuple[int, str]]]:
        yield [(n, texts[n]) for n in texts if n not in linker.linked]

    async with anyio.create_task_group() as tg:
        await tg.start(indexer.run, sweep)
        indexer.pipeline_recorded.set()
        indexer.push(records)
        with anyio.fail_after(30):
            while sorted(linker.linked) != list(texts):
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert engine.refused == 0 and engine.requests >= 5  # the failed round was sent again
