"""Reading segments: whole records in order, with the checks that tell damage from a torn tail.

Pure functions of bytes; no file is changed here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from memlane.events.codec import decode_record
from memlane.events.errors import LogCorrupted
from memlane.events.framing import Frame, FrameError, iter_frames, next_valid_frame
from memlane.events.model import Record
from memlane.events.segments import SEGMENT_HEADER, parse_header


@dataclass(frozen=True)
class SegmentScan:
    """What one segment holds: its records' range and where its whole records end."""

    first_seq: int
    last_seq: int
    end: int
    tail: FrameError | None


def iter_segment(path: Path, data: bytes, expect_seq: int | None) -> Iterator[Record | FrameError]:
    """Decode the records of one segment, checking checksums and seq contiguity.

    Yields a trailing :class:`FrameError` when the whole records end before the bytes do; raises
    :class:`LogCorrupted` for damage that cannot be a torn tail.
    """
    first = parse_header(path, data)
    if isinstance(first, str):
        raise LogCorrupted(path, 0, first)
    if expect_seq is not None and first != expect_seq:
        raise LogCorrupted(path, 0, f"segment starts at seq {first}, expected {expect_seq}")
    expected = first
    for item in iter_frames(data, SEGMENT_HEADER.size):
        if isinstance(item, FrameError):
            yield _classify(path, data, item)
            return
        record = _decode(path, item)
        if record.seq != expected:
            raise LogCorrupted(path, item.offset, f"seq {record.seq} where {expected} was due")
        expected += 1
        yield record


def scan_segment(path: Path, data: bytes, expect_seq: int | None) -> SegmentScan:
    """Check a whole segment; the result says where its whole records end."""
    first = parse_header(path, data)
    if isinstance(first, str):
        raise LogCorrupted(path, 0, first)
    last, tail = first - 1, None
    for item in iter_segment(path, data, expect_seq):
        if isinstance(item, FrameError):
            tail = item
        else:
            last = item.seq
    end = tail.offset if tail is not None else len(data)
    return SegmentScan(first_seq=first, last_seq=last, end=end, tail=tail)


def _classify(path: Path, data: bytes, error: FrameError) -> FrameError:
    """A failure followed by any whole frame is corruption; otherwise it is a torn tail."""
    later = next_valid_frame(data, error.offset + 1)
    if later is not None:
        raise LogCorrupted(
            path, error.offset, f"{error.reason}, and a valid record follows at byte {later}"
        )
    return error


def _decode(path: Path, item: Frame) -> Record:
    try:
        return decode_record(item.payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise LogCorrupted(path, item.offset, f"checksummed record does not decode: {exc}") from exc
