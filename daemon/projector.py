"""Applies committed records to the projections off the event loop, and lets readers wait
until everything acknowledged so far is visible (read-your-writes)."""

from __future__ import annotations

import anyio
from anyio.abc import TaskStatus

from memlane.events.model import Record
from memlane.projections.catchup import Projections


class Projector:
    """Feeds the projections from the writer's commits, in order."""

    def __init__(self, projections: Projections) -> None:
        self.projections = projections
        self.applied_seq = projections.applied_seq
        self._queue: list[Record] = []
        self._wake = anyio.Event()
        self._progress = anyio.Event()

    def push(self, records: list[Record]) -> None:
        self._queue.extend(records)
        self._wake.set()

    @property
    def backlog(self) -> int:
        return len(self._queue)

    async def wait_for(self, seq: int) -> None:
        """Return once every record up to ``seq`` is applied."""
        while self.applied_seq < seq:
            await self._progress.wait()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            batch, self._queue = self._queue, []
            if not batch:
                continue
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.projections.apply, batch)
            self.applied_seq = batch[-1].seq
            self._progress.set()
            self._progress = anyio.Event()
