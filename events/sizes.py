"""What the log's bytes hold: by event kind, by project and by day.

A record's size is its encoded length (a frame's few header bytes and a segment's header are
not counted). Sealed segments change only when compacted or rewritten by a forget, so their
measures are kept, keyed by name, size and modification time; the segment being appended to is
measured again each time.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from memlane.events.codec import decode_record, raw_records
from memlane.events.framing import Frame, iter_frames
from memlane.events.model import Record, Unknown
from memlane.events.segments import list_segments, parse_header

ProjectOf = Callable[[Record], str]


@dataclass
class Sizes:
    by_kind: Counter[str] = field(default_factory=Counter)
    by_project: Counter[str] = field(default_factory=Counter)
    by_day: Counter[str] = field(default_factory=Counter)  # ISO date (UTC) -> bytes

    def add(self, other: Sizes) -> None:
        self.by_kind.update(other.by_kind)
        self.by_project.update(other.by_project)
        self.by_day.update(other.by_day)


def kind_of(record: Record) -> str:
    event = record.event
    return event.tag if isinstance(event, Unknown) else str(event.__struct_config__.tag)


def measure_segment(path: Path, data: bytes, project_of: ProjectOf) -> Sizes:
    """The sizes of one segment's whole records (a torn tail is not counted)."""
    sizes = Sizes()
    header = parse_header(path, data)
    if isinstance(header, str):
        return sizes
    for item in iter_frames(data, header.size):
        if not isinstance(item, Frame):
            break
        for raw in raw_records(item.payload):
            record = decode_record(raw)
            sizes.by_kind[kind_of(record)] += len(raw)
            sizes.by_project[project_of(record)] += len(raw)
            sizes.by_day[record.at.date().isoformat()] += len(raw)
    return sizes


class LogSizes:
    """Measures of one log directory, remembered for the sealed segments."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._known: dict[tuple[str, int, int], Sizes] = {}

    def measure(self, project_of: ProjectOf, now: datetime, days: int = 7) -> dict[str, Any]:
        total, files, seen = Sizes(), 0, set()
        segments = list_segments(self.directory)
        for index, path in enumerate(segments):
            info = os.stat(path)
            files += info.st_size
            key = (path.name, info.st_size, info.st_mtime_ns)
            seen.add(key)
            sizes = self._known.get(key)
            if sizes is None:
                sizes = measure_segment(path, path.read_bytes(), project_of)
                if index < len(segments) - 1:
                    self._known[key] = sizes
            total.add(sizes)
        self._known = {k: v for k, v in self._known.items() if k in seen}
        since = (now - timedelta(days=days - 1)).date()
        growth = {(since + timedelta(days=d)).isoformat(): 0 for d in range(days)}
        growth.update({d: n for d, n in total.by_day.items() if d in growth})
        return {"bytes": files, "segments": len(segments),
                "by_kind": dict(total.by_kind.most_common()),
                "by_project": dict(total.by_project.most_common()),
                "growth_7d": {"bytes": sum(growth.values()), "by_day": growth}}
