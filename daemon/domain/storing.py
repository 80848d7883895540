"""Pure decisions about incoming requests: what to append, and what to answer.

No I/O here. The writer calls these with a view of the current state and the seq the first new
event will get; they return the events to append and the answer to give once they are durable.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol

from memlane.daemon.domain.kinds import is_empty_save
from memlane.events.model import Event, Expired, Reinforced, Stored

_SPACE = re.compile(r"\s+")
_TRAILING = ".!?;:,…"


class AdmissionView(Protocol):
    """What store decisions need to know about existing memories."""

    def find_duplicate(self, project: str, content_hash: str) -> int | None: ...

    def find_key(self, key: str) -> int | None: ...


@dataclass(frozen=True)
class StoreRequest:
    """A memory to store, already validated."""

    text: str
    project: str
    kind: str
    source: str = "cli"
    tags: tuple[str, ...] = ()
    idempotency_key: str | None = None
    redactions: int = 0


@dataclass(frozen=True)
class StoreOutcome:
    """The answer to a store: the memory's id and whether it already existed."""

    id: int
    duplicate: bool
    kind: str = "note"
    redactions: int = 0


def normalise(text: str) -> str:
    """The form two texts share when they say the same thing (case, width, spacing and
    trailing punctuation aside)."""
    folded = _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()
    return folded.rstrip(_TRAILING).rstrip() or folded


def content_hash(text: str) -> str:
    return hashlib.sha256(normalise(text).encode()).hexdigest()[:32]


def decide_store(view: AdmissionView, request: StoreRequest, next_seq: int
                 ) -> tuple[list[Event], StoreOutcome]:
    """Store a new memory, or answer with the one that the key or the text already names.

    A retry with a known idempotency key appends nothing; the same text again in the project
    appends a ``Reinforced`` (a repeat is a signal); an empty generated save is stored and
    expired at once.
    """
    if request.idempotency_key is not None:
        known = view.find_key(request.idempotency_key)
        if known is not None:
            return [], StoreOutcome(id=known, duplicate=True, kind=request.kind)
    digest = content_hash(request.text)
    existing = view.find_duplicate(request.project, digest)
    if existing is not None:
        return ([Reinforced(memory=existing, source=request.source)],
                StoreOutcome(id=existing, duplicate=True, kind=request.kind))
    events: list[Event] = [Stored(
        id=next_seq, text=request.text, project=request.project, kind=request.kind,
        content_hash=digest, source=request.source, tags=request.tags,
        redactions=request.redactions, idempotency_key=request.idempotency_key)]
    if is_empty_save(request.kind, request.text):
        events.append(Expired(memory=next_seq, reason="empty save: nothing to keep"))
    return events, StoreOutcome(id=next_seq, duplicate=False, kind=request.kind,
                                redactions=request.redactions)
