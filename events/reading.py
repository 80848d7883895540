"""Reading the log: records in order, verified as they are read, from any number of
threads beside the writer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from memlane.events.errors import LogCorrupted
from memlane.events.framing import FrameError
from memlane.events.model import Record
from memlane.events.scan import iter_segment, next_seq_after
from memlane.events.segments import list_segments


def read_log(directory: Path, from_seq: int = 1, *, upto: int | None = None,
             tolerate_tail: bool = True) -> Iterator[Record]:
    """Records with ``from_seq <= seq <= upto`` in order, verified as they are read.

    A torn tail in the last segment ends the iteration when ``tolerate_tail`` (a writer may be
    mid-append); damage anywhere else raises :class:`LogCorrupted`.
    """
    segments = list_segments(directory)
    start = max(0, _segment_index(segments, from_seq))
    expect: int | None = None
    for index in range(start, len(segments)):
        path = segments[index]
        data = path.read_bytes()
        last_read: int | None = None
        for item in iter_segment(path, data, expect, skip_below=from_seq):
            if isinstance(item, FrameError):
                if index != len(segments) - 1 or not tolerate_tail:
                    raise LogCorrupted(path, item.offset, item.reason)
                return
            if upto is not None and item.seq > upto:
                return
            if item.seq >= from_seq:
                yield item
            last_read = item.seq
        expect = next_seq_after(path, data, last_read)


def _segment_index(segments: list[Path], seq: int) -> int:
    index = -1
    for i, path in enumerate(segments):
        if first_seq_of(path) <= seq:
            index = i
    return index


def first_seq_of(path: Path) -> int:
    """The first seq a segment accounts for, from its name."""
    return int(path.stem)
