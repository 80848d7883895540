"""Segment files: ``<first seq, 20 digits>.seg`` with a 20-byte header, then frames.

The header's version says what a frame may hold: in version 1, one record; in version 2, a
batch of records (or a single record, copied verbatim by a rewrite of a version-1 segment).
Both are read; new segments are written as version 2, and a version-1 segment is never appended
to (see :mod:`log`).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import NamedTuple

MAGIC = b"MLANELOG"
VERSION = 2
READABLE_VERSIONS = frozenset({1, 2})
SEGMENT_HEADER = struct.Struct("<8sIQ")
SUFFIX = ".seg"


class SegmentHeader(NamedTuple):
    version: int
    first_seq: int


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SUFFIX}"


def segment_header(first_seq: int) -> bytes:
    return SEGMENT_HEADER.pack(MAGIC, VERSION, first_seq)


def parse_header(path: Path, data: bytes) -> SegmentHeader | str:
    """A segment's version and first seq, or a reason why its header is wrong."""
    if len(data) < SEGMENT_HEADER.size:
        return "segment header incomplete"
    magic, version, first_seq = SEGMENT_HEADER.unpack_from(data)
    if magic != MAGIC:
        return "not a memlane log segment (bad magic)"
    if version not in READABLE_VERSIONS:
        return f"segment format version {version} is not supported by this memlane"
    if path.name != segment_name(first_seq):
        return f"segment header says first seq {first_seq}, name disagrees"
    return SegmentHeader(int(version), int(first_seq))


def list_segments(directory: Path) -> list[Path]:
    """Segment paths in log order."""
    return sorted(p for p in directory.glob(f"*{SUFFIX}") if p.stem.isdigit())
