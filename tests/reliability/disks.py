"""Disks for fault injection: the log's only fake. Both work on real files in a temp directory,
because the log reads its segments with plain file reads; they only change what the log's
writes do and remember."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

from memlane.events.disk import OsDisk


class PowerCut(BaseException):
    """The power failed during a disk operation (not an OSError: the log must not handle it)."""


@dataclass(frozen=True)
class CutPoint:
    """Where the power fails: at the ``op``-th disk operation from now. A write cut there lands
    ``fraction`` of its bytes first; a sync cut there completes first when ``fraction >= 0.5``
    (durable but never acknowledged)."""

    op: int
    fraction: float


class PowerLossDisk(OsDisk):
    """Real files, plus what a power cut would leave of them.

    Only synced data survives for sure; of the unsynced bytes of a file a cut keeps a random
    prefix, maybe followed by zeros or garbage. A name whose directory was not synced since it
    was created or renamed may revert to what it was before (or vanish).
    """

    def __init__(self) -> None:
        self._paths: dict[int, Path] = {}
        self._synced: dict[Path, bytes] = {}  # durable data of the file a name shows now
        self._entries: dict[Path, bytes | None] = {}  # undurable names -> what they were before
        self._ghosts: dict[Path, bytes] = {}  # renamed-away names that may come back
        self._shadows: dict[Path, list[bytes]] = {}  # unsynced contents before a truncate
        self._cut: CutPoint | None = None
        self._ops = 0
        # errno and the share of the bytes that land first; writes to a segment fail, and so
        # do writes to a new segment's temp file (a rotation that cannot start)
        self.write_error: tuple[int, float] | None = None

    def arm(self, cut: CutPoint) -> None:
        self._cut, self._ops = cut, 0

    def disarm(self) -> None:
        self._cut = None

    def _tick(self) -> CutPoint | None:
        """Count an operation; the cut point if the power fails at this one."""
        if self._cut is None:
            return None
        self._ops += 1
        return self._cut if self._ops == self._cut.op else None

    def open_append(self, path: Path) -> int:
        fd = super().open_append(path)
        self._paths[fd] = path
        if path not in self._synced and path not in self._entries:
            self._synced[path] = path.read_bytes()  # a file from before the last boot
        return fd

    def create(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        self._entries.setdefault(tmp, self._durable(tmp))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        self._paths[fd] = tmp
        self._synced[tmp] = b""
        try:
            self.write(fd, data)
            self.sync(fd)
        finally:
            self.close(fd)
        if self._tick() is not None:
            raise PowerCut("before the rename")
        self._rename(tmp, path)
        self.sync_dir(path.parent)

    def _rename(self, tmp: Path, path: Path) -> None:
        self._entries.setdefault(path, self._durable(path))
        os.replace(tmp, path)
        self._synced[path] = self._synced.pop(tmp)
        self._shadows.pop(path, None)
        self._ghosts[tmp] = self._synced[path]

    def _durable(self, path: Path) -> bytes | None:
        """What a name durably shows before its directory entry changes."""
        if not path.exists():
            return None
        return self._synced.get(path, path.read_bytes())

    def write(self, fd: int, data: bytes) -> None:
        cut = self._tick()
        if cut is not None:
            super().write(fd, data[: int(len(data) * cut.fraction)])
            raise PowerCut("during a write")
        if self.write_error is not None and self._paths[fd].name.endswith((".seg", ".seg.tmp")):
            errno, share = self.write_error
            super().write(fd, data[: int(len(data) * share)])
            raise OSError(errno, os.strerror(errno))
        super().write(fd, data)

    def sync(self, fd: int) -> None:
        cut = self._tick()
        if cut is not None and cut.fraction < 0.5:
            raise PowerCut("before a sync")
        path = self._paths[fd]
        self._synced[path] = path.read_bytes()  # the simulated disk needs no real fdatasync
        self._shadows.pop(path, None)
        if cut is not None:
            raise PowerCut("after a sync, before it returned")

    def truncate(self, fd: int, size: int) -> None:
        if self._tick() is not None:
            raise PowerCut("before a truncate")
        path = self._paths[fd]
        self._shadows.setdefault(path, []).append(path.read_bytes())
        super().truncate(fd, size)

    def close(self, fd: int) -> None:
        self._paths.pop(fd, None)
        super().close(fd)

    def sync_dir(self, path: Path) -> None:
        if self._tick() is not None:
            raise PowerCut("before a directory sync")
        for name in [n for n in self._entries if n.parent == path]:
            del self._entries[name]
        for name in [n for n in self._ghosts if n.parent == path]:
            del self._ghosts[name]

    def power_cut(self, rng: random.Random) -> None:
        """Leave every file as a power cut might: then everything on disk counts as synced."""
        for fd in list(self._paths):
            self.close(fd)
        reverted = set()
        for name, before in self._entries.items():
            if rng.random() < 0.5:
                _restore(name, before)
                reverted.add(name)
        for name, data in self._ghosts.items():
            if not name.exists() and rng.random() < 0.5:
                name.write_bytes(data)
                reverted.add(name)
        for name, durable in self._synced.items():
            if name.exists() and name not in reverted:
                name.write_bytes(_survivor(rng, durable, self._volatile(rng, name)))
        self._synced = {n: n.read_bytes() for n in self._synced | self._ghosts if n.exists()}
        self._entries, self._ghosts, self._shadows = {}, {}, {}

    def _volatile(self, rng: random.Random, name: Path) -> bytes:
        """The unsynced content a cut may keep part of: the file now, or what a truncate
        that was never synced removed."""
        return rng.choice([name.read_bytes(), *self._shadows.get(name, [])])


def _restore(name: Path, before: bytes | None) -> None:
    if before is None:
        name.unlink(missing_ok=True)
    else:
        name.write_bytes(before)


def _survivor(rng: random.Random, durable: bytes, volatile: bytes) -> bytes:
    """What one file holds after the cut: its synced bytes, a random prefix of the rest, and
    maybe a zero-filled or garbage tail where the file grew but its data never landed."""
    if not volatile.startswith(durable):
        return rng.choice([durable, volatile])  # a truncate that may or may not have landed
    unsynced = volatile[len(durable):]
    kept = rng.randint(0, len(unsynced))
    junk_size = rng.randint(0, len(unsynced) - kept)
    junk = rng.choice([bytes(junk_size), rng.randbytes(junk_size)])
    return durable + unsynced[:kept] + junk


class FaultyDisk(OsDisk):
    """A real disk whose writes, syncs, truncates or segment creations fail on demand.

    A failing write lands ``landed`` bytes first (a short write, then the error)."""

    def __init__(self) -> None:
        self.fail_write: int | None = None
        self.landed = 0
        self.fail_sync: int | None = None
        self.fail_truncate: int | None = None
        self.fail_create: int | None = None

    def write(self, fd: int, data: bytes) -> None:
        if self.fail_write is not None:
            super().write(fd, data[: self.landed])
            raise OSError(self.fail_write, os.strerror(self.fail_write))
        super().write(fd, data)

    def sync(self, fd: int) -> None:
        if self.fail_sync is not None:
            raise OSError(self.fail_sync, os.strerror(self.fail_sync))
        super().sync(fd)

    def truncate(self, fd: int, size: int) -> None:
        if self.fail_truncate is not None:
            raise OSError(self.fail_truncate, os.strerror(self.fail_truncate))
        super().truncate(fd, size)

    def create(self, path: Path, data: bytes) -> None:
        if self.fail_create is not None:
            raise OSError(self.fail_create, os.strerror(self.fail_create))
        super().create(path, data)
