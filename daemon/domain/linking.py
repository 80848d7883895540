"""Which links a newly embedded memory gets (pure).

A memory links to its nearest live neighbours at or above the model's link threshold, within
its own project only (memories without a project live in ``global`` and link there), at most
:data:`MAX_LINKS` of them, strongest first; pairs already linked are not linked again.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass

from memlane.events.model import Linked

MAX_LINKS = 12


@dataclass(frozen=True)
class Neighbour:
    """A live memory near the new one, with its project and cosine similarity."""

    id: int
    project: str
    similarity: float


def decide_links(memory: int, project: str, neighbours: Sequence[Neighbour], *,
                 threshold: float, linked: Set[int]) -> list[Linked]:
    """``Linked`` events for ``memory``; ``linked`` holds the ids it is already linked to."""
    chosen = sorted((n for n in neighbours
                     if n.id != memory and n.project == project and n.id not in linked
                     and n.similarity >= threshold),
                    key=lambda n: (-n.similarity, n.id))[:MAX_LINKS]
    return [Linked(a=min(memory, n.id), b=max(memory, n.id), similarity=round(n.similarity, 6))
            for n in chosen]
