"""Reading segments: whole records in order, with the checks that tell damage from a torn tail.

Pure functions of bytes; no file is changed here. A frame holds one append's batch, so the
unsynced end of a segment is at most one frame (or, for a batch too big for one frame, the
several frames of that batch): damage after which no whole frame follows is a torn tail, and
damage followed by a whole frame is corruption. A frame-like run of bytes inside the extent the
failed frame's header claims is its own payload (a stored text may hold one), not a frame.
Damage to a record at or below the acknowledged floor is never a torn tail. A compacted segment
(version 3) is written whole and never appended to: any failed frame in it is damage, and its
seqs may skip only inside the range its header accounts for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import msgspec

from memlane.events.acked import AckFloor
from memlane.events.codec import decode_frame, frame_seqs
from memlane.events.errors import LogCorrupted, LogDamagedBelowAck
from memlane.events.framing import (
    Frame,
    FrameError,
    claimed_end,
    iter_frames,
    next_valid_frame,
    whole_if_ending_at,
)
from memlane.events.model import Record
from memlane.events.segments import SegmentHeader, parse_header

T = TypeVar("T")


@dataclass(frozen=True)
class SegmentScan:
    """What one segment holds: its format version, its records' range and where its whole
    frames end. ``last_seq`` is the last seq the segment accounts for (a compacted segment may
    have dropped the record that held it)."""

    version: int
    first_seq: int
    last_seq: int
    end: int
    tail: FrameError | None


def iter_segment(path: Path, data: bytes, expect_seq: int | None, *,
                 skip_below: int = 0) -> Iterator[Record | FrameError]:
    """Decode the records of one segment, checking checksums and seq contiguity.

    Frames whose records all lie below ``skip_below`` are checked by their seqs alone and not
    yielded (a frame reaching it is yielded whole). Yields a trailing :class:`FrameError` when
    the whole frames end before the bytes do; raises :class:`LogCorrupted` for damage that
    cannot be a torn tail.
    """
    for item in _iter_unclassified(path, data, expect_seq, skip_below):
        if isinstance(item, FrameError):
            yield _classify(path, data, item)
            return
        yield item


def _iter_unclassified(path: Path, data: bytes, expect_seq: int | None,
                       skip_below: int = 0) -> Iterator[Record | FrameError]:
    header = _read_header(path, data)
    expected = _first_expected(path, header, expect_seq)
    for item in iter_frames(data, header.size):
        if isinstance(item, FrameError):
            yield _unless_compacted(path, header, item)
            return
        if expected < skip_below:
            seqs = _seqs(path, item)
            if seqs and seqs[-1] < skip_below:
                for seq in seqs:
                    expected = _checked(path, header, item, seq, expected)
                continue
        for record in _decode(path, item):
            expected = _checked(path, header, item, record.seq, expected)
            yield record


def _iter_seqs(path: Path, data: bytes) -> Iterator[int | FrameError]:
    """The seqs of a segment's records, checked as :func:`iter_segment` checks them, with
    nothing else decoded; a trailing :class:`FrameError` as there (unclassified)."""
    header = _read_header(path, data)
    expected = header.first_seq
    for item in iter_frames(data, header.size):
        if isinstance(item, FrameError):
            yield _unless_compacted(path, header, item)
            return
        for seq in _seqs(path, item):
            expected = _checked(path, header, item, seq, expected)
            yield seq


def _first_expected(path: Path, header: SegmentHeader, expect_seq: int | None) -> int:
    if expect_seq is not None and header.first_seq != expect_seq:
        raise LogCorrupted(path, 0, f"segment starts at seq {header.first_seq}, expected "
                                    f"{expect_seq}")
    return header.first_seq


def _unless_compacted(path: Path, header: SegmentHeader, error: FrameError) -> FrameError:
    """A failed frame, unless the segment is compacted (written whole: then it is damage)."""
    if header.compacted:
        raise LogCorrupted(path, error.offset, f"compacted segment damaged: {error.reason}")
    return error


def _checked(path: Path, header: SegmentHeader, item: Frame, seq: int, expected: int) -> int:
    """The seq due after ``seq``; :class:`LogCorrupted` if ``seq`` may not come here."""
    if seq != expected and not _skips_within(header, seq, expected):
        raise LogCorrupted(path, item.offset, f"seq {seq} where {expected} was due")
    if header.last_seq is not None and seq > header.last_seq:
        raise LogCorrupted(path, item.offset, f"seq {seq} past the compacted "
                                              f"range's end {header.last_seq}")
    return seq + 1


def _skips_within(header: SegmentHeader, seq: int, expected: int) -> bool:
    """Whether a compacted segment may hold ``seq`` where ``expected`` was due."""
    return header.last_seq is not None and expected < seq <= header.last_seq


def scan_segment(path: Path, data: bytes, expect_seq: int | None,
                 floor: AckFloor | None = None, *, decode: bool = True) -> SegmentScan:
    """Check a whole segment; the result says where its whole frames end.

    Without ``decode`` only the records' seqs are decoded: the checksums and seqs are checked
    as with it, but a checksummed frame whose records would not decode goes unnoticed (what
    opening the log needs, at a fraction of the cost). Raises :class:`LogDamagedBelowAck` if
    it ends, or is damaged, at or below ``floor``.
    """
    header = _read_header(path, data)
    last, tail = header.first_seq - 1, None
    _first_expected(path, header, expect_seq)
    items = _iter_unclassified(path, data, None) if decode else _iter_seqs(path, data)
    for item in items:
        if isinstance(item, FrameError):
            tail = item
        else:
            last = item if isinstance(item, int) else item.seq
    end = tail.offset if tail is not None else len(data)
    if header.last_seq is not None:
        last = header.last_seq
    if floor is not None and last < floor.seq:
        what = "is damaged" if tail is not None else "ends"
        raise LogDamagedBelowAck(path, end, last + 1, floor.seq, floor.source, what)
    if tail is not None:
        _classify(path, data, tail)
    return SegmentScan(version=header.version, first_seq=header.first_seq, last_seq=last,
                       end=end, tail=tail)


def next_seq_after(path: Path, data: bytes, last_read: int | None) -> int:
    """The seq the segment after this one must start at, given the last record read from it."""
    header = _read_header(path, data)
    if header.last_seq is not None:
        return header.last_seq + 1
    return header.first_seq if last_read is None else last_read + 1


def _read_header(path: Path, data: bytes) -> SegmentHeader:
    """The segment's header; :class:`LogCorrupted` if it is wrong."""
    header = parse_header(path, data)
    if isinstance(header, str):
        raise LogCorrupted(path, 0, header)
    return header


def _classify(path: Path, data: bytes, error: FrameError) -> FrameError:
    """A failure is a torn tail unless a whole frame after it proves damage."""
    later = _proof_of_damage(data, error.offset)
    if later == len(data):
        raise LogCorrupted(path, error.offset, f"{error.reason}, but the frame is whole with "
                                               "another length: its length field is damaged")
    if later is not None:
        raise LogCorrupted(
            path, error.offset, f"{error.reason}, and a valid frame follows at byte {later}"
        )
    return error


def _proof_of_damage(data: bytes, offset: int) -> int | None:
    """The end of the failed frame at ``offset`` where a torn write cannot explain it: a whole
    frame at or past the end its header claims, or a place where it is whole with another
    length (only its length field damaged). A frame inside the claimed extent is payload."""
    extent = claimed_end(data, offset)
    later = next_valid_frame(data, offset + 1)
    while later is not None and later < extent and not whole_if_ending_at(data, offset, later):
        later = next_valid_frame(data, later + 1)
    if later is None and whole_if_ending_at(data, offset, len(data)):
        return len(data)
    return later


def _seqs(path: Path, item: Frame) -> list[int]:
    return _decoded(path, item, frame_seqs)


def _decode(path: Path, item: Frame) -> list[Record]:
    return _decoded(path, item, decode_frame)


def _decoded(path: Path, item: Frame, decode: Callable[[bytes], list[T]]) -> list[T]:
    try:
        return decode(item.payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise LogCorrupted(path, item.offset, f"checksummed frame does not decode: {exc}") from exc
