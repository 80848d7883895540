"""Embeds new memories in the background and records each vector as an ``Embedded`` event.

A store is acknowledged once its ``Stored`` event is durable; its vector follows shortly after,
then its links. New memories wait in a bounded memory object stream; the writer never waits on
it: when it is full, the overflow is picked up by the next backlog sweep (live memories
without a vector from the current pipeline), which is also what runs after a restart, so a
crash between the two events loses nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio
import numpy as np
import structlog
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream

from memlane.daemon.domain.models import ModelSpec
from memlane.daemon.runtime.linker import Linker
from memlane.daemon.runtime.ports import Embeds
from memlane.daemon.runtime.writer import Writer
from memlane.events.errors import LogWriteFailed
from memlane.events.model import Consolidated, Embedded, Event, Record, Stored

BATCH = 128  # memories per embed-and-link round (the engine sorts them by length)
# Characters per round, at most: a request the engine always takes (its cap is 256k tokens,
# and a text has no more tokens than characters but its special ones). Without it, 128 long
# memories made a request the engine refused, and the refusal ended the daemon.
BATCH_CHARS = 128 * 1024
RETRY_AFTER = 5.0  # seconds before memories whose events the disk refused are tried again
QUEUE = 50_000  # memories waiting for a vector; beyond it the backlog sweep catches up
log = structlog.get_logger()
Sweep = Callable[[], AsyncIterator[list[tuple[int, str]]]]


class Indexer:
    """Embeds and links queued (memory id, text) pairs in order."""

    def __init__(self, engine: Embeds, writer: Writer, linker: Linker) -> None:
        self._engine = engine
        self._writer = writer
        self._linker = linker
        self._send, self._receive = anyio.create_memory_object_stream[tuple[int, str]](QUEUE)
        self._pending: set[int] = set()  # queued or being embedded and linked
        self._progress = anyio.Event()
        self._seen: set[int] = set()  # queued, or embedded while a sweep runs: the sweep and
        # new commits may both name a memory stored while the model was loading. Bounded: an
        # embedded id leaves it once no sweep that read the projection earlier is running.
        self._sweeps = 0
        self._settled: list[int] = []  # embedded while a sweep ran
        self._overflowed = False
        self._retry_delay = 0.0
        self._unlinked: list[Record] = []  # embedded, their link pass refused by the disk
        self._idle = anyio.Event()
        self._idle.set()
        self.pipeline_recorded = anyio.Event()
        self.embedded = 0

    @property
    def backlog(self) -> int:
        """Memories waiting for a vector or for their links (0 only when all are done); 1 more
        while the start's own work runs (the model loading, the pipeline put on record, a link
        pass a crash cut finished) and while a sweep still looks for memories to queue. A model
        that failed to load leaves nothing to wait for (status says it failed)."""
        starting = not self.pipeline_recorded.is_set() and self._engine.load_error is None
        return len(self._pending) + int(starting) + (1 if self._sweeps else 0)

    def push(self, records: list[Record]) -> None:
        """Queue the texts of new memories among committed records (never waits)."""
        for record in records:
            event = record.event
            if isinstance(event, Stored | Consolidated) and event.id not in self._seen:
                try:
                    self._send.send_nowait((event.id, event.text))
                except anyio.WouldBlock:
                    self._overflowed = True
                    continue
                except anyio.ClosedResourceError:
                    return  # stopped (a shutdown): the next start's backlog sweep embeds it
                self._queued(event.id)

    async def enqueue(self, chunks: AsyncIterator[list[tuple[int, str]]]) -> None:
        """Queue memories found by a backlog sweep (waits while the queue is full)."""
        self._sweeps += 1
        try:
            async for chunk in chunks:
                for memory_id, text in chunk:
                    if memory_id not in self._seen:
                        self._queued(memory_id)
                        await self._send.send((memory_id, text))
        finally:
            self._sweeps -= 1
            if not self._sweeps:
                self._seen.difference_update(self._settled)
                self._settled = []

    def _settle(self, ids: list[int]) -> None:
        """Embedded ids: the projection now shows their vectors, so a sweep started from now
        on will not name them."""
        if self._sweeps:
            self._settled.extend(ids)
        else:
            self._seen.difference_update(ids)

    def _queued(self, memory_id: int) -> None:
        self._seen.add(memory_id)
        self._pending.add(memory_id)
        if self._idle.is_set():
            self._idle = anyio.Event()

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

    async def run(self, sweep: Sweep, *,
                  task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Embed queued memories, once the active pipeline is on record (so that no vector
        precedes the ``ModelChanged`` that would reset the index); ``sweep`` finds what the
        queue dropped. The next batch is embedded while the last one is committed and
        linked: the model never waits on the disk or the link pass."""
        task_status.started()
        with self._send, self._receive:
            await self.pipeline_recorded.wait()
            embedded, to_record = anyio.create_memory_object_stream[_Embedded](0)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._record_each, to_record, sweep, tg)
                with embedded:
                    async for first in self._receive:
                        carried: tuple[int, str] | None = first
                        while carried is not None:
                            batch, carried = self._batch_from(carried)
                            await embedded.send(await self._embed(batch))

    async def _record_each(self, embedded: MemoryObjectReceiveStream[_Embedded], sweep: Sweep,
                           sweeps: TaskGroup) -> None:
        """Commit and link each embedded batch in turn; start a sweep for what overflowed."""
        with embedded:
            async for batch in embedded:
                await self._record(batch)
                if self._overflowed and not self.backlog:
                    self._overflowed = False  # a task of its own: it waits on this queue
                    sweeps.start_soon(self._sweep_after, sweep, self._retry_delay)
                    self._retry_delay = 0.0
                if not self.backlog:
                    self._idle.set()

    def _batch_from(self, first: tuple[int, str],
                    ) -> tuple[list[tuple[int, str]], tuple[int, str] | None]:
        """A round: ``first`` and what else waits, up to ``BATCH`` memories and
        ``BATCH_CHARS`` characters; and the memory taken that did not fit, if any."""
        batch, chars = [first], len(first[1])
        while len(batch) < BATCH:
            try:
                memory = self._receive.receive_nowait()
            except anyio.WouldBlock:
                break
            if chars + len(memory[1]) > BATCH_CHARS:
                return batch, memory
            batch.append(memory)
            chars += len(memory[1])
        return batch, None

    async def _sweep_after(self, sweep: Sweep, delay: float) -> None:
        await anyio.sleep(delay)
        await self.enqueue(sweep())

    async def _embed(self, batch: list[tuple[int, str]]) -> _Embedded:
        """The batch's vectors; or, if the engine refused or failed it, why (recorded in
        turn: the batch waits for a later sweep instead of ending the indexer)."""
        try:
            vectors = await self._engine.embed([text for _, text in batch])
        except Exception as exc:  # logged, and retried by a sweep after RETRY_AFTER
            return _Embedded(batch, None, None, "", error=f"{type(exc).__name__}: {exc}")
        embedder = self._engine.embedder
        assert embedder is not None
        return _Embedded(batch, vectors, embedder.spec, embedder.pipeline)

    async def _record(self, embedded: _Embedded) -> None:
        batch, error = embedded.batch, embedded.error
        if error is None:
            try:
                await self._commit_and_link(embedded)
                self._settle([memory_id for memory_id, _ in batch])
            except LogWriteFailed as exc:  # the disk refused
                error = str(exc)
        if error is not None:  # the next sweep tries them again
            log.warning("indexing_deferred", memories=len(batch), error=error,
                        retry_after_s=RETRY_AFTER)
            self._seen.difference_update(memory_id for memory_id, _ in batch)
            self._overflowed, self._retry_delay = True, RETRY_AFTER
        self._pending.difference_update(memory_id for memory_id, _ in batch)
        self._progress.set()
        self._progress = anyio.Event()

    async def _commit_and_link(self, embedded: _Embedded) -> None:
        assert embedded.vectors is not None and embedded.spec is not None
        events: list[Event] = [
            Embedded(memory=memory_id, vector=np.asarray(vector, dtype="<f4").tobytes(),
                     dims=int(vector.shape[0]), model=embedded.spec.name,
                     pipeline=embedded.pipeline)
            for (memory_id, _), vector in zip(embedded.batch, embedded.vectors)
        ]
        records = await self._writer.append(events)
        self.embedded += len(events)
        self._unlinked.extend(records)
        await self._linker.link(embedded.spec, self._unlinked)
        self._unlinked = []


@dataclass(frozen=True)
class _Embedded:
    """A batch's vectors and the model that made them, or why there are none."""

    batch: list[tuple[int, str]]
    vectors: np.ndarray | None
    spec: ModelSpec | None
    pipeline: str
    error: str | None = None
