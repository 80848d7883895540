"""The user's review of what memlane did or proposes (pure): undo a consolidation, accept,
reject or undo a route, and the exact diff a route makes to its file.

Undoing a consolidation restores the sources it expired and retires the proven memory, with a
reason in its history. A route's review is one more ``Routed`` fact about the memory: accepted
(``written``), rejected or undone (``skipped``, so the router never proposes it again).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from memlane.daemon.domain.consolidation import consolidated_reason
from memlane.daemon.domain.errors import BadRequest
from memlane.daemon.domain.routing import insert_memory
from memlane.events.model import Event, Expired, Restored, Routed

UNDONE = "consolidation undone by the user"
SECTION_NAME = "Proven knowledge (memlane)"
Verdict = Literal["accepted", "rejected", "undone"]
_NEEDS: dict[Verdict, str] = {"accepted": "proposed", "rejected": "proposed",
                              "undone": "written"}


@dataclass(frozen=True)
class MemoryFacts:
    id: int
    state: str
    source: str
    expiry_reason: str | None = None


@dataclass(frozen=True)
class RouteFacts:
    memory: int
    target: str
    section: str
    action: str


def decide_undo_consolidation(proven: MemoryFacts, sources: Sequence[MemoryFacts]) -> list[Event]:
    """Restore the sources this consolidation expired, then retire the proven memory."""
    if proven.source != "consolidation":
        raise BadRequest(f"memory {proven.id} was not made by a consolidation",
                         code="not_consolidated")
    if proven.state != "proven":
        raise BadRequest(f"memory {proven.id} is {proven.state}; only a live consolidation "
                         "can be undone", code="not_live")
    reason = consolidated_reason(proven.id)
    restored: list[Event] = [Restored(memory=s.id) for s in sources
                             if s.state == "expired" and s.expiry_reason == reason]
    return [*restored, Expired(memory=proven.id, reason=UNDONE)]


def decide_route_review(route: RouteFacts, verdict: Verdict, *, note: str = "") -> Routed:
    """The ``Routed`` fact recording the user's verdict on a route; only a proposal can be
    accepted or rejected, only a written route undone."""
    if route.action != _NEEDS[verdict]:
        raise BadRequest(f"the route of memory {route.memory} is {route.action}; only a "
                         f"{_NEEDS[verdict]} route can be {verdict}", code="not_reviewable")
    action: Literal["written", "skipped"] = "written" if verdict == "accepted" else "skipped"
    verdict_text = f"{verdict} by the user" + (f" ({note})" if note else "")
    return Routed(memory=route.memory, target=route.target, section=route.section,
                  action=action, verdict=verdict_text)


def route_diff(current: str, memory_id: int, text: str, name: str) -> tuple[str, str]:
    """(the file's text once the memory is inserted, the unified diff from ``current``)."""
    updated = insert_memory(current, memory_id, text)
    diff = "".join(difflib.unified_diff(current.splitlines(True), updated.splitlines(True),
                                        f"a/{name}", f"b/{name}"))
    return updated, diff
