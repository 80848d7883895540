"""Which explicit search hits count as recalls, which shown memories were used, and when
use promotes a memory (pure). A memory merely shown (``Shown``) is never counted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from memlane.daemon.domain.usage import UseEvidence
from memlane.events.model import Event, Promoted, Recalled, Used

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


def decide_uses(found: Sequence[UseEvidence], *, session: str, uses: Mapping[int, int],
                states: Mapping[int, str], promote_at: int = PROMOTE_AT) -> list[Event]:
    """``Used`` for each piece of evidence; ``Promoted`` for an active memory whose uses
    (explicit recalls included) reach ``promote_at``. Being shown never counts."""
    events: list[Event] = []
    for use in found:
        events.append(Used(memory=use.memory, evidence=use.evidence,
                           score=use.score, session=session))
        if states.get(use.memory) == "active" and uses.get(use.memory, 0) + 1 == promote_at:
            events.append(Promoted(memory=use.memory, reason=f"used {promote_at} times"))
    return events
