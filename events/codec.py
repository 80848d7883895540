"""The one msgpack codec for log records; unknown event tags decode to :class:`Unknown`.

A frame's payload is a batch: a msgpack array of records, written and cut as one unit. A payload
that is a single record (a msgpack map) is the version-1 format, one record per frame; it still
decodes, as a batch of one, so logs written before batches stay readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from memlane.events.model import Event, Record, Unknown


class _RawRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    seq: int
    at: datetime
    event: msgspec.Raw
    origin: str = ""
    origin_seq: int = 0
    hlc: int = 0
    sig: bytes = b""


class _Tag(msgspec.Struct):
    type: str


class _Seq(msgspec.Struct, frozen=True, gc=False):
    seq: int


_encoder = msgspec.msgpack.Encoder()
_frame_decoder = msgspec.msgpack.Decoder(list[_RawRecord] | _RawRecord)
_event_decoder = msgspec.msgpack.Decoder(Event)
_tag_decoder = msgspec.msgpack.Decoder(_Tag)
_raw_list_decoder = msgspec.msgpack.Decoder(list[msgspec.Raw])
_record_decoder = msgspec.msgpack.Decoder(_RawRecord)
_seq_decoder = msgspec.msgpack.Decoder(_Seq)
_frame_seqs_decoder = msgspec.msgpack.Decoder(list[_Seq] | _Seq)
_KNOWN_TAGS = frozenset(t.__struct_config__.tag for t in Event.__args__)


def encode_batch(records: Sequence[Record]) -> bytes:
    """Serialise records to one frame payload (a msgpack array)."""
    return _encoder.encode(list(records))


def decode_frame(payload: bytes) -> list[Record]:
    """Decode a frame payload (a batch, or a version-1 single record) to its records.

    Raises ``msgspec.DecodeError`` (or ``ValidationError``) for bytes that are neither.
    """
    raw = _frame_decoder.decode(payload)
    if isinstance(raw, _RawRecord):
        return [_decode_event(raw)]
    return [_decode_event(r) for r in raw]


def frame_seqs(payload: bytes) -> list[int]:
    """The seqs of a frame payload's records, nothing else decoded (a fraction of
    :func:`decode_frame`'s cost: what skipping or checking a frame needs).

    Raises ``msgspec.DecodeError`` (or ``ValidationError``) for bytes that are not records.
    """
    raw = _frame_seqs_decoder.decode(payload)
    return [raw.seq] if isinstance(raw, _Seq) else [r.seq for r in raw]


def raw_records(payload: bytes) -> list[bytes]:
    """A frame payload's records as their encoded bytes, untouched (to copy them whole)."""
    if payload[:1] and (0x80 <= payload[0] <= 0x8F or payload[0] in (0xDE, 0xDF)):
        return [payload]  # version 1: a single record (a msgpack map)
    return [bytes(r) for r in _raw_list_decoder.decode(payload)]


def decode_record(raw: bytes) -> Record:
    """One record from its encoded bytes."""
    return _decode_event(_record_decoder.decode(raw))


def record_seq(raw: bytes) -> int:
    """The seq of one encoded record, nothing else decoded."""
    return _seq_decoder.decode(raw).seq


def batch_length(head: bytes) -> int:
    """How many records a frame payload holds, from its first bytes (at least 5): the length
    of its msgpack array, or 1 for a version-1 single record (a map)."""
    if 0x90 <= head[0] <= 0x9F:
        return head[0] & 0x0F
    if head[0] == 0xDC:
        return int.from_bytes(head[1:3], "big")
    if head[0] == 0xDD:
        return int.from_bytes(head[1:5], "big")
    return 1


def encode_record(record: Record) -> bytes:
    return _encoder.encode(record)


def join_batch(raws: Sequence[bytes]) -> bytes:
    """A frame payload holding the encoded records ``raws`` (a msgpack array of them)."""
    count = len(raws)
    if count < 16:
        head = bytes([0x90 | count])
    elif count < 1 << 16:
        head = b"\xdc" + count.to_bytes(2, "big")
    else:
        head = b"\xdd" + count.to_bytes(4, "big")
    return head + b"".join(raws)


def _decode_event(raw: _RawRecord) -> Record:
    """The record with its event decoded; an unknown tag becomes :class:`Unknown`."""
    event: Event | Unknown
    try:
        event = _event_decoder.decode(raw.event)
    except msgspec.ValidationError:  # an unknown tag, or a known event gone wrong
        tag = _tag_decoder.decode(raw.event).type
        if tag in _KNOWN_TAGS:
            raise
        event = Unknown(tag=tag, raw=bytes(raw.event))
    return Record(seq=raw.seq, at=raw.at, event=event, origin=raw.origin,
                  origin_seq=raw.origin_seq, hlc=raw.hlc, sig=raw.sig)
