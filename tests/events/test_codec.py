"""The msgpack codec of log records: a frame's payload is a batch of records."""

from __future__ import annotations

import gc
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memlane.events.codec import decode_frame, encode_batch
from memlane.events.model import EVENT_TYPES, Event, Expired, Record, Stored, Unknown
from tests.strategies import BY_TYPE, EVENTS, times

AT = datetime(2026, 11, 24, 14, 2, tzinfo=UTC)


def stored(n: int) -> Stored:
    return Stored(id=n, text=f"memory {n}", project="p", kind="note", content_hash="0" * 32)


@given(event=EVENTS, seq=st.integers(1, 2**62), at=times)
def test_every_event_round_trips(event: Event, seq: int, at: datetime) -> None:
    """Encoding then decoding a batch of one record gives an equal record."""
    record = Record(seq=seq, at=at, event=event)
    assert decode_frame(encode_batch([record])) == [record]


@given(first=st.integers(1, 2**40), stamped=st.lists(st.tuples(EVENTS, times), max_size=20))
def test_batches_round_trip(first: int, stamped: list[tuple[Event, datetime]]) -> None:
    """A batch decodes to its records, in order."""
    batch = [Record(seq=first + i, at=at, event=e) for i, (e, at) in enumerate(stamped)]
    assert decode_frame(encode_batch(batch)) == batch


def test_a_version_1_single_record_payload_still_decodes() -> None:
    """A payload that is one record (a msgpack map, as version 1 wrote) decodes as a batch of
    one."""
    record = Record(seq=3, at=AT, event=stored(3))
    v1_payload = msgspec.msgpack.encode(record)
    assert v1_payload[0] & 0xF0 == 0x80  # a fixmap: a record, not a batch
    assert decode_frame(v1_payload) == [record]


def test_tags_are_explicit_and_unique() -> None:
    """Every event has its own explicit, lowercase, never-derived tag."""
    tags = [t.__struct_config__.tag for t in EVENT_TYPES]
    assert len(set(tags)) == len(tags)
    assert all(tag == tag.lower() and tag != t.__name__ for tag, t in zip(tags, EVENT_TYPES))


def test_unknown_tag_is_set_aside_not_fatal() -> None:
    """A record from a newer version with an unknown event tag decodes to Unknown with its bytes,
    and the rest of its batch decodes as usual."""
    payload = msgspec.msgpack.encode([
        {"seq": 7, "at": AT, "event": {"type": "teleported", "where": "mars"}},
        Record(seq=8, at=AT, event=Expired(memory=1, reason="stale")),
    ])
    unknown, known = decode_frame(payload)
    assert unknown.seq == 7
    assert isinstance(unknown.event, Unknown) and unknown.event.tag == "teleported"
    assert msgspec.msgpack.decode(unknown.event.raw)["where"] == "mars"
    assert known == Record(seq=8, at=AT, event=Expired(memory=1, reason="stale"))


def test_known_tag_with_bad_fields_is_an_error() -> None:
    """A known tag whose fields do not validate is damage, not an unknown event."""
    raw = msgspec.msgpack.decode(encode_batch([Record(seq=1, at=AT, event=stored(1))]))
    raw[0]["event"]["id"] = "not a number"
    with pytest.raises(msgspec.ValidationError):
        decode_frame(msgspec.msgpack.encode(raw))


@pytest.mark.parametrize("payload", [msgspec.msgpack.encode(7), b"\x92\x01"])
def test_a_payload_that_is_neither_batch_nor_record_is_an_error(payload: bytes) -> None:
    """Bytes that are neither a batch nor a record do not decode."""
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        decode_frame(payload)


def test_every_event_type_has_a_strategy() -> None:
    """The round-trip properties draw every event type (a new event must join them)."""
    assert set(BY_TYPE) == set(EVENT_TYPES)


@given(event=EVENTS, origin=st.text(alphabet="0123456789abcdef", min_size=1, max_size=16),
       origin_seq=st.integers(1, 2**62), hlc=st.integers(1, 2**63 - 1),
       sig=st.binary(min_size=64, max_size=64))
def test_a_remote_record_round_trips_with_its_envelope(event: Event, origin: str, origin_seq: int,
                                                       hlc: int, sig: bytes) -> None:
    """Origin, origin seq, clock stamp and signature survive the log's codec."""
    record = Record(seq=5, at=AT, event=event, origin=origin, origin_seq=origin_seq, hlc=hlc,
                    sig=sig)
    assert decode_frame(encode_batch([record])) == [record]


def test_a_local_record_encodes_as_before_the_envelope() -> None:
    """Envelope fields left at their defaults are not written: a local record's bytes are the
    ones a log written before sync holds, and those decode with a local envelope."""
    record = Record(seq=3, at=AT, event=stored(3))
    old = msgspec.msgpack.encode([{"seq": 3, "at": AT, "event": stored(3)}])
    assert encode_batch([record]) == old
    (decoded,) = decode_frame(old)
    assert (decoded.origin, decoded.origin_seq, decoded.hlc, decoded.sig) == ("", 0, 0, b"")


@given(event=EVENTS)
def test_decoded_records_are_not_tracked_by_the_garbage_collector(event: Event) -> None:
    """Replay, compaction and forget decode hundreds of thousands of records; records and
    events hold only scalars and tuples of them (no cycle is possible), so the cycle collector
    never walks them: a tracked record made a collection every ~700 decodes, and full ones
    paused every thread for tens of milliseconds."""
    (record,) = decode_frame(encode_batch([Record(seq=1, at=AT, event=event)]))
    assert not gc.is_tracked(record) and not gc.is_tracked(record.event)
