"""Which events touched a memory (pure), for ``memlane history``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from memlane.events.mentions import referenced
from memlane.events.model import Embedded, Embeddings, Record, Tallied


def touches(record: Record, memory: int) -> bool:
    return memory in referenced(record.event)


def history(records: Iterable[Record], memory: int) -> list[dict[str, Any]]:
    """Every event that touched ``memory``, oldest first, as JSON-ready rows (no vectors)."""
    rows = []
    for record in records:
        if touches(record, memory):
            event = msgspec.to_builtins(record.event)
            if isinstance(record.event, Embedded):
                event["vector"] = f"<{record.event.dims} floats>"
            elif isinstance(record.event, Embeddings):
                event = _embedding_of(record.event, record.event.memories.index(memory))
            elif isinstance(record.event, Tallied):
                event = _tally_of(event, record.event.memories.index(memory))
            rows.append({"seq": record.seq, "at": record.at.isoformat(), **event})
    return rows


def _tally_of(event: dict[str, Any], index: int) -> dict[str, Any]:
    """A compaction's tally as it concerns one memory (it holds thousands)."""
    columns = ("recalls", "shown", "last_recalled", "refreshed")
    return {"type": event["type"], **{name: event[name][index] for name in columns}}


def _embedding_of(event: Embeddings, index: int) -> dict[str, Any]:
    """A compacted run of vectors as it concerns one memory: the row its ``Embedded`` was."""
    return {"type": "embedded", "memory": event.memories[index], "dims": event.dims,
            "model": event.model, "pipeline": event.pipeline,
            "vector": f"<{event.dims} int8 codes>"}
