"""Forgetting a memory (pure parts): which log records to rewrite, and how.

The memory's text, tags and vector are removed from every record that carries them; the
records stay (same seq, same time) so the log remains contiguous and verifiable, and the
``Forgotten`` event keeps only the id and the content hash.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from memlane.events.model import Consolidated, Embedded, Record, Stored


def purge(memory: int) -> Callable[[Record], Record]:
    """A log transform that blanks ``memory``'s text, tags and vector."""

    def transform(record: Record) -> Record:
        event = record.event
        match event:
            case Stored(id=found) if found == memory and event.text:
                blank: object = msgspec.structs.replace(event, text="", tags=(),
                                                        idempotency_key=None)
            case Consolidated(id=found) if found == memory and event.text:
                blank = msgspec.structs.replace(event, text="", tags=())
            case Embedded(memory=found) if found == memory and event.vector:
                blank = msgspec.structs.replace(event, vector=b"", dims=0)
            case _:
                return record
        return msgspec.structs.replace(record, event=blank)

    return transform
