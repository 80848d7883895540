"""Backups of the log: a consistent copy up to a position, taken while appends go on, and the
log of a new state directory restored from one.

A :class:`Snapshot` is taken between two appends: it holds every segment open, the one being
appended to up to its end then. Appends only add bytes past that end, and a rewrite (a forget,
a compaction) replaces a segment by a rename, so the open files keep the bytes the position
names while they are copied. The copy is checked as a log (frames, checksums, seqs) and holds
the position as its acknowledged watermark, so a copy missing a record is refused on open.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from memlane.events.acked import write_acked
from memlane.events.disk import OsDisk
from memlane.events.errors import LogCorrupted
from memlane.events.seal import write_digest
from memlane.events.segments import list_segments

CHUNK = 4 * 1024 * 1024
Progress = Callable[[int, int], None]  # bytes copied, bytes to copy


@dataclass
class Snapshot:
    """Open segments and how many bytes of each belong to the position."""

    position: int
    parts: list[tuple[str, int, int]] = field(default_factory=list)  # name, fd, length

    @property
    def size(self) -> int:
        return sum(length for _, _, length in self.parts)

    def close(self) -> None:
        for _, fd, _ in self.parts:
            os.close(fd)
        self.parts = []


def take_snapshot(directory: Path, last_seq: int, active_size: int) -> Snapshot:
    """Open every segment of ``directory`` (the last up to ``active_size`` bytes)."""
    snapshot = Snapshot(last_seq)
    segments = list_segments(directory)
    try:
        for index, path in enumerate(segments):
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            last = index == len(segments) - 1
            snapshot.parts.append((path.name, fd, active_size if last else os.fstat(fd).st_size))
    except BaseException:
        snapshot.close()
        raise
    return snapshot


def copy_snapshot(snapshot: Snapshot, target: Path, progress: Progress | None = None) -> None:
    """Write the snapshot's bytes as a sealed log under ``target`` (a new directory)."""
    disk = OsDisk()
    target.mkdir(parents=True, mode=0o700)
    done, total = 0, snapshot.size
    for index, (name, fd, length) in enumerate(snapshot.parts):
        digest = hashlib.sha256()
        out = os.open(target / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            offset = 0
            while offset < length:
                chunk = os.pread(fd, min(CHUNK, length - offset), offset)
                if not chunk:
                    raise LogCorrupted(target / name, offset, "segment shorter than the "
                                                              "snapshot recorded")
                disk.write(out, chunk)
                digest.update(chunk)
                offset += len(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
            disk.sync(out)
        finally:
            os.close(out)
        if index < len(snapshot.parts) - 1:  # the last is appended to again once restored
            write_digest(disk, target / name, digest.hexdigest())
    write_acked(disk, target, snapshot.position)
    disk.sync_dir(target)
