"""The single writer: decides commands in arrival order and commits them in batches.

Every waiting command joins the next batch (group commit): one write and one sync serve them
all, and no caller hears back before its events are synced. Decisions run inside the writer, one
after another, so check-then-append (dedup, idempotency) is atomic. Commands wait in a bounded
memory object stream (back-pressure, not an unbounded list); the writer's blocking calls run on
its own thread limiter, so a flood of embeddings or file reads never starves the fsync. Any
decided event about a forgotten memory is dropped (a racing embed must not bring it back).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskStatus

from memlane.daemon.domain.admission import AdmissionIndex, BatchView
from memlane.daemon.domain.forgetting import drop_about
from memlane.events.errors import LogStopped, LogWriteFailed
from memlane.events.log import EventLog
from memlane.events.model import Event, Record
from memlane.projections import queries
from memlane.projections.catchup import Projections

T = TypeVar("T")
Decide = Callable[[BatchView, int], tuple[list[Event], T]]
Stamp = Callable[[Record], Record]
QUEUE = 8192  # commands waiting for the writer; more make submitters wait


class _Slot(Generic[T]):
    def __init__(self, decide: Decide[T], before: Callable[[], object] | None,
                 stamp: Stamp | None = None) -> None:
        self.decide = decide
        self.before = before
        self.stamp = stamp
        self.done = anyio.Event()
        self.records: list[Record] = []
        self.answer: T | None = None
        self.error: BaseException | None = None


class Writer:
    """Owns the :class:`EventLog`; ``submit`` is safe to call from any task.

    ``admission`` is the index it decides against, or the call that builds it: then the
    writer builds it in its thread when it starts, and commands submitted meanwhile wait for
    it (a start serves without waiting for the index of 100k memories; only a first write does).
    """

    def __init__(self, log: EventLog, admission: AdmissionIndex | Callable[[], AdmissionIndex],
                 *, on_commit: Callable[[list[Record]], Awaitable[None]],
                 max_batch: int = 4096) -> None:
        self.log = log
        self.admission = admission if isinstance(admission, AdmissionIndex) else AdmissionIndex()
        self._seed = None if isinstance(admission, AdmissionIndex) else admission
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._send, self._receive = anyio.create_memory_object_stream[_Slot[Any]](QUEUE)
        self._limiter = anyio.CapacityLimiter(1)
        self.batches = 0
        self.stopped: str | None = None

    async def submit(self, decide: Decide[T], *, before: Callable[[], object] | None = None,
                     stamp: Stamp | None = None) -> tuple[list[Record], T]:
        """Decide and durably append; returns the new records and the decision's answer.

        ``before`` is a blocking call (a log rewrite) run in the writer's thread right before
        this command is decided, with nothing appended in between. ``stamp`` sets the envelope
        of each new record (an event from another device keeps its origin)."""
        if self.stopped:
            raise LogStopped(self.stopped)
        slot: _Slot[T] = _Slot(decide, before, stamp)
        try:
            await self._send.send(slot)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise LogStopped(self.stopped or "the writer has stopped") from None
        await slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.records, slot.answer  # type: ignore[return-value]

    async def append(self, events: list[Event]) -> list[Record]:
        """Append events that need no decision."""
        records, _ = await self.submit(lambda _view, _seq: (events, None))
        return records

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        with self._send, self._receive:
            if self._seed is not None:  # nothing is decided before the index is whole
                self.admission = await anyio.to_thread.run_sync(self._seed, limiter=self._limiter)
            async for first in self._receive:
                for batch in self._batches(first):
                    with anyio.CancelScope(shield=True):
                        await self._commit(batch)

    def _batches(self, first: _Slot[Any]) -> list[list[_Slot[Any]]]:
        """``first`` and the commands already waiting, cut before each one that needs its
        ``before`` call to run alone."""
        batches: list[list[_Slot[Any]]] = [[first]]
        while sum(len(b) for b in batches) < self._max_batch:
            try:
                slot = self._receive.receive_nowait()
            except anyio.WouldBlock:
                break
            if slot.before is not None or batches[-1][0].before is not None:
                batches.append([slot])
            else:
                batches[-1].append(slot)
        return batches

    async def _commit(self, batch: list[_Slot[Any]]) -> None:
        first = batch[0]
        if first.before is not None:
            try:
                await anyio.to_thread.run_sync(first.before, limiter=self._limiter)
            except Exception as exc:  # the command fails alone
                _fail(batch, exc)
                return
        records = self._decide_all(batch)
        try:
            if records:
                await anyio.to_thread.run_sync(self.log.append_records, records,
                                               limiter=self._limiter)
        except LogWriteFailed as exc:
            _fail(batch, exc)
            return
        except LogStopped as exc:
            self.stopped = str(exc)
            _fail(batch + self._drain(), exc)
            raise
        self.batches += 1
        if records:
            self.admission.observe(r.event for r in records)
            await self._on_commit(records)
        for slot in batch:
            slot.done.set()

    def _drain(self) -> list[_Slot[Any]]:
        waiting = []
        while True:
            try:
                waiting.append(self._receive.receive_nowait())
            except anyio.WouldBlock:
                return waiting

    def _decide_all(self, batch: list[_Slot[Any]]) -> list[Record]:
        view = BatchView(self.admission)
        at = datetime.now(UTC)
        records: list[Record] = []
        next_seq = self.log.last_seq + 1
        for slot in batch:
            try:
                decided, slot.answer = slot.decide(view, next_seq)
            except Exception as exc:  # a bad command fails alone, not its batch
                slot.error = exc
                continue
            events = drop_about(view.is_forgotten, decided)
            slot.records = [Record(seq=next_seq + i, at=at, event=e) for i, e in enumerate(events)]
            if slot.stamp is not None:
                slot.records = [slot.stamp(r) for r in slot.records]
            view.observe(events)
            next_seq += len(events)
            records.extend(slot.records)
        return records


def _fail(batch: list[_Slot[Any]], exc: BaseException) -> None:
    for slot in batch:
        if slot.error is None:
            slot.error = exc
        slot.records = []
        slot.done.set()


def seed_admission(projections: Projections) -> AdmissionIndex:
    """The writer's dedup/idempotency index, built from the caught-up projection (through a
    read connection: a rebuild that swaps the file waits for it)."""
    index = AdmissionIndex()
    with projections.reads.connection() as conn:
        for memory_id, project, digest, state, key in queries.admission_rows(conn):
            index.load_row(memory_id, project, digest, live=state in queries.LIVE_STATES,
                           key=key, forgotten=state == "forgotten")
    return index
