"""Framing: ``[u32 length][u32 crc32c(length + payload)][payload]``, little endian.

A frame is the unit of durability: it is whole (length and checksum agree) or it is not there.
The checksum covers the length too, so a zero-filled tail (a common torn-write residue) never
reads as a valid empty frame. Payloads are at most ``MAX_PAYLOAD`` bytes; what they hold is the
codec's business.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from typing import NamedTuple

import crc32c

HEADER = struct.Struct("<II")
MAX_PAYLOAD = 64 * 1024 * 1024


class Frame(NamedTuple):
    """A whole, checksummed payload found at ``offset`` and ending at ``end``."""

    offset: int
    end: int
    payload: bytes


class FrameError(NamedTuple):
    """Why the bytes at ``offset`` are not a whole frame."""

    offset: int
    reason: str


def frame(payload: bytes) -> bytes:
    """Frame one payload."""
    length = len(payload)
    checksum = crc32c.crc32c(payload, crc32c.crc32c(struct.pack("<I", length)))
    return HEADER.pack(length, checksum) + payload


def read_frame(buf: bytes | memoryview | mmap.mmap, offset: int) -> Frame | FrameError:
    """Read the frame at ``offset``, or say why there is none."""
    end_header = offset + HEADER.size
    if end_header > len(buf):
        return FrameError(offset, "incomplete header")
    length, checksum = HEADER.unpack_from(buf, offset)
    if length == 0 or length > MAX_PAYLOAD:
        return FrameError(offset, f"implausible length {length}")
    end = end_header + length
    if end > len(buf):
        return FrameError(offset, "incomplete payload")
    payload = bytes(buf[end_header:end])
    if crc32c.crc32c(payload, crc32c.crc32c(buf[offset : offset + 4])) != checksum:
        return FrameError(offset, "checksum mismatch")
    return Frame(offset, end, payload)


def iter_frames(buf: bytes | memoryview, start: int = 0) -> Iterator[Frame | FrameError]:
    """Yield whole frames from ``start``; the first failure is yielded last."""
    offset = start
    while offset < len(buf):
        item = read_frame(buf, offset)
        yield item
        if isinstance(item, FrameError):
            return
        offset = item.end


def next_valid_frame(buf: bytes | memoryview, start: int) -> int | None:
    """The offset of the first whole frame at or after ``start``, if any (a corruption probe)."""
    for offset in range(start, len(buf) - HEADER.size + 1):
        if isinstance(read_frame(buf, offset), Frame):
            return offset
    return None


def claimed_end(buf: bytes | memoryview, offset: int) -> int:
    """Where the frame at ``offset`` ends by its length field; ``offset + 1`` when that field
    is missing or implausible."""
    if offset + HEADER.size > len(buf):
        return offset + 1
    length = HEADER.unpack_from(buf, offset)[0]
    return offset + HEADER.size + length if 0 < length <= MAX_PAYLOAD else offset + 1


def whole_if_ending_at(buf: bytes | memoryview, offset: int, end: int) -> bool:
    """Whether the frame at ``offset`` checks out if it ends at ``end`` (only its length field
    damaged)."""
    length = end - offset - HEADER.size
    if length <= 0 or end > len(buf):
        return False
    checksum = HEADER.unpack_from(buf, offset)[1]
    actual: int = crc32c.crc32c(buf[offset + HEADER.size : end],
                                crc32c.crc32c(struct.pack("<I", length)))
    return actual == int(checksum)
