"""Segment files: ``<first seq, 20 digits>.seg`` with a 20-byte header, then frames."""

from __future__ import annotations

import struct
from pathlib import Path

MAGIC = b"MLANELOG"
VERSION = 1
SEGMENT_HEADER = struct.Struct("<8sIQ")
SUFFIX = ".seg"


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SUFFIX}"


def segment_header(first_seq: int) -> bytes:
    return SEGMENT_HEADER.pack(MAGIC, VERSION, first_seq)


def parse_header(path: Path, data: bytes) -> int | str:
    """The first seq of a segment, or a reason why its header is wrong."""
    if len(data) < SEGMENT_HEADER.size:
        return "segment header incomplete"
    magic, version, first_seq = SEGMENT_HEADER.unpack_from(data)
    if magic != MAGIC:
        return "not a memlane log segment (bad magic)"
    if version != VERSION:
        return f"segment format version {version} is not supported by this memlane"
    if path.name != segment_name(first_seq):
        return f"segment header says first seq {first_seq}, name disagrees"
    return int(first_seq)


def list_segments(directory: Path) -> list[Path]:
    """Segment paths in log order."""
    return sorted(p for p in directory.glob(f"*{SUFFIX}") if p.stem.isdigit())
