"""Turning a cluster into one proven memory (pure): the events, and the offline merge.

The proven memory gets a new id (its event's seq) with lineage to its sources, which expire
with reason ``consolidated``. A cluster holding a decision or a user note passes that kind and
every source's tags on, whatever the merge proposed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from memlane.daemon.decide import content_hash, normalise
from memlane.events.model import Consolidated, Event, Expired

KIND_RANK = ("decision", "user-note", "insight", "note")
OFFLINE_MODEL = "extractive"
OFFLINE_PROMPT = "offline-1"
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Source:
    id: int
    text: str
    kind: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Merge:
    text: str
    kind: str
    tags: tuple[str, ...]
    model: str
    prompt_version: str


def merged_kind(sources: Sequence[Source], proposed: str) -> str:
    """The most protective kind among the sources, else the proposed one (never weaker)."""
    kinds = {s.kind for s in sources} | {proposed}
    return next((k for k in KIND_RANK if k in kinds), "note")


def merged_tags(sources: Sequence[Source], proposed: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*(t for s in sources for t in s.tags), *proposed]))


def extractive_merge(sources: Sequence[Source]) -> Merge:
    """The offline merge: every distinct sentence of the sources, longest source first."""
    sentences: dict[str, str] = {}
    for source in sorted(sources, key=lambda s: (-len(s.text), s.id)):
        for sentence in _SENTENCE.split(source.text.strip()):
            key = normalise(sentence).rstrip(".!? ")
            if key and not any(key in seen for seen in sentences):
                sentences[key] = sentence.strip()
    return Merge(text="\n".join(f"- {s}" for s in sentences.values()),
                 kind=merged_kind(sources, "insight"), tags=merged_tags(sources, ()),
                 model=OFFLINE_MODEL, prompt_version=OFFLINE_PROMPT)


def decide_consolidation(cluster: int, project: str, sources: Sequence[Source], merge: Merge,
                         next_seq: int) -> list[Event]:
    """``Consolidated`` (id ``next_seq``) then one ``Expired`` per source."""
    proven = Consolidated(
        id=next_seq, sources=tuple(s.id for s in sources), text=merge.text, project=project,
        kind=merged_kind(sources, merge.kind), content_hash=content_hash(merge.text),
        model=merge.model, prompt_version=merge.prompt_version, cluster=cluster,
        tags=merged_tags(sources, merge.tags))
    return [proven, *(Expired(memory=s.id, reason=f"consolidated into {next_seq}")
                      for s in sources)]
