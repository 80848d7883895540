"""The one msgpack codec for log records; unknown event tags decode to :class:`Unknown`."""

from __future__ import annotations

from datetime import datetime

import msgspec

from memlane.events.model import Event, Record, Unknown


class _RawRecord(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    at: datetime
    event: msgspec.Raw


class _Tag(msgspec.Struct):
    type: str


_encoder = msgspec.msgpack.Encoder()
_raw_decoder = msgspec.msgpack.Decoder(_RawRecord)
_event_decoder = msgspec.msgpack.Decoder(Event)
_tag_decoder = msgspec.msgpack.Decoder(_Tag)
_KNOWN_TAGS = frozenset(t.__struct_config__.tag for t in Event.__args__)  # type: ignore[attr-defined]


def encode_record(record: Record) -> bytes:
    """Serialise a record to msgpack bytes."""
    return _encoder.encode(record)


def decode_record(payload: bytes) -> Record:
    """Decode a record; an event with an unknown tag becomes :class:`Unknown`.

    Raises ``msgspec.DecodeError`` (or ``ValidationError``) for bytes that are not a record.
    """
    raw = _raw_decoder.decode(payload)
    tag = _tag_decoder.decode(raw.event).type
    if tag not in _KNOWN_TAGS:
        return Record(seq=raw.seq, at=raw.at, event=Unknown(tag=tag, raw=bytes(raw.event)))
    return Record(seq=raw.seq, at=raw.at, event=_event_decoder.decode(raw.event))
