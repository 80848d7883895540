"""Applies committed records to the projections off the event loop, and lets readers wait
until everything acknowledged so far is visible (read-your-writes).

The projector never dies of its files: a damaged SQLite file is set aside and rebuilt from the
log; a full, read-only or failing disk stalls it (reads see what was applied) and the batch is
retried with back-off until it lands.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import structlog
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from memlane.events.model import Record
from memlane.projections.catchup import Projections
from memlane.projections.damage import is_corruption, is_storage_error
from memlane.projections.sqlite_store import ProjectionDamaged

log = structlog.get_logger()
QUEUE = 1024  # committed batches waiting to be applied; more hold the writer back
WATCH_QUEUE = 64  # applied batches a watcher may fall behind by before it is dropped
RETRY_FIRST, RETRY_MAX = 0.5, 30.0  # back-off while the disk refuses the projection's writes


class Projector:
    """Feeds the projections from the writer's commits, in order."""

    def __init__(self, projections: Projections, *, log_dir: Path) -> None:
        self.projections = projections
        self.log_dir = log_dir
        self.applied_seq = projections.applied_seq
        self.stalled: str | None = None  # why the last apply failed, while it is retried
        self._send, self._receive = anyio.create_memory_object_stream[list[Record]](QUEUE)
        self._limiter = anyio.CapacityLimiter(1)
        self._progress = anyio.Event()
        self._watchers: list[MemoryObjectSendStream[list[Record]]] = []

    def watch(self) -> MemoryObjectReceiveStream[list[Record]]:
        """Every batch applied from now on (the viewer's live feed). A watcher that falls
        behind is dropped: its stream ends, and it may watch again."""
        send, receive = anyio.create_memory_object_stream[list[Record]](WATCH_QUEUE)
        self._watchers.append(send)
        return receive

    def _tell_watchers(self, batch: list[Record]) -> None:
        for send in list(self._watchers):
            try:
                send.send_nowait(batch)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._watchers.remove(send)
                send.close()

    async def push(self, records: list[Record]) -> None:
        """Queue committed records; once the projector has stopped (shutdown: a shielded
        commit can finish after it), they stay in the log, which the close step applies."""
        try:
            await self._send.send(records)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            log.info("projector_stopped", records=len(records))

    @property
    def backlog(self) -> int:
        return self._receive.statistics().current_buffer_used

    async def wait_for(self, seq: int) -> None:
        """Return once every record up to ``seq`` is applied, or at once while the projector
        is stalled on its disk (reads then see the last applied state)."""
        while self.applied_seq < seq and self.stalled is None:
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
                await self._apply_until_done(batch)
                self.applied_seq = batch[-1].seq
                self._wake()
                self._tell_watchers(batch)

    async def _apply_until_done(self, batch: list[Record]) -> None:
        delay = RETRY_FIRST
        while True:
            try:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._apply, batch, limiter=self._limiter)
            except Exception as exc:
                if not is_storage_error(exc):
                    raise
                self._stall(f"{type(exc).__name__}: {exc}")
                await anyio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            if self.stalled is not None:
                log.info("projector_resumed", after=self.stalled)
                self.stalled = None
            return

    def _apply(self, batch: list[Record]) -> None:
        try:
            self.projections.apply(batch)
        except ProjectionDamaged as exc:  # a gap: the file no longer matches the log
            self._repair(batch[-1].seq, f"while applying seq {batch[0].seq}: {exc}")
        except Exception as exc:
            if not is_corruption(exc):
                raise
            self._repair(batch[-1].seq, f"while applying seq {batch[0].seq}: {exc}")

    def _repair(self, upto: int, reason: str) -> None:
        log.error("projection_damaged", reason=reason, action="set aside and rebuild")
        replayed = self.projections.repair(self.log_dir, upto, reason)
        log.info("projection_rebuilt", replayed=replayed, set_aside=self.projections.damage.set_aside)

    async def repair(self, reason: str) -> None:
        """Rebuild a projection a read found damaged (in turn with the applies)."""
        await anyio.to_thread.run_sync(self._repair, self.applied_seq, reason,
                                       limiter=self._limiter)

    def _stall(self, reason: str) -> None:
        if self.stalled is None:
            log.error("projector_stalled", reason=reason, action="retrying; reads see the "
                      "projections as they were")
        self.stalled = reason
        self._wake()

    def _wake(self) -> None:
        self._progress.set()
        self._progress = anyio.Event()

    async def snapshot_vectors(self, interval: float) -> None:
        """Save the vector index every ``interval`` seconds (a restart replays less); a disk
        that refuses the save leaves the last snapshot, and the next interval tries again."""
        while True:
            await anyio.sleep(interval)
            try:
                await anyio.to_thread.run_sync(self.projections.save_vectors,
                                               limiter=self._limiter)
            except (OSError, RuntimeError) as exc:
                log.warning("vector_snapshot_failed", error=str(exc))
