"""Which memories an event names: what history, forget and the fold's per-memory index of
events ask of every event kind."""

from __future__ import annotations

from typing import assert_never

from memlane.events.model import (
    Clustered,
    Consolidated,
    ConsolidationRejected,
    Embedded,
    Embeddings,
    Event,
    Expired,
    ForgetRequested,
    Forgotten,
    Linked,
    ModelChanged,
    Pinned,
    Promoted,
    Recalled,
    Reinforced,
    Reprieved,
    Restored,
    Routed,
    Shown,
    Stored,
    Tallied,
    ThresholdSet,
    Unknown,
    Used,
)


def referenced(event: Event | Unknown) -> tuple[int, ...]:
    """Every memory id an event mentions."""
    match event:
        # the kinds most of a log holds first: a case tries its classes one by one
        case Stored():
            return (event.id,)
        case Linked():
            return (event.a, event.b)
        case (Embedded() | Recalled() | Routed() | Reprieved() | Promoted() | Expired()
              | Restored() | Forgotten() | Reinforced() | Used() | Pinned()):
            return (event.memory,)
        case Consolidated():
            return (event.id, *event.sources)
        case Clustered() | ConsolidationRejected():
            return event.members
        case ForgetRequested() | Shown() | Tallied() | Embeddings():
            return event.memories
        case ThresholdSet() | ModelChanged() | Unknown():
            return ()
        case _:
            assert_never(event)
