"""Compaction, the pure part: which records of a sealed segment a compacted log keeps.

A compacted log replays to the same projections as the log it replaces. Records are kept whole
(seq, time, event, and whatever the envelope carries), never edited; only these go:

- ``Recalled`` and ``Shown``: folded, per segment, into ``Tallied`` records that add their
  counts and set what the last of them set (the last recall time, the refresh that ageing
  counts from) when no kept record sets it later. A ``Tallied`` takes the seq and time of the
  last dropped record it stands for, so seqs stay unique and rising. What ``Shown`` put in
  ``shown_in`` (which session saw which memory; usage detection reads it for the session in
  progress only) is not kept.
- ``Embedded`` records no replay can see: one a later ``Embedded`` of the same memory and
  pipeline replaces, or one a later switch of the active pipeline wipes, unless it is the
  memory's last (it names the pipeline that embedded the memory) or the first vector of a log
  with no model switch before it (it picks the index's pipeline).
- The vectors kept: each run of them (no other kept record between, one pipeline) becomes
  ``Embeddings`` records holding int8 codes, which the vector projection holds anyway
  (:mod:`vector_codes`), at the seq and time of the run's last record: a quarter of the
  bytes, and none of each record's envelope and names. An ``Embeddings`` of an earlier
  compaction is kept as it is while all of its vectors are.

Each segment is planned alone against a :class:`Survey` of the whole log, so the log stays
equivalent after each segment is switched; the projections must already hold everything a
compacted segment accounts for (the caller's horizon), as a ``Tallied`` re-applied on top of
the records it replaces would count them twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import msgspec

from memlane.events import vector_codes
from memlane.events.model import (
    Embedded,
    Embeddings,
    Linked,
    ModelChanged,
    Recalled,
    Record,
    Reinforced,
    Reprieved,
    Shown,
    Tallied,
    Used,
)

TALLY_CHUNK = 4096  # memories per Tallied record
RUN_BYTES = 256 * 1024  # bytes of codes per Embeddings record


@dataclass
class Survey:
    """What compaction needs to know about the whole log, gathered in one pass."""

    last_embedding: dict[int, int] = field(default_factory=dict)  # memory -> seq
    last_in_pipeline: dict[tuple[int, str], int] = field(default_factory=dict)
    last_reset: int = 0  # seq of the last switch of the active pipeline
    first_vector: int = 0  # seq of the vector that picks the pipeline when no switch came first
    pipeline: str | None = None

    def observe(self, record: Record) -> None:
        event = record.event
        if isinstance(event, Embedded):
            self._embedded(record.seq, event.memory, event.pipeline, bool(event.vector))
        elif isinstance(event, Embeddings):
            for memory in event.memories:
                self._embedded(record.seq, memory, event.pipeline, True)
        elif isinstance(event, ModelChanged) and event.pipeline != self.pipeline:
            self.pipeline, self.last_reset = event.pipeline, record.seq

    def _embedded(self, seq: int, memory: int, pipeline: str, vector: bool) -> None:
        self.last_embedding[memory] = seq
        self.last_in_pipeline[(memory, pipeline)] = seq
        if vector and self.pipeline is None:
            self.pipeline, self.first_vector = pipeline, seq

    def keeps_embedding(self, seq: int, memory: int, pipeline: str) -> bool:
        if seq in (self.last_embedding.get(memory), self.first_vector):
            return True
        return seq == self.last_in_pipeline.get((memory, pipeline)) and seq > self.last_reset


def survey(records: Iterable[Record]) -> Survey:
    found = Survey()
    for record in records:
        found.observe(record)
    return found


@dataclass(frozen=True)
class Plan:
    """One segment compacted: the indexes of the records kept, and the records to add (the
    tallies and the runs of vectors)."""

    keep: list[int]
    added: list[Record]

    def changes(self, count: int) -> bool:
        return len(self.keep) != count or bool(self.added)


class _Vector(NamedTuple):
    memory: int
    codes: bytes
    scale: float


@dataclass
class _Runs:
    """Kept vectors gathered into ``Embeddings`` runs (see the module's docstring)."""

    records: Sequence[Record]
    keep: list[int]
    added: list[Record] = field(default_factory=list)
    vectors: list[_Vector] = field(default_factory=list)
    sources: list[int] = field(default_factory=list)  # indexes of the records they came from
    last: Record | None = None
    kind: tuple[int, str, str] | None = None  # dims, model, pipeline

    def add(self, index: int, record: Record, kind: tuple[int, str, str],
            vectors: list[_Vector]) -> None:
        if self.kind != kind or (len(self.vectors) + len(vectors)) * kind[0] > RUN_BYTES:
            self.flush()
        self.kind, self.last = kind, record
        self.vectors += vectors
        self.sources.append(index)

    def flush(self) -> None:
        last, kind = self.last, self.kind
        if last is not None and kind is not None and self.vectors:
            whole = self._whole_earlier_run()
            if whole is not None:
                self.keep.append(whole)
            else:
                dims, model, pipeline = kind
                self.added.append(msgspec.structs.replace(last, event=Embeddings(
                    memories=tuple(v.memory for v in self.vectors),
                    codes=b"".join(v.codes for v in self.vectors),
                    scales=tuple(v.scale for v in self.vectors),
                    dims=dims, model=model, pipeline=pipeline)))
        self.vectors, self.sources, self.last, self.kind = [], [], None, None

    def _whole_earlier_run(self) -> int | None:
        """The index of the one ``Embeddings`` this run is, unchanged, if it is one."""
        if len(self.sources) != 1:
            return None
        event = self.records[self.sources[0]].event
        if isinstance(event, Embeddings) and len(event.memories) == len(self.vectors):
            return self.sources[0]
        return None


class _Usage(msgspec.Struct, gc=False):
    """One memory's dropped recalls and showings in a segment (not tracked by the cycle
    collector: it holds scalars only, and a segment allocates one per memory it mentions)."""

    recalls: int = 0
    shown: int = 0
    last_dropped: int = 0
    last_recalled: datetime | None = None
    refreshed: int = 0


def plan_segment(records: Sequence[Record], found: Survey) -> Plan:
    """What to keep of one segment's records (in log order), and the ``Tallied`` to add."""
    keep: list[int] = []
    runs = _Runs(records, keep)
    usage: dict[int, _Usage] = {}
    times: dict[int, datetime] = {}
    for index, record in enumerate(records):
        event = record.event
        if isinstance(event, Recalled | Shown):
            times[record.seq] = record.at
            _count(usage, record)
            continue
        if isinstance(event, Embeddings):
            kept = [_Vector(memory, event.codes_of(i), event.scales[i])
                    for i, memory in enumerate(event.memories)
                    if found.keeps_embedding(record.seq, memory, event.pipeline)]
            if kept:
                runs.add(index, record, (event.dims, event.model, event.pipeline), kept)
            continue
        if isinstance(event, Embedded):
            if not found.keeps_embedding(record.seq, event.memory, event.pipeline):
                continue
            if event.vector and _local(record):
                codes, scale = vector_codes.coded(event.vector, event.dims)
                runs.add(index, record, (event.dims, event.model, event.pipeline),
                         [_Vector(event.memory, codes, scale)])
                continue
        runs.flush()
        keep.append(index)
        _note_kept(usage, event)
    runs.flush()
    return Plan(sorted(keep), runs.added + _tallies(usage, times))


def _local(record: Record) -> bool:
    """A record this device wrote (no envelope to keep)."""
    return not record.origin and not record.sig


def _count(usage: dict[int, _Usage], record: Record) -> None:
    event = record.event
    if isinstance(event, Recalled):
        one = usage.setdefault(event.memory, _Usage())
        one.recalls += 1
        one.last_dropped = one.refreshed = record.seq
        one.last_recalled = record.at
        return
    assert isinstance(event, Shown)
    for memory in event.memories:
        one = usage.setdefault(memory, _Usage())
        one.shown += 1
        one.last_dropped = record.seq


def _note_kept(usage: dict[int, _Usage], event: object) -> None:
    """A kept record that sets what a dropped one did: the dropped one no longer has the last
    word on it."""
    refreshes: tuple[int, ...] = ()
    recalls: tuple[int, ...] = ()
    match event:
        case Linked():
            refreshes = (event.a, event.b)
        case Reinforced() | Reprieved():
            refreshes = (event.memory,)
        case Used():
            refreshes = recalls = (event.memory,)
        case Tallied():
            refreshes = tuple(m for m, r in zip(event.memories, event.refreshed) if r)
            recalls = tuple(m for m, t in zip(event.memories, event.last_recalled) if t)
    for memory in refreshes:
        if memory in usage:
            usage[memory].refreshed = 0
    for memory in recalls:
        if memory in usage:
            usage[memory].last_recalled = None


def _tallies(usage: dict[int, _Usage], times: dict[int, datetime]) -> list[Record]:
    """The ``Tallied`` records, each at the seq of the last dropped record of its memories
    (so after everything its memories' dropped records followed), chunked by that seq."""
    # by memory, then stably by seq: (seq, memory) order without a key tuple per memory
    order = sorted(usage)
    order.sort(key=lambda m: usage[m].last_dropped)
    tallies: list[Record] = []
    start = 0
    while start < len(order):
        end = min(start + TALLY_CHUNK, len(order))
        last = usage[order[end - 1]].last_dropped
        while end < len(order) and usage[order[end]].last_dropped == last:
            end += 1  # memories sharing a seq go in one tally: each tally has a seq of its own
        chunk = order[start:end]
        tallies.append(Record(seq=last, at=times[last], event=Tallied(
            memories=tuple(chunk),
            recalls=tuple(usage[m].recalls for m in chunk),
            shown=tuple(usage[m].shown for m in chunk),
            last_recalled=tuple(usage[m].last_recalled for m in chunk),
            refreshed=tuple(usage[m].refreshed for m in chunk))))
        start = end
    return tallies
