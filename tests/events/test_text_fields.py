"""The text-bearing fields are declared once, for every event, and forget honours them."""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from memlane.daemon.domain.forgetting import blank, owner, purge
from memlane.events import model as m
from tests.strategies import BY_TYPE


def _textish(kind: object) -> bool:
    """Whether a field of this type can hold a string or bytes."""
    if kind in (str, bytes):
        return True
    origin = typing.get_origin(kind)
    if origin is typing.Literal:
        return any(isinstance(a, str) for a in typing.get_args(kind))
    if origin in (typing.Union, types.UnionType, tuple, list):
        return any(_textish(a) for a in typing.get_args(kind) if a is not Ellipsis)
    return False


def test_every_text_field_of_every_event_is_declared_once() -> None:
    """A str, bytes or tuple-of-str field must be declared text-bearing or text-free."""
    for event_type in m.EVENT_TYPES:
        textish = {f.name for f in msgspec.structs.fields(event_type) if _textish(f.type)}
        bearing = set(m.TEXT_FIELDS.get(event_type, ()))
        free = set(m.TEXT_FREE.get(event_type, ()))
        assert not bearing & free, event_type
        assert textish == bearing | free, (event_type, textish - bearing - free)


def test_the_declaration_names_real_fields() -> None:
    """No stale name hides in the declaration."""
    for table in (m.TEXT_FIELDS, m.TEXT_FREE):
        for event_type, names in table.items():
            assert set(names) <= {f.name for f in msgspec.structs.fields(event_type)}


AT = datetime(2026, 1, 1, tzinfo=UTC)
BEARING = st.one_of(*(BY_TYPE[t] for t in m.TEXT_FIELDS if t is not m.Embeddings))  # one owner


@given(BEARING)
def test_purge_blanks_every_declared_field_and_nothing_else(event: m.Event) -> None:
    """The record of a forgotten memory keeps its seq and loses every declared text."""
    memory = owner(event)
    assert memory is not None
    record = m.Record(seq=7, at=AT, event=event)
    purged = purge([memory])(record)
    assert purged.seq == 7 and purged.at == record.at
    for name in msgspec.structs.fields(type(event)):
        before, after = getattr(event, name.name), getattr(purged.event, name.name)
        if name.name in m.TEXT_FIELDS[type(event)]:
            assert not after
        else:
            assert after == before
    assert blank(purged.event) == purged.event  # idempotent


@given(BY_TYPE[m.Embeddings], st.data())
def test_purge_blanks_the_forgotten_memories_vectors_in_a_run_and_nothing_else(
        event: m.Embeddings, data: st.DataObject) -> None:
    """A run of vectors names many memories: a forgotten one's codes become zeros and its
    scale 0 (no vector); every other memory's vector and every other field stay."""
    gone = frozenset(data.draw(st.lists(st.sampled_from(event.memories), max_size=2))
                     if event.memories else [])
    purged = purge(gone)(m.Record(seq=7, at=AT, event=event)).event
    assert isinstance(purged, m.Embeddings) and purged.memories == event.memories
    for i, memory in enumerate(event.memories):
        if memory in gone:
            assert not purged.codes_of(i).strip(b"\0") and purged.scales[i] == 0
        else:
            assert purged.codes_of(i) == event.codes_of(i) and purged.scales[i] == event.scales[i]
    assert (purged.dims, purged.model, purged.pipeline) == (event.dims, event.model, event.pipeline)


@given(BY_TYPE[m.Recalled], st.text(min_size=8, max_size=40))
def test_a_query_that_recalled_a_forgotten_memory_leaves_every_recall(
        other: m.Recalled, query: str) -> None:
    """The same query recalled other memories too: those records lose it as well."""
    recall = msgspec.structs.replace(other, query=query)
    purged = purge([recall.memory + 1], [query])(m.Record(seq=3, at=AT, event=recall))
    assert isinstance(purged.event, m.Recalled) and purged.event.query == ""  # its only text


