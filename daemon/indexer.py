"""Embeds new memories in the background and records each vector as an ``Embedded`` event.

A store is acknowledged once its ``Stored`` event is durable; its vector follows shortly after,
then its links.
After a restart the backlog (live memories without a vector from the current pipeline) is
queued again, so a crash between the two events loses nothing.
"""

from __future__ import annotations

import anyio
import numpy as np
from anyio.abc import TaskStatus

from memlane.daemon.engine import EmbedEngine
from memlane.daemon.linker import Linker
from memlane.daemon.writer import Writer
from memlane.events.model import Consolidated, Embedded, Event, Record, Stored

BATCH = 32


class Indexer:
    """Queue of (memory id, text) waiting for a vector."""

    def __init__(self, engine: EmbedEngine, writer: Writer, linker: Linker) -> None:
        self._engine = engine
        self._writer = writer
        self._linker = linker
        self._queue: list[tuple[int, str]] = []
        self._pending: set[int] = set()  # queued or being embedded and linked
        self._progress = anyio.Event()
        self._seen: set[int] = set()  # queued or embedded by this run: the backlog scan and
        # new commits may both name a memory stored while the model was loading
        self._wake = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()
        self.pipeline_recorded = anyio.Event()
        self.embedded = 0

    @property
    def backlog(self) -> int:
        """Memories waiting for a vector or for their links (0 only when all are done)."""
        return len(self._queue) + (0 if self._idle.is_set() else 1)

    def push(self, records: list[Record]) -> None:
        """Queue the texts of new memories among committed records."""
        for record in records:
            event = record.event
            if isinstance(event, Stored | Consolidated):
                self.enqueue([(event.id, event.text)])

    def enqueue(self, items: list[tuple[int, str]]) -> None:
        items = [(i, text) for i, text in items if i not in self._seen]
        self._seen.update(i for i, _ in items)
        self._pending.update(i for i, _ in items)
        if items:
            self._queue.extend(items)
            self._idle = anyio.Event() if self._idle.is_set() else self._idle
            self._wake.set()

    async def wait_until_indexed(self, seq: int, timeout: float) -> bool:
        """Wait (bounded) until every memory up to ``seq`` has its vector and links; later
        stores do not hold the caller up. True if they have."""
        with anyio.move_on_after(timeout):
            while self._pending and min(self._pending) <= seq:
                await self._progress.wait()
        return not self._pending or min(self._pending) > seq

    async def wait_idle(self, timeout: float) -> bool:
        """Wait (bounded) until every queued memory has its vector; True if it has."""
        with anyio.move_on_after(timeout):
            await self._idle.wait()
        return self._idle.is_set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Embed queued memories, once the active pipeline is on record (so that no vector
        precedes the ``ModelChanged`` that would reset the index)."""
        task_status.started()
        await self.pipeline_recorded.wait()
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            while self._queue:
                batch, self._queue = self._queue[:BATCH], self._queue[BATCH:]
                await self._embed(batch)
            self._idle.set()

    async def _embed(self, batch: list[tuple[int, str]]) -> None:
        vectors = await self._engine.embed([text for _, text in batch])
        embedder = self._engine.embedder
        assert embedder is not None
        events: list[Event] = [
            Embedded(memory=memory_id, vector=np.asarray(vector, dtype="<f4").tobytes(),
                     dims=int(vector.shape[0]), model=embedder.spec.name,
                     pipeline=embedder.pipeline)
            for (memory_id, _), vector in zip(batch, vectors)
        ]
        records = await self._writer.append(events)
        self.embedded += len(events)
        await self._linker.link(embedder.spec, records)
        self._pending.difference_update(memory_id for memory_id, _ in batch)
        self._progress.set()
        self._progress = anyio.Event()
