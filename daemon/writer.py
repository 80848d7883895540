"""The single writer: decides commands in arrival order and commits them in batches.

Every waiting command joins the next batch (group commit): one write and one sync serve them
all, and no caller hears back before its events are synced. Decisions run inside the writer, one
after another, so check-then-append (dedup, idempotency) is atomic.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskStatus

from memlane.daemon.admission import AdmissionIndex, BatchView
from memlane.events.errors import LogStopped, LogWriteFailed
from memlane.events.log import EventLog
from memlane.events.model import Event, Record

T = TypeVar("T")
Decide = Callable[[BatchView, int], tuple[list[Event], T]]


class _Slot(Generic[T]):
    def __init__(self, decide: Decide[T]) -> None:
        self.decide = decide
        self.done = anyio.Event()
        self.records: list[Record] = []
        self.answer: T | None = None
        self.error: BaseException | None = None


class Writer:
    """Owns the :class:`EventLog`; ``submit`` is safe to call from any task."""

    def __init__(self, log: EventLog, admission: AdmissionIndex, *,
                 on_commit: Callable[[list[Record]], None], max_batch: int = 4096) -> None:
        self.log = log
        self.admission = admission
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._pending: list[_Slot[Any]] = []
        self._wake = anyio.Event()
        self.batches = 0
        self.stopped: str | None = None

    async def submit(self, decide: Decide[T]) -> tuple[list[Record], T]:
        """Decide and durably append; returns the new records and the decision's answer."""
        if self.stopped:
            raise LogStopped(self.stopped)
        slot: _Slot[T] = _Slot(decide)
        self._pending.append(slot)
        self._wake.set()
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
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch:]
            if self._pending:
                self._wake.set()
            with anyio.CancelScope(shield=True):
                await self._commit(batch)

    async def _commit(self, batch: list[_Slot[Any]]) -> None:
        records = self._decide_all(batch)
        try:
            if records:
                await anyio.to_thread.run_sync(self.log.append_records, records)
        except LogWriteFailed as exc:
            _fail(batch, exc)
            return
        except LogStopped as exc:
            self.stopped = str(exc)
            _fail(batch + self._pending, exc)
            raise
        self.batches += 1
        if records:
            self.admission.observe(r.event for r in records)
            self._on_commit(records)
        for slot in batch:
            slot.done.set()

    def _decide_all(self, batch: list[_Slot[Any]]) -> list[Record]:
        view = BatchView(self.admission)
        at = datetime.now(UTC)
        records: list[Record] = []
        next_seq = self.log.last_seq + 1
        for slot in batch:
            try:
                events, slot.answer = slot.decide(view, next_seq)
            except Exception as exc:  # a bad command fails alone, not its batch
                slot.error = exc
                continue
            slot.records = [Record(seq=next_seq + i, at=at, event=e) for i, e in enumerate(events)]
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
