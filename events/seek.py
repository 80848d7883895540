"""Records by seq without reading the log from its start.

Each segment's frames (offset, first seq) are indexed sparsely on first use by walking their
headers, kept while the file is the same and extended as the active segment grows. A version-1 or -2
segment's seqs are contiguous, so a frame's first seq follows from the record counts of the
frames before it (a batch's array header: nothing decoded); a compacted segment has gaps, so
the seq of each frame's first record is decoded. Every frame read is checked (checksum and
seq); a segment replaced under its index (a forget's rewrite, compaction) is another inode,
and a frame that does not check out has its segment indexed again once before the log is
called damaged.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import msgspec

from memlane.events.codec import batch_length, decode_frame, decode_record, raw_records, record_seq
from memlane.events.errors import LogCorrupted
from memlane.events.framing import HEADER, Frame, read_frame
from memlane.events.model import Embeddings, Record, Tallied
from memlane.events.reading import first_seq_of
from memlane.events.segments import list_segments, parse_header

_LENGTH = struct.Struct("<I")
STRIDE = 64  # frames between two checkpoints: a lookup walks at most this many frame headers
_HEAD = 64  # bytes enough for any segment header
T = TypeVar("T")


@dataclass
class _Frames:
    """A segment's frames as far as they were indexed: the offset and first seq of every
    frame of a compacted segment (a few thousand records each), of every ``STRIDE``-th frame
    of a contiguous one (a group commit can be a frame of one record)."""

    inode: int
    compacted: bool
    end: int  # where the indexed frames end
    next_seq: int  # the seq after the indexed records (contiguous segments)
    count: int = 0  # frames indexed
    starts: array[int] = field(default_factory=lambda: array("q"))
    offsets: array[int] = field(default_factory=lambda: array("q"))
    # a compacted segment's stand-ins (Tallied, Embeddings): each memory's, by seq; mapped on
    # first need by one pass over the segment (which never grows)
    standins: dict[int, list[int]] | None = None


class _Stale(Exception):
    """A frame the index points at does not check out."""


class Seeker:
    """Random access to one log directory's records, for any number of threads."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._frames: dict[Path, _Frames] = {}
        self._lock = threading.Lock()

    def records(self, seqs: Iterable[int]) -> tuple[list[Record], list[int]]:
        """The records at ``seqs`` in log order, and the seqs the log does not hold (dropped
        by compaction, or not written yet)."""
        segments = list_segments(self._directory)
        by_segment: dict[Path | None, list[int]] = {}
        for seq in sorted(set(seqs)):
            by_segment.setdefault(_segment_of(segments, seq), []).append(seq)
        found: list[Record] = []
        missing = by_segment.pop(None, [])
        for path, wanted in by_segment.items():
            assert path is not None
            records = self._checked(path, partial(_pick, seqs=wanted))
            found += records
            held = {r.seq for r in records}
            missing += [seq for seq in wanted if seq not in held]
        return found, sorted(missing)

    def records_of(self, memory: int, seqs: Iterable[int]) -> list[Record]:
        """The records at ``seqs`` (a memory's events), in log order; for those compaction
        dropped, the records standing in for them (``Tallied`` counts, ``Embeddings`` runs,
        each at or after what it replaced): those naming the memory in their segment, from
        its first dropped record on."""
        found, missing = self.records(seqs)
        segments = list_segments(self._directory)
        first_dropped: dict[Path, int] = {}
        for seq in missing:
            if (path := _segment_of(segments, seq)) is not None:
                first_dropped.setdefault(path, seq)
        for path, seq in first_dropped.items():
            found += self._checked(path, partial(_standing_in, seq=seq, memory=memory))
        return sorted({r.seq: r for r in found}.values(), key=lambda r: r.seq)

    def _checked(self, path: Path, read: Callable[[mmap.mmap, _Frames], T]) -> T:
        """``read`` over the segment's bytes and frames; indexed afresh once if stale."""
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0,
                                                   access=mmap.ACCESS_READ) as buf:
            inode = os.fstat(handle.fileno()).st_ino
            try:
                return read(buf, self._indexed(path, buf, inode, fresh=False))
            except _Stale:
                pass
            try:
                return read(buf, self._indexed(path, buf, inode, fresh=True))
            except _Stale as stale:
                offset, reason = stale.args
                raise LogCorrupted(path, offset, reason) from None

    def _indexed(self, path: Path, buf: mmap.mmap, inode: int, *, fresh: bool) -> _Frames:
        with self._lock:
            frames = self._frames.get(path)
            if fresh or frames is None or frames.inode != inode or len(buf) < frames.end:
                header = parse_header(path, bytes(buf[:_HEAD]))
                if isinstance(header, str):
                    raise LogCorrupted(path, 0, header)
                frames = _Frames(inode, header.compacted, header.size,
                                 header.first_seq)
                self._frames[path] = frames
            _extend(buf, frames)
            return frames


def _standing_in(buf: mmap.mmap, frames: _Frames, seq: int, memory: int) -> list[Record]:
    """The records from ``seq`` on that stand in for dropped records of ``memory``: only
    their frames decoded, once the segment's stand-ins are mapped."""
    if frames.standins is None:
        frames.standins = _standins(buf, frames)
    picked = _pick(buf, frames, [s for s in frames.standins.get(memory, ()) if s >= seq])
    # a file rewritten under a reused inode with the same frame offsets keeps a stale map
    return [r for r in picked
            if isinstance(r.event, Tallied | Embeddings) and memory in r.event.memories]


def _standins(buf: mmap.mmap, frames: _Frames) -> dict[int, list[int]]:
    """The seqs of the records standing in for dropped ones, by each memory they name."""
    found: dict[int, list[int]] = {}
    for record in _iter_from(buf, frames, 0):
        if isinstance(record.event, Tallied | Embeddings):
            for memory in dict.fromkeys(record.event.memories):
                found.setdefault(memory, []).append(record.seq)
    return found


def _segment_of(segments: list[Path], seq: int) -> Path | None:
    index = bisect_right([first_seq_of(p) for p in segments], seq) - 1
    return segments[index] if index >= 0 else None


def _extend(buf: mmap.mmap, frames: _Frames) -> None:
    """Index the whole frames after ``frames.end`` (a frame still being written waits)."""
    offset = frames.end
    while (length := _whole(buf, offset)) is not None:
        end = offset + HEADER.size + length
        if frames.compacted:
            frames.starts.append(_first_seq(buf[offset + HEADER.size:end], offset))
            frames.offsets.append(offset)
        else:
            if frames.count % STRIDE == 0:
                frames.starts.append(frames.next_seq)
                frames.offsets.append(offset)
            frames.next_seq += _records_in(buf, offset)
        frames.count += 1
        offset = end
    frames.end = offset


def _whole(buf: mmap.mmap, offset: int) -> int | None:
    """The payload length of the frame at ``offset`` if its bytes are all there."""
    if offset + HEADER.size >= len(buf):
        return None
    (length,) = _LENGTH.unpack_from(buf, offset)
    return length if length and offset + HEADER.size + length <= len(buf) else None


def _records_in(buf: mmap.mmap, offset: int) -> int:
    return batch_length(buf[offset + HEADER.size:offset + HEADER.size + 5])


def _first_seq(payload: bytes, offset: int) -> int:
    try:
        return record_seq(raw_records(payload)[0])
    except (msgspec.DecodeError, msgspec.ValidationError, IndexError) as exc:
        raise _Stale(offset, f"frame does not decode: {exc}") from exc


def _located(buf: mmap.mmap, frames: _Frames, seq: int) -> tuple[int, int] | None:
    """The offset and first seq of the frame that holds ``seq`` if the segment does (in a
    compacted segment: the last frame starting at or before it, or the first frame)."""
    if not frames.starts:
        return None
    index = max(0, bisect_right(frames.starts, seq) - 1)
    offset, first = frames.offsets[index], frames.starts[index]
    if frames.compacted:
        return offset, first
    while offset < frames.end:  # at most STRIDE frames from the checkpoint
        count = _records_in(buf, offset)
        if seq < first + count:
            return offset, first
        first += count
        offset += HEADER.size + _LENGTH.unpack_from(buf, offset)[0]
    return None


def _frame(buf: mmap.mmap, offset: int) -> Frame:
    item = read_frame(buf, offset)
    if not isinstance(item, Frame):
        raise _Stale(item.offset, item.reason)
    return item


def _pick(buf: mmap.mmap, frames: _Frames, seqs: list[int]) -> list[Record]:
    """The records at ``seqs`` (sorted) that the segment holds."""
    by_frame: dict[tuple[int, int], list[int]] = {}
    for seq in seqs:
        if (where := _located(buf, frames, seq)) is not None:
            by_frame.setdefault(where, []).append(seq)
    found = []
    for (offset, first), wanted in by_frame.items():
        raws = raw_records(_frame(buf, offset).payload)
        if frames.compacted:
            held = {record_seq(raw): raw for raw in raws}
        else:
            held = {first + i: raw for i, raw in enumerate(raws)}
        found += [_decoded(held[seq], seq, offset) for seq in wanted if seq in held]
    return found


def _iter_from(buf: mmap.mmap, frames: _Frames, seq: int) -> Iterator[Record]:
    where = _located(buf, frames, seq)
    offset = frames.end if where is None else where[0]
    while offset < frames.end:
        item = _frame(buf, offset)
        try:
            records = decode_frame(item.payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise _Stale(item.offset, f"checksummed frame does not decode: {exc}") from exc
        yield from (r for r in records if r.seq >= seq)
        offset = item.end


def _decoded(raw: bytes, seq: int, offset: int) -> Record:
    try:
        record = decode_record(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _Stale(offset, f"checksummed frame does not decode: {exc}") from exc
    if record.seq != seq:
        raise _Stale(offset, f"seq {record.seq} where {seq} was indexed")
    return record

