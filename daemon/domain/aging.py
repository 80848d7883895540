"""Which memories fade (pure).

Age is activity, not time: the number of memories stored in the same project since the memory
was last shown to be alive (stored, linked, recalled or used, repeated or reprieved). Being
shown in a prompt or a briefing (``Shown``) is exposure, not life: it never refreshes. A memory past the
age limit that is isolated (no live link, not waiting in a cluster) gets a substance check: if
it has substance and fewer than :attr:`AgePolicy.max_reprieves` reprieves, it is reprieved
(which restarts its clock), otherwise it expires with the reason. Decisions and user notes
never expire. A link, a recall or a use resets the reprieve count (in the projection's fold).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from memlane.daemon.domain.kinds import is_protected
from memlane.events.model import Event, Expired, Reprieved

_TOKEN = re.compile(r"\S+")
# Signs that a note carries something worth keeping: code, paths, commands, numbers, rules.
_SUBSTANCE = re.compile(
    r"[`/\\]|\w\.\w|\w_\w|(?<!\w)--?\w|\d|[A-Z][a-z]+[A-Z]|(?i:\b(must|never|always|should|"
    r"because|instead|avoid|use|don't|do not|requires?|fix(ed)?|fails?|error|bug|workaround)\b)")
MIN_SUBSTANCE_WORDS = 6


@dataclass(frozen=True)
class AgePolicy:
    limit: int = 40  # memories stored in the project since the last sign of life
    max_reprieves: int = 3


@dataclass(frozen=True)
class MemoryFacts:
    """What ageing needs to know about one live memory."""

    id: int
    project: str
    kind: str
    text: str
    degree: int  # live links
    reprieves: int
    refreshed_seq: int
    clustered: bool = False  # waiting in an open cluster


@dataclass(frozen=True)
class AgingDecision:
    memory: int
    action: Literal["expire", "reprieve"]
    age: int
    reason: str


def age_of(facts: MemoryFacts, stored_ids: Sequence[int]) -> int:
    """Memories stored in the project after the memory's last sign of life (ids sorted)."""
    return len(stored_ids) - bisect_right(stored_ids, facts.refreshed_seq)


def due_for_check(facts: MemoryFacts, stored_ids: Sequence[int], policy: AgePolicy) -> bool:
    """Whether the memory is old and isolated enough to need a substance check."""
    return (not is_protected(facts.kind) and facts.degree == 0 and not facts.clustered
            and age_of(facts, stored_ids) >= policy.limit)


def looks_substantive(text: str) -> bool:
    """The offline substance check: enough words and some sign of concrete content."""
    return len(_TOKEN.findall(text)) >= MIN_SUBSTANCE_WORDS and _SUBSTANCE.search(text) is not None


def decide_aging(memories: Sequence[MemoryFacts], stored_ids: Mapping[str, Sequence[int]],
                 substance: Mapping[int, bool], policy: AgePolicy) -> list[AgingDecision]:
    """Reprieve or expire each memory due for a check; ``substance`` holds the checks' verdicts."""
    decisions = []
    for facts in memories:
        ids = stored_ids.get(facts.project, ())
        if not due_for_check(facts, ids, policy):
            continue
        age = age_of(facts, ids)
        if substance.get(facts.id, False) and facts.reprieves < policy.max_reprieves:
            decisions.append(AgingDecision(facts.id, "reprieve", age,
                                           f"isolated for {age} stores but has substance"))
        elif facts.reprieves >= policy.max_reprieves:
            decisions.append(AgingDecision(facts.id, "expire", age,
                                           f"isolated for {age} stores after "
                                           f"{facts.reprieves} reprieves"))
        else:
            decisions.append(AgingDecision(facts.id, "expire", age,
                                           f"isolated for {age} stores, no substance"))
    return decisions


def aging_events(decisions: Sequence[AgingDecision],
                 reprieves: Mapping[int, int]) -> list[Event]:
    """The events recording ``decisions``."""
    events: list[Event] = []
    for d in decisions:
        if d.action == "reprieve":
            events.append(Reprieved(memory=d.memory, count=reprieves.get(d.memory, 0) + 1,
                                    reason=d.reason))
        else:
            events.append(Expired(memory=d.memory, reason=f"aged: {d.reason}"))
    return events
