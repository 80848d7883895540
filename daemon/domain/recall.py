"""Which search hits count as recalls, and when recalls promote a memory (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from memlane.events.model import Event, Promoted, Recalled

PROMOTE_AT = 3
QUERY_CHARS = 500


@dataclass(frozen=True)
class RecallHit:
    id: int
    rank: int
    score: float  # the fused score shown to the user
    similarity: float | None  # the query's cosine to the memory, when it was a dense candidate
    state: str


def decide_recalls(query: str, hits: Sequence[RecallHit], *, floor: float,
                   recalls: Mapping[int, int], promote_at: int = PROMOTE_AT) -> list[Event]:
    """``Recalled`` for hits at or above the similarity floor; ``Promoted`` for an active
    memory reaching ``promote_at`` recalls."""
    events: list[Event] = []
    for hit in hits:
        if hit.similarity is None or hit.similarity < floor:
            continue
        events.append(Recalled(memory=hit.id, query=query[:QUERY_CHARS], rank=hit.rank,
                               score=round(hit.score, 6)))
        if hit.state == "active" and recalls.get(hit.id, 0) + 1 == promote_at:
            events.append(Promoted(memory=hit.id, reason=f"recalled {promote_at} times"))
    return events
