"""Compaction in the running daemon, and the disk budget that starts it.

The survey and the staging run beside the daemon while appends go on (the composition root
hands in where: a child process, so the event loop never shares a GIL with them); only the
switch runs in the writer's thread, between two batches (see
:mod:`memlane.events.compactor`). One compaction runs at a time. The horizon is the lowest of
the retention window's start, the SQLite projection's applied seq, the acknowledged watermark
and every hold the composition root registers (e.g. a sync outbox's cursor: nothing
unpublished is compacted).

Past the disk budget, the scheduled round compacts; still past it after that, ``over_budget``
says so (status and doctor warn). Nothing else is ever dropped to fit: no live memory goes.

``MEMLANE_TEST_COMPACT_CRASH_AT=<step>[:<n>]`` (tests only, passed in by the composition root)
makes the daemon exit with 137 the n-th time compaction reaches the step, as a kill -9 would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import anyio
import structlog

from memlane.daemon.domain.errors import ApiError
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.writer import Writer
from memlane.daemon.service.progress import JobProgress
from memlane.events.compactor import CompactionRaced, Progress, Step
from memlane.events.log import SEGMENT_BYTES
from memlane.events.model import Event
from memlane.events.retention import Prepared, switch

log = structlog.get_logger()
Hold = Callable[[], int]  # a seq below which compaction may go (nothing at or above it)


class StagesCompaction(Protocol):
    """Survey the log up to a seq and stage its compacted segments, as
    :func:`memlane.events.retention.prepare` does."""

    def __call__(self, directory: Path, last_seq: int, *, cutoff: datetime,
                 floors: Sequence[int], step: Step, progress: Progress) -> Awaitable[Prepared]:
        ...


class Compaction:
    def __init__(self, *, writer: Writer, reader: Reader, log_dir: Path, retention_days: int,
                 prepare: StagesCompaction, budget_bytes: int = 0, holds: Sequence[Hold] = (),
                 crash_at: str | None = None) -> None:
        self._writer = writer
        self._prepare = prepare
        self._reader = reader
        self._log_dir = log_dir
        self._retention = timedelta(days=retention_days)
        self._budget = budget_bytes
        self._holds = list(holds)
        self._crash_at = crash_at
        self._steps: dict[str, int] = {}
        self._lock = anyio.Lock()
        self.progress = JobProgress()  # segments done, to do
        self.last: dict[str, Any] | None = None
        self.over_budget = False
        self._left_at: int | None = None  # the log's size after the budget's last pass

    def hold(self, hold: Hold) -> None:
        """Keep whole every seq from ``hold()`` on (e.g. a sync outbox's unpublished events)."""
        self._holds.append(hold)

    def floors(self) -> list[int]:
        return [self._reader.projections.sqlite.applied_seq, self._writer.log.acked_seq,
                *(hold() for hold in self._holds)]

    async def compact(self) -> dict[str, Any]:
        """Compact every sealed segment below the horizon; returns what it did."""
        async with self._lock:
            started = time.monotonic()
            cutoff = datetime.now(UTC) - self._retention
            last_seq, floors = self._writer.log.last_seq, self.floors()
            try:
                with self.progress.running(0):
                    prepared = await self._stage_and_switch(last_seq, cutoff, floors)
            except CompactionRaced as exc:  # a forget rewrote a segment meanwhile
                raise ApiError(str(exc), code=exc.code, status=409) from exc
            self.last = report(prepared, cutoff, time.monotonic() - started)
            log.info("compacted", **{k: v for k, v in self.last.items() if "by_kind" not in k})
            return self.last

    async def _stage_and_switch(self, last_seq: int, cutoff: datetime,
                                floors: list[int]) -> Prepared:
        prepared = await self._prepare(self._log_dir, last_seq, cutoff=cutoff, floors=floors,
                                       step=self._step, progress=self.progress.note)
        await self._writer.submit(_nothing, before=lambda: switch(
            self._writer.log, prepared, self._step))
        return prepared

    async def keep_within_budget(self) -> None:
        """The scheduled round's part: compact past the budget, then say if still past it."""
        size = self.log_bytes()
        if not self._budget or size <= self._budget:
            self.over_budget = False
            return
        if self._left_at is not None and size < self._left_at + SEGMENT_BYTES:
            return  # no segment was sealed since the last pass: nothing new to compact
        try:
            await self.compact()
        except ApiError as exc:  # raced a forget: the next round tries again
            log.warning("compaction_deferred", error=exc.message)
            return
        self._left_at = self.log_bytes()
        self.over_budget = self._left_at > self._budget
        if self.over_budget:
            log.warning("over_disk_budget", log_bytes=self.log_bytes(), budget=self._budget)

    def log_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._log_dir.glob("*.seg"))

    def state(self) -> dict[str, Any]:
        return {**self.progress.state(), "last": self.last, "budget_bytes": self._budget or None,
                "over_budget": self.over_budget, "retention_days": self._retention.days}

    def _step(self, name: str) -> None:
        count = self._steps[name] = self._steps.get(name, 0) + 1
        log.info("compact_step", step=name, count=count)
        if self._crash_at in (name, f"{name}:{count}"):
            os._exit(137)


def _nothing(_view: object, _seq: int) -> tuple[list[Event], None]:
    return [], None


def report(prepared: Prepared, cutoff: datetime, seconds: float) -> dict[str, Any]:
    staged = prepared.staged
    return {"horizon": prepared.horizon, "retention_cutoff": cutoff.isoformat(),
            "segments_examined": staged.examined, "segments_compacted": len(staged.segments),
            "bytes_before": staged.before, "bytes_after": staged.after,
            "by_kind_before": dict(staged.before_by_kind),
            "by_kind_after": dict(staged.after_by_kind), "seconds": round(seconds, 3)}
