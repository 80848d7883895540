"""Applies committed records to the projections off the event loop, and lets readers wait
until everything acknowledged so far is visible (read-your-writes)."""

from __future__ import annotations

import anyio
from anyio.abc import TaskStatus

from memlane.events.model import Record
from memlane.projections.catchup import Projections

QUEUE = 1024  # committed batches waiting to be applied; more hold the writer back


class Projector:
    """Feeds the projections from the writer's commits, in order."""

    def __init__(self, projections: Projections) -> None:
        self.projections = projections
        self.applied_seq = projections.applied_seq
        self._send, self._receive = anyio.create_memory_object_stream[list[Record]](QUEUE)
        self._limiter = anyio.CapacityLimiter(1)
        self._progress = anyio.Event()

    async def push(self, records: list[Record]) -> None:
        await self._send.send(records)

    @property
    def backlog(self) -> int:
        return self._receive.statistics().current_buffer_used

    async def wait_for(self, seq: int) -> None:
        """Return once every record up to ``seq`` is applied."""
        while self.applied_seq < seq:
            await self._progress.wait()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        with self._send, self._receive:
            async for first in self._receive:
                batch = list(first)
                while True:
                    try:
                        batch.extend(self._receive.receive_nowait())
                    except anyio.WouldBlock:
                        break
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self.projections.apply, batch,
                                                   limiter=self._limiter)
                self.applied_seq = batch[-1].seq
                self._progress.set()
                self._progress = anyio.Event()

    async def snapshot_vectors(self, interval: float) -> None:
        """Save the vector index every ``interval`` seconds (a restart replays less)."""
        while True:
            await anyio.sleep(interval)
            await anyio.to_thread.run_sync(self.projections.save_vectors, limiter=self._limiter)
