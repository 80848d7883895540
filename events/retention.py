"""How far back the log keeps full detail, and compaction from start to end.

The horizon is the lowest of: the start of the retention window (the first record at or after
the cutoff time), and every floor the caller passes (the projections' applied seq, the
acknowledged watermark, holds such as a sync outbox that has not published yet). Only sealed
segments wholly below it are compacted, so ``replay --until`` inside the window sees every
record, and a projection never catches up from inside a compacted segment.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from memlane.events.compaction import Survey
from memlane.events.compactor import STAGING, Progress, Staged, Step, stage
from memlane.events.log import EventLog, read_log


@dataclass(frozen=True)
class Prepared:
    """Compacted segments staged under ``horizon``, ready to switch in."""

    horizon: int
    staged: Staged


def prepare(directory: Path, last_seq: int, *, cutoff: datetime, floors: Sequence[int],
            step: Step | None = None, progress: Progress | None = None) -> Prepared:
    """Survey the log up to ``last_seq`` and stage the compacted segments (any thread)."""
    found = Survey()
    window = last_seq + 1
    for record in read_log(directory, 1, upto=last_seq):
        found.observe(record)
        if window > last_seq and record.at >= cutoff:
            window = record.seq
    horizon = min(window, *floors) if floors else window
    if step is not None:
        step("surveyed")
    staged = stage(directory, found, horizon, step=step or _nothing,
                   progress=progress or _nothing)
    return Prepared(horizon, staged)


def switch(log: EventLog, prepared: Prepared, step: Step | None = None) -> None:
    """Switch the staged segments in (between appends), or drop an empty staging."""
    if prepared.staged.segments:
        log.switch_compacted(prepared.staged, step)
    else:
        shutil.rmtree(log.directory / STAGING, ignore_errors=True)


def compact(log: EventLog, *, cutoff: datetime, floors: Sequence[int],
            step: Step | None = None, progress: Progress | None = None) -> Prepared:
    """Compact a log no one else appends to (offline, or a test)."""
    prepared = prepare(log.directory, log.last_seq, cutoff=cutoff,
                       floors=[*floors, log.acked_seq], step=step, progress=progress)
    switch(log, prepared, step)
    return prepared


def _nothing(*_: object) -> None:
    return None
