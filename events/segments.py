"""Segment files: ``<first seq, 20 digits>.seg`` with a 20-byte header, then frames.

The header's version says what a frame may hold: in version 1, one record; in version 2, a
batch of records (or a single record, copied verbatim by a rewrite of a version-1 segment).
Both are read; new segments are written as version 2, and a version-1 segment is never appended
to (see :mod:`log`). Versions 3 and 4 are compacted segments (see :mod:`compaction`): the header
also holds the last seq it accounts for, and its records' seqs rise strictly between the two,
with gaps where compaction dropped records; a gap anywhere else is still damage. Compaction
writes version 4, which holds ``Embeddings`` runs of int8 codes (:mod:`vector_codes`): a memlane
that reads only up to version 3 refuses it instead of misreading it.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import NamedTuple

MAGIC = b"MLANELOG"
VERSION = 2
COMPACTED = 4  # what compaction writes
COMPACTED_VERSIONS = frozenset({3, COMPACTED})  # 3: written before vectors were quantised
READABLE_VERSIONS = frozenset({1, 2, *COMPACTED_VERSIONS})
PLAUSIBLE_VERSION = 255  # a version field above this is a damaged header, not a newer format
SEGMENT_HEADER = struct.Struct("<8sIQ")
COMPACTED_TAIL = struct.Struct("<Q")  # after a compacted header: the last seq accounted for
SUFFIX = ".seg"


class SegmentHeader(NamedTuple):
    version: int
    first_seq: int
    last_seq: int | None = None  # a compacted segment's last seq accounted for
    size: int = SEGMENT_HEADER.size

    @property
    def compacted(self) -> bool:
        return self.version in COMPACTED_VERSIONS


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SUFFIX}"


def segment_header(first_seq: int) -> bytes:
    return SEGMENT_HEADER.pack(MAGIC, VERSION, first_seq)


def compacted_header(first_seq: int, last_seq: int) -> bytes:
    """The header of a compacted segment accounting for ``first_seq..last_seq``."""
    return SEGMENT_HEADER.pack(MAGIC, COMPACTED, first_seq) + COMPACTED_TAIL.pack(last_seq)


def parse_header(path: Path, data: bytes) -> SegmentHeader | str:
    """A segment's version and first seq, or a reason why its header is wrong."""
    if len(data) < SEGMENT_HEADER.size:
        return "segment header incomplete"
    magic, version, first_seq = SEGMENT_HEADER.unpack_from(data)
    if magic != MAGIC:
        return "not a memlane log segment (bad magic)"
    if version not in READABLE_VERSIONS:
        return (f"segment format version {version} is newer than this memlane reads: "
                "upgrade memlane to open this log")
    if path.name != segment_name(first_seq):
        return f"segment header says first seq {first_seq}, name disagrees"
    if version not in COMPACTED_VERSIONS:
        return SegmentHeader(int(version), int(first_seq))
    size = SEGMENT_HEADER.size + COMPACTED_TAIL.size
    if len(data) < size:
        return "compacted segment header incomplete"
    (last_seq,) = COMPACTED_TAIL.unpack_from(data, SEGMENT_HEADER.size)
    if last_seq < first_seq:
        return f"compacted segment accounts for seqs {first_seq}..{last_seq}"
    return SegmentHeader(int(version), int(first_seq), int(last_seq), size)


def refuse_newer(segments: list[Path]) -> None:
    """Raise :class:`LogTooNew` if any segment's header has a version this memlane does not
    read (a few bytes of each, before anything is changed)."""
    from memlane.events.errors import LogTooNew

    for path in segments:
        with open(path, "rb") as handle:
            head = handle.read(SEGMENT_HEADER.size)
        if len(head) == SEGMENT_HEADER.size:
            magic, version, _ = SEGMENT_HEADER.unpack(head)
            if magic == MAGIC and max(READABLE_VERSIONS) < version <= PLAUSIBLE_VERSION:
                raise LogTooNew(path, int(version))  # anything else: damage, found by reading


def list_segments(directory: Path) -> list[Path]:
    """Segment paths in log order."""
    return sorted(p for p in directory.glob(f"*{SUFFIX}") if p.stem.isdigit())
