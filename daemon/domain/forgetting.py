"""Forgetting memories (pure parts): which events are about them, how their records are
blanked, what the proof scan looks for, and how their routed lines leave a file.

The text-bearing fields come from one declaration (``events.model.TEXT_FIELDS``). A blanked
record keeps its seq and time, so the log stays contiguous and verifiable; the ``Forgotten``
events keep only ids, the content hash and the proof's counts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from memlane.daemon.domain.routing import render_entry
from memlane.daemon.domain.storing import normalise
from memlane.events.mentions import referenced
from memlane.events.model import (
    TEXT_FIELDS,
    Clustered,
    Consolidated,
    Embedded,
    Embeddings,
    Event,
    ForgetRequested,
    Forgotten,
    Recalled,
    Record,
    Routed,
    Stored,
    Unknown,
)
from memlane.events.vector_codes import coded, held_rows

MIN_NEEDLE = 8  # bytes: a shorter text would match by chance, so it is not scanned for
VECTOR_NEEDLE = 64  # bytes of a vector the proof scan looks for (16 float32s)
_MARKER = re.compile(r"<!-- memlane:(\d+) -->")


def owner(event: Event | Unknown) -> int | None:
    """The memory whose text an event's text-bearing fields carry."""
    if isinstance(event, Stored | Consolidated):
        return event.id
    if isinstance(event, Embedded | Recalled | Routed):
        return event.memory
    return None


def blank(event: Event) -> Event:
    """``event`` with every declared text-bearing field emptied."""
    names = TEXT_FIELDS.get(type(event), ())
    changes = {name: _empty(getattr(event, name)) for name in names}
    if not any(getattr(event, n) != v for n, v in changes.items()):
        return event
    return msgspec.structs.replace(event, **changes)


def _empty(value: object) -> object:
    if value is None:
        return None
    return type(value)()


def purge(memories: Iterable[int], queries: Iterable[str] = ()) -> Callable[[Record], Record]:
    """A log transform that blanks the text of every event about ``memories``, and every
    recall made with one of ``queries`` (the same query also recalled other memories)."""
    ids, asked = frozenset(memories), frozenset(q for q in queries if q)

    def transform(record: Record) -> Record:
        event = record.event
        if isinstance(event, Unknown):
            return record
        if isinstance(event, Embeddings) and ids.intersection(event.memories):
            return msgspec.structs.replace(record, event=event.without(ids))
        if owner(event) in ids or (isinstance(event, Recalled) and event.query in asked):
            blanked = blank(event)
            if blanked is not event:
                return msgspec.structs.replace(record, event=blanked)
        return record

    return transform


@dataclass
class Traces:
    """The texts a forget removes, gathered from the log while it still holds them."""

    texts: dict[int, str] = field(default_factory=dict)
    queries: set[str] = field(default_factory=set)
    hashes: dict[int, str] = field(default_factory=dict)
    vectors: list[bytes] = field(default_factory=list)


def gather_traces(records: Iterable[Record], memories: Iterable[int]) -> Traces:
    """The texts of ``memories`` and the queries that recalled them."""
    ids = frozenset(memories)
    traces = Traces()
    for record in records:
        event = record.event
        if isinstance(event, Stored | Consolidated) and event.id in ids:
            traces.hashes[event.id] = event.content_hash
            if event.text:
                traces.texts[event.id] = event.text
        elif isinstance(event, Recalled) and event.memory in ids and event.query:
            traces.queries.add(event.query)
        elif isinstance(event, Embedded) and event.memory in ids and event.vector:
            traces.vectors += _vector_needles(event.vector, event.dims)
        elif isinstance(event, Embeddings):
            traces.vectors += [needle for i, memory in enumerate(event.memories)
                               if memory in ids and event.scales[i]  # 0: blanked by a forget
                               for needle in _codes_needles(event.codes_of(i), event.dims)]
    return traces


def _vector_needles(vector: bytes, dims: int) -> list[bytes]:
    """A float vector as the log holds it, as compaction would hold it (codes: a staged
    compaction may hold them while the forget runs) and as the vector projection holds it;
    none of a vector with no direction (zeros match everywhere)."""
    codes, scale = coded(vector, dims)
    if not scale:
        return []
    return [vector[:VECTOR_NEEDLE], *_codes_needles(codes, dims)]


def _codes_needles(codes: bytes, dims: int) -> list[bytes]:
    """Codes as the log holds them, and as the vector projection holds them."""
    return [codes[:VECTOR_NEEDLE], held_rows([codes], [True], dims).tobytes()[:VECTOR_NEEDLE]]


def needles(texts: Iterable[str]) -> list[bytes]:
    """The byte forms a text can take on disk: UTF-8 as written, normalised, NFC/NFKC,
    each line alone (routed bullets), JSON-escaped, UTF-16; forms shorter than
    :data:`MIN_NEEDLE` are left out."""
    found: set[bytes] = set()
    for text in texts:
        forms = {text, normalise(text), unicodedata.normalize("NFC", text),
                 " ".join(text.split())}
        forms.update(line.strip() for line in text.splitlines())
        for form in forms:
            found.update({form.encode(), msgspec.json.encode(form)[1:-1],
                          form.encode("utf-16-le"), form.encode("utf-16-be")})
    return sorted(n for n in found if len(n) >= MIN_NEEDLE)


def count_matches(data: bytes, patterns: Sequence[bytes]) -> int:
    """How many of ``patterns`` occur in ``data``."""
    return sum(1 for p in patterns if p in data)


def remove_routed(file_text: str, memory: int, text: str | None) -> str:
    """``file_text`` without the lines memlane wrote for ``memory``: its rendered entry when
    the text is known, else the marked line and the unmarked bullets that follow it."""
    if text:
        entry = render_entry(memory, text)
        if entry in file_text:
            return file_text.replace(entry, "", 1)
    lines = file_text.splitlines(keepends=True)
    kept: list[str] = []
    skipping = False
    for line in lines:
        marks = {int(m) for m in _MARKER.findall(line)}
        if memory in marks:
            skipping = True
            continue
        if skipping and line.startswith("- ") and not marks:
            continue
        skipping = False
        kept.append(line)
    return "".join(kept)


def drop_about(forgotten: Callable[[int], bool], events: Sequence[Event]) -> list[Event]:
    """``events`` without those about a forgotten memory (a racing embed or link must not
    bring it back); the forget's own events pass. New ids are the seqs of the events creating
    them, so a command that creates any is dropped whole rather than shifted."""
    kept = [e for e in events if isinstance(e, ForgetRequested | Forgotten)
            or not any(forgotten(m) for m in referenced(e))]
    if len(kept) == len(events):
        return list(events)
    if any(isinstance(e, Stored | Consolidated | Clustered) for e in events):
        return []
    return kept


def descendants(children: Callable[[Sequence[int]], Sequence[int]],
                roots: Sequence[int]) -> list[int]:
    """``roots`` and every memory consolidated from them, transitively."""
    seen = list(dict.fromkeys(roots))
    frontier: Sequence[int] = seen
    while frontier:
        frontier = [c for c in children(frontier) if c not in seen]
        seen.extend(dict.fromkeys(frontier))
    return seen


def forget_answer(memories: Sequence[int], *, diffs: list[dict[str, Any]], segments: int,
                  scan: dict[str, int]) -> dict[str, Any]:
    return {"id": memories[0], "forgotten": True, "memories": list(memories),
            "segments_rewritten": segments, "routed": diffs, "verify": scan}
