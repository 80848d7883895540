"""The acknowledged watermark: a seq every record up to which the log has acknowledged.

It lives in the log directory's ``acked`` file (magic, u64 seq, u32 crc32c), replaced
atomically and durably. Recovery refuses a log that ends, or is damaged, at or below the
watermark (:class:`LogDamagedBelowAck`) and cuts only beyond it, so a torn write is told from
damage to an acknowledged batch. The log records it every ``ACK_EVERY`` appends or
``ACK_INTERVAL`` seconds, at rotation, at open and on close: most appends pay no extra sync,
and the watermark lags by at most that much (a caller's floor, such as the projections'
applied seq, closes the gap). It holds a seq, not a byte position, because a rewrite
(``memlane forget``) moves frames but keeps seqs.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import NamedTuple

import crc32c

from memlane.events.disk import OsDisk
from memlane.events.errors import WatermarkDamaged

ACK_FILE = "acked"
ACK_EVERY = 64
ACK_INTERVAL = 2.0
_MAGIC = b"MLACKED1"
_BODY = struct.Struct("<8sQ")
_CHECK = struct.Struct("<I")


class AckFloor(NamedTuple):
    """The highest seq known to be acknowledged, and where that is recorded."""

    seq: int
    source: str


def read_acked(directory: Path) -> int:
    """The recorded watermark; 0 when none was recorded yet."""
    path = directory / ACK_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    if len(data) != _BODY.size + _CHECK.size:
        raise WatermarkDamaged(path, f"{len(data)} bytes, expected {_BODY.size + _CHECK.size}")
    magic, seq = _BODY.unpack_from(data)
    (check,) = _CHECK.unpack_from(data, _BODY.size)
    if magic != _MAGIC or crc32c.crc32c(data[: _BODY.size]) != check:
        raise WatermarkDamaged(path, "bad magic or checksum")
    return int(seq)


def write_acked(disk: OsDisk, directory: Path, seq: int) -> None:
    """Record ``seq`` as acknowledged, atomically and durably."""
    body = _BODY.pack(_MAGIC, seq)
    disk.create(directory / ACK_FILE, body + _CHECK.pack(crc32c.crc32c(body)))


def ack_floor(directory: Path, recorded: int, caller_floor: int) -> AckFloor:
    """The higher of the recorded watermark and a caller's floor."""
    if caller_floor > recorded:
        return AckFloor(caller_floor, "the caller, e.g. the projections, saw it")
    return AckFloor(recorded, f"recorded in {directory / ACK_FILE}")
