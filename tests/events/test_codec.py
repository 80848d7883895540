"""The msgpack codec of log records."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memlane.events.codec import decode_record, encode_record
from memlane.events.model import EVENT_TYPES, Record, Stored, Unknown
from tests.strategies import EVENTS, times

AT = datetime(2026, 11, 24, 14, 2, tzinfo=UTC)


@given(event=EVENTS, seq=st.integers(1, 2**62), at=times)
def test_every_event_round_trips(event: object, seq: int, at: object) -> None:
    """Encoding then decoding a record gives an equal record."""
    record = Record(seq=seq, at=at, event=event)  # type: ignore[arg-type]
    assert decode_record(encode_record(record)) == record


def test_tags_are_explicit_and_unique() -> None:
    """Every event has its own explicit, lowercase, never-derived tag."""
    tags = [t.__struct_config__.tag for t in EVENT_TYPES]
    assert len(set(tags)) == len(tags)
    assert all(tag == tag.lower() and tag != t.__name__ for tag, t in zip(tags, EVENT_TYPES))


def test_unknown_tag_is_set_aside_not_fatal() -> None:
    """A record from a newer version with an unknown event tag decodes to Unknown with its bytes."""
    payload = msgspec.msgpack.encode(
        {"seq": 7, "at": AT, "event": {"type": "teleported", "where": "mars"}})
    record = decode_record(payload)
    assert record.seq == 7
    assert isinstance(record.event, Unknown) and record.event.tag == "teleported"
    assert msgspec.msgpack.decode(record.event.raw)["where"] == "mars"


def test_known_tag_with_bad_fields_is_an_error() -> None:
    """A known tag whose fields do not validate is damage, not an unknown event."""
    good = Record(seq=1, at=AT, event=Stored(
        id=1, text="x", project="p", kind="note", content_hash="0" * 32))
    raw = msgspec.msgpack.decode(encode_record(good))
    raw["event"]["id"] = "not a number"
    with pytest.raises(msgspec.ValidationError):
        decode_record(msgspec.msgpack.encode(raw))
