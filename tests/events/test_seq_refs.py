"""The fields that hold another record's seq are declared once, for every event."""

from __future__ import annotations

import types
import typing

import msgspec

from memlane.events import model as m


def _intish(kind: object) -> bool:
    """Whether a field of this type can hold an int (bool is a flag, not a number)."""
    if kind is int:
        return True
    if typing.get_origin(kind) in (typing.Union, types.UnionType, tuple, list):
        return any(_intish(a) for a in typing.get_args(kind) if a is not Ellipsis)
    return False


def test_every_int_field_of_every_event_is_declared_once() -> None:
    """An int or tuple-of-int field must be declared a seq reference or a plain number."""
    for event_type in m.EVENT_TYPES:
        intish = {f.name for f in msgspec.structs.fields(event_type) if _intish(f.type)}
        refs = set(m.SEQ_REFS.get(event_type, ()))
        free = set(m.SEQ_FREE.get(event_type, ()))
        assert not refs & free, event_type
        assert intish == refs | free, (event_type, intish - refs - free)


def test_the_declaration_names_real_fields() -> None:
    """No stale name hides in the declaration."""
    for table in (m.SEQ_REFS, m.SEQ_FREE):
        for event_type, names in table.items():
            assert set(names) <= {f.name for f in msgspec.structs.fields(event_type)}


def test_the_check_catches_an_undeclared_field() -> None:
    """A new int field missing from both declarations is found."""

    class Counted(m._Event, frozen=True, tag="counted_for_test"):
        memory: int
        times: int

    intish = {f.name for f in msgspec.structs.fields(Counted) if _intish(f.type)}
    assert intish - set(m.SEQ_REFS.get(Counted, ())) == {"memory", "times"}
