"""Memories by state over time, folded from the log (pure and incremental): the health page's
chart. The states follow the projection's fold: stored → active, consolidated → proven,
promoted (when active) → proven, expired, restored (to proven or active), forgotten.

One point per second in which a count changed; past :data:`MAX_POINTS` every other point is
dropped (the newest is always kept), so a long history costs bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterable
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


