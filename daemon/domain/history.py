"""Which events touched a memory (pure), for ``memlane history``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, assert_never

import msgspec

from memlane.events.model import (
    Clustered,
    Consolidated,
    Embedded,
    Expired,
    Forgotten,
    Linked,
    ModelChanged,
    Promoted,
    Recalled,
    Record,
    Reinforced,
    Reprieved,
    Restored,
    Routed,
    Shown,
    Stored,
    ThresholdSet,
    Unknown,
    Used,
)


def touches(record: Record, memory: int) -> bool:
    event = record.event
    match event:
        case Stored():
            return event.id == memory
        case Consolidated():
            return event.id == memory or memory in event.sources
        case Linked():
            return memory in (event.a, event.b)
        case Clustered():
            return memory in event.members
        case (Embedded() | Routed() | Recalled() | Reprieved() | Promoted() | Expired()
              | Restored() | Forgotten() | Reinforced() | Used()):
            return event.memory == memory
        case Shown():
            return memory in event.memories
        case ThresholdSet() | ModelChanged() | Unknown():
            return False
        case _:
            assert_never(event)


def history(records: Iterable[Record], memory: int) -> list[dict[str, Any]]:
    """Every event that touched ``memory``, oldest first, as JSON-ready rows (no vectors)."""
    rows = []
    for record in records:
        if touches(record, memory):
            event = msgspec.to_builtins(record.event)
            if isinstance(record.event, Embedded):
                event["vector"] = f"<{record.event.dims} floats>"
            rows.append({"seq": record.seq, "at": record.at.isoformat(), **event})
    return rows
