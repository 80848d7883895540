"""Memories by state over time, folded from the log (pure and incremental): the health page's
chart. The states follow the projection's fold: stored → active, consolidated → proven,
promoted (when active) → proven, expired, restored (to proven or active), forgotten.

One point per second in which a count changed; past :data:`MAX_POINTS` every other point is
dropped (the newest is always kept), so a long history costs bounded memory.

A compacted log folds to the same points: compaction keeps every record that changes a state
whole (it folds only recalls and shown sets into ``Tallied`` counts, and drops vectors no
replay sees), so the counts before its horizon are as exact as after it. The chart still
marks the :class:`Horizon`: before it, the log no longer holds every record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from memlane.events.model import (
    Consolidated,
    Expired,
    ForgetRequested,
    Forgotten,
    Promoted,
    Record,
    Restored,
    Stored,
)

STATES = ("active", "proven", "expired", "forgotten")
MAX_POINTS = 2048
Counts = tuple[int, int, int, int]  # in the order of STATES


@dataclass(frozen=True)
class Horizon:
    """Where a compacted log becomes whole again: up to ``seq`` (the record kept last, at
    ``at``) some records were folded into counts or dropped."""

    seq: int
    at: datetime


def horizon_in(records: Iterable[Record], through: int) -> Horizon | None:
    """The last of ``records`` at or before ``through`` (the seq compaction accounts for)."""
    last = None
    for record in records:
        if record.seq > through:
            break
        last = record
    return Horizon(last.seq, last.at) if last is not None else None


class StateHistory:
    """Folds records in seq order; ``seq`` is the last one seen."""

    def __init__(self) -> None:
        self.seq = 0
        self._states: dict[int, str] = {}
        self._proven: set[int] = set()
        self._counts = dict.fromkeys(STATES, 0)
        self._points: dict[datetime, Counts] = {}

    def observe(self, records: Iterable[Record]) -> None:
        for record in records:
            if record.seq <= self.seq:
                continue
            self.seq = record.seq
            if self._apply(record):
                second = record.at.replace(microsecond=0)
                counts = self._counts
                self._points[second] = (counts["active"], counts["proven"], counts["expired"],
                                        counts["forgotten"])
                if len(self._points) > MAX_POINTS:
                    self._thin()

    def points(self) -> list[tuple[datetime, Counts]]:
        return list(self._points.items())

    def _apply(self, record: Record) -> bool:
        """Move the memories the event is about; whether any count changed."""
        event = record.event
        moves: list[tuple[int, str]] = []
        if isinstance(event, Stored) and event.id not in self._states:
            moves.append((event.id, "active"))
        elif isinstance(event, Consolidated):
            self._proven.add(event.id)
            moves.append((event.id, "proven"))
        elif isinstance(event, Promoted):
            self._proven.add(event.memory)
            if self._states.get(event.memory) == "active":
                moves.append((event.memory, "proven"))
        elif isinstance(event, Expired) and self._states.get(event.memory) in ("active", "proven"):
            moves.append((event.memory, "expired"))
        elif isinstance(event, Restored) and self._states.get(event.memory) == "expired":
            moves.append((event.memory, "proven" if event.memory in self._proven else "active"))
        elif isinstance(event, ForgetRequested | Forgotten):
            ids = event.memories if isinstance(event, ForgetRequested) else (event.memory,)
            moves.extend((m, "forgotten") for m in ids if m in self._states)
        return any([self._move(memory, state) for memory, state in moves])

    def _move(self, memory: int, state: str) -> bool:
        before = self._states.get(memory)
        if before == state:
            return False
        if before is not None:
            self._counts[before] -= 1
        self._states[memory] = state
        self._counts[state] += 1
        return True

    def _thin(self) -> None:
        items = list(self._points.items())
        kept = items[-1::-2][::-1]  # every other point, counted back from the newest
        self._points = dict(kept)


def sample(points: list[tuple[datetime, Counts]], count: int, *,
           until: datetime) -> list[tuple[datetime, Counts]]:
    """``count`` evenly spaced instants from the first point to ``until`` (or the last point,
    if later), each with the counts of the latest point at or before it."""
    if not points:
        return []
    start, end = points[0][0], max(points[-1][0], until)
    step = (end - start) / max(count - 1, 1)
    found, index = [], 0
    for i in range(count):
        at = start + step * i if i < count - 1 else end
        while index + 1 < len(points) and points[index + 1][0] <= at:
            index += 1
        found.append((at, points[index][1]))
    return found


