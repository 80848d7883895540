"""Rewriting records in place (``memlane forget``): the only change the log ever allows.

A rewrite keeps every seq and timestamp; it re-encodes the frames holding a record that a
transform changes (a forgotten memory's text and vector), as one batch each, and copies every
other frame byte for byte. Each touched segment is rebuilt beside the original with a current
(version 2) header (a compacted one keeps its own), re-read and checked (frames, checksums,
seqs, and that every record is the transformed one), then renamed over it; so the log stays verifiable and a crash leaves either
the old or the new segment.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from memlane.events.codec import decode_frame, encode_batch
from memlane.events.errors import LogCorrupted
from memlane.events.framing import Frame, FrameError, frame, iter_frames
from memlane.events.model import Record
from memlane.events.scan import iter_segment, scan_segment
from memlane.events.segments import COMPACTED, list_segments, parse_header, segment_header

Transform = Callable[[Record], Record]
Replace = Callable[[Path, bytes], None]  # replaces a segment's bytes atomically and durably


def rewrite_segment(path: Path, transform: Transform, replace: Replace) -> bytes | None:
    """The segment's new bytes if ``transform`` changes a record (already written and synced
    to ``path``), else None."""
    data = path.read_bytes()
    scan = scan_segment(path, data, None)  # refuse to touch a damaged segment
    header = parse_header(path, data)
    assert not isinstance(header, str)  # the scan checked it
    kept = data[:header.size] if header.version == COMPACTED else segment_header(scan.first_seq)
    parts = [kept]
    expected: list[Record] = []
    changed = False
    for item in _whole_frames(data, header.size):
        records = decode_frame(item.payload)
        new = [transform(r) for r in records]
        expected.extend(new)
        if new == records:
            parts.append(data[item.offset:item.end])
        else:
            changed = True
            parts.append(frame(encode_batch(new)))
    if not changed:
        return None
    blob = b"".join(parts)
    _verify(path, blob, expected)
    replace(path, blob)
    return blob


def _whole_frames(data: bytes, start: int) -> list[Frame]:
    return [f for f in iter_frames(data, start) if not isinstance(f, FrameError)]


def _verify(path: Path, blob: bytes, expected: list[Record]) -> None:
    decoded = list(iter_segment(path, blob, None))  # a torn end shows as a trailing FrameError
    if decoded != expected:
        raise LogCorrupted(path, 0, "a rewritten segment did not read back as written; "
                                    "the original was left in place")


def rewrite_segments(directory: Path, transform: Transform,
                     replace: Replace) -> dict[Path, bytes]:
    """Rewrite every segment ``transform`` touches; returns the new bytes by path."""
    rewritten = {}
    for path in list_segments(directory):
        blob = rewrite_segment(path, transform, replace)
        if blob is not None:
            rewritten[path] = blob
    return rewritten
