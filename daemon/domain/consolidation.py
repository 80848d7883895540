"""Turning a cluster into one proven memory (pure): the events, and the offline merge.

The offline merge is extractive: it keeps the most central sentences and drops those that
repeat one already kept.

The proven memory gets a new id (its event's seq) with lineage to its sources, which expire
with reason ``consolidated``. A cluster holding a decision or a user note passes that kind and
every source's tags on, whatever the merge proposed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memlane.daemon.domain.storing import content_hash, normalise
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


def sentences_of(sources: Sequence[Source]) -> list[str]:
    """The distinct sentences (or lines) of the sources, in source order."""
    found: dict[str, str] = {}
    for source in sources:
        for sentence in _SENTENCE.split(source.text.strip()):
            cleaned = sentence.strip().lstrip("-*• ").strip()
            key = normalise(cleaned).rstrip(".!? ")
            if key and key not in found:
                found[key] = cleaned
    return list(found.values())


def extractive_merge(sources: Sequence[Source], sentences: Sequence[str],
                     similarity: np.ndarray, *, threshold: float) -> Merge:
    """The offline merge: the most central sentences, skipping any that says the same as one
    already chosen (``similarity``: the sentences' pairwise cosines)."""
    centrality = similarity.mean(axis=1)
    chosen: list[int] = []
    for i in sorted(range(len(sentences)), key=lambda i: (-centrality[i], i)):
        if all(similarity[i, j] < threshold for j in chosen):
            chosen.append(i)
    return Merge(text="\n".join(f"- {sentences[i]}" for i in chosen),
                 kind=merged_kind(sources, "insight"), tags=merged_tags(sources, ()),
                 model=OFFLINE_MODEL, prompt_version=OFFLINE_PROMPT)


def consolidated_reason(proven: int) -> str:
    """The expiry reason of a source consolidated into ``proven``."""
    return f"consolidated into {proven}"


def decide_consolidation(cluster: int | None, project: str, sources: Sequence[Source], merge: Merge,
                         next_seq: int) -> list[Event]:
    """``Consolidated`` (id ``next_seq``) then one ``Expired`` per source."""
    proven = Consolidated(
        id=next_seq, sources=tuple(s.id for s in sources), text=merge.text, project=project,
        kind=merged_kind(sources, merge.kind), content_hash=content_hash(merge.text),
        model=merge.model, prompt_version=merge.prompt_version, cluster=cluster,
        tags=merged_tags(sources, merge.tags))
    return [proven, *(Expired(memory=s.id, reason=consolidated_reason(next_seq))
                      for s in sources)]
