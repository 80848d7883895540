"""Compaction on disk: compacted segments are staged beside the log, then switched in at once.

Only sealed segments wholly below a horizon seq are compacted (see :mod:`compaction` for what
they keep); each keeps its name and the range of seqs it accounts for, in a version-4 header.
The switch is crash-safe: kill -9 at any instant leaves the old segments or the new ones,
never a mix.

1. Stage (any thread or process, beside appends; the daemon runs it in a child process): each
   compacted segment is written, synced and read back under ``compact-staging/``, with its
   digest; nothing the log reads changes.
2. Commit (in the writer's thread): check no original changed meanwhile (a forget rewrites
   segments), write the list of segments, rename the directory to ``compact-commit/`` and sync
   the log directory: from here the switch is decided.
3. Install: each staged segment replaces its original, unsealed first and sealed after (as a
   forget's rewrite does); then the commit directory goes.

On open, :func:`recover` removes a staging directory and finishes a committed switch. A reader
sees every segment whole, old or new, and either replays to the same projections. A staging
child holds :func:`hold_staging`'s lock, which :func:`recover` waits for: a child whose daemon
died (it exits once its stdin closes) cannot stage again after the next open dropped its staging.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from memlane.events.codec import decode_record, encode_record, join_batch, raw_records
from memlane.events.compaction import Survey, plan_segment
from memlane.events.disk import OsDisk
from memlane.events.errors import LogCorrupted, LogError
from memlane.events.framing import MAX_PAYLOAD, Frame, frame, iter_frames
from memlane.events.model import Record
from memlane.events.scan import iter_segment, scan_segment
from memlane.events.seal import digest_path, remove_digest, write_digest
from memlane.events.sizes import kind_of
from memlane.events.segments import compacted_header, list_segments, parse_header

STAGING = "compact-staging"
STAGING_LOCK = "compact-staging.lock"
ORPHAN_WAIT_S = 30.0  # how long an open waits for a staging child of a dead daemon to exit
COMMIT = "compact-commit"
MANIFEST = "MANIFEST"
FRAME_RECORDS = 2048  # records per frame of a compacted segment
Step = Callable[[str], None]
Progress = Callable[[int, int], None]  # segments done, segments to do


class CompactionRaced(LogError):
    """A segment changed while it was being compacted (a forget rewrote it): nothing was
    switched; run compaction again."""

    code = "compaction_raced"


@dataclass(frozen=True)
class StagedSegment:
    name: str
    identity: tuple[int, int, int]  # inode, size, mtime of the original when it was read
    before: int
    after: int


@dataclass
class Staged:
    """Compacted segments waiting to be switched in, and what compaction did by event kind."""

    segments: list[StagedSegment] = field(default_factory=list)
    examined: int = 0
    before_by_kind: dict[str, int] = field(default_factory=dict)
    after_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def before(self) -> int:
        return sum(s.before for s in self.segments)

    @property
    def after(self) -> int:
        return sum(s.after for s in self.segments)


def _nothing(*_: object) -> None:
    return None


def compactable(directory: Path, horizon: int) -> list[Path]:
    """The sealed segments whose every seq is below ``horizon``, in log order (a sealed
    segment accounts for every seq up to where the next one starts)."""
    segments = list_segments(directory)
    return [path for path, after in zip(segments, segments[1:]) if int(after.stem) <= horizon]


def stage(directory: Path, found: Survey, horizon: int, *, step: Step = _nothing,
          progress: Progress = _nothing) -> Staged:
    """Write the compacted form of every compactable segment that changes under staging."""
    staging = directory / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    disk = OsDisk()
    staged = Staged()
    todo = compactable(directory, horizon)
    for done, path in enumerate(todo, start=1):
        one = _stage_segment(disk, path, staging, found, staged)
        if one is not None:
            staged.segments.append(one)
            step("segment_staged")
        staged.examined += 1
        progress(done, len(todo))
    disk.sync_dir(staging)
    return staged


def _stage_segment(disk: OsDisk, path: Path, staging: Path, found: Survey,
                   staged: Staged) -> StagedSegment | None:
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        data = handle.read()
    scan = scan_segment(path, data, None)  # refuse to compact a damaged segment
    if scan.tail is not None:
        raise LogCorrupted(path, scan.end, f"sealed segment ends in a torn frame: "
                                           f"{scan.tail.reason}")
    header = parse_header(path, data)
    assert not isinstance(header, str)
    raws = [raw for item in iter_frames(data, header.size) if isinstance(item, Frame)
            for raw in raw_records(item.payload)]
    records = [decode_record(raw) for raw in raws]
    plan = plan_segment(records, found)
    if not plan.changes(len(records)):
        return None
    kept = [records[i] for i in plan.keep] + plan.added
    kept_raws = [raws[i] for i in plan.keep] + [encode_record(r) for r in plan.added]
    order = sorted(range(len(kept)), key=lambda i: kept[i].seq)
    kept, kept_raws = [kept[i] for i in order], [kept_raws[i] for i in order]
    blob = b"".join([compacted_header(scan.first_seq, scan.last_seq), *_frames(kept_raws)])
    if list(iter_segment(path, blob, None)) != kept:
        raise LogCorrupted(path, 0, "a compacted segment did not read back as written; "
                                    "nothing was switched")
    disk.create(staging / path.name, blob)
    write_digest(disk, staging / path.name, hashlib.sha256(blob).hexdigest())
    _add_sizes(staged.before_by_kind, records, raws)
    _add_sizes(staged.after_by_kind, kept, kept_raws)
    return StagedSegment(path.name, (info.st_ino, info.st_size, info.st_mtime_ns),
                         len(data), len(blob))


def _frames(raws: list[bytes]) -> list[bytes]:
    """The records as frames of at most ``FRAME_RECORDS`` records (and well under a frame's
    size limit)."""
    parts: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    for raw in raws:
        if batch and (len(batch) == FRAME_RECORDS or size + len(raw) > MAX_PAYLOAD // 2):
            parts.append(frame(join_batch(batch)))
            batch, size = [], 0
        batch.append(raw)
        size += len(raw)
    if batch:
        parts.append(frame(join_batch(batch)))
    return parts


def _add_sizes(sizes: dict[str, int], records: list[Record], raws: list[bytes]) -> None:
    for record, raw in zip(records, raws, strict=True):
        kind = kind_of(record)
        sizes[kind] = sizes.get(kind, 0) + len(raw)


def commit(directory: Path, staged: Staged, *, seal_lock: threading.Lock,
           step: Step = _nothing) -> None:
    """Switch the staged segments in (call with nothing appended meanwhile); raises
    :class:`CompactionRaced`, switching nothing, if an original changed since it was read."""
    staging, disk = directory / STAGING, OsDisk()
    for one in staged.segments:
        info = os.stat(directory / one.name)
        if (info.st_ino, info.st_size, info.st_mtime_ns) != one.identity:
            shutil.rmtree(staging, ignore_errors=True)
            raise CompactionRaced(f"segment {one.name} changed while it was compacted; "
                                  "nothing was switched, run compaction again")
    disk.create(staging / MANIFEST, "".join(f"{s.name}\n" for s in staged.segments).encode())
    step("manifest_written")
    os.replace(staging, directory / COMMIT)
    disk.sync_dir(directory)
    step("committed")
    _install(directory, disk, seal_lock, step)


def _install(directory: Path, disk: OsDisk, seal_lock: threading.Lock, step: Step) -> None:
    """Move every committed segment (and its digest) over its original; idempotent."""
    source = directory / COMMIT
    for name in (source / MANIFEST).read_text().split():
        segment, target = source / name, directory / name
        with seal_lock:
            if segment.exists():
                remove_digest(disk, target)
                os.replace(segment, target)
                disk.sync_dir(directory)
                step("segment_installed")
            if digest_path(segment).exists():
                os.replace(digest_path(segment), digest_path(target))
                disk.sync_dir(directory)
    step("installed")
    shutil.rmtree(source)
    disk.sync_dir(directory)


def hold_staging(directory: Path, *, wait: float = ORPHAN_WAIT_S) -> int | None:
    """Take the staging lock (an flock, released when its holder exits), waiting up to
    ``wait`` seconds for another process to let it go; its descriptor, or None if it did not."""
    fd = os.open(directory / STAGING_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.01)


def recover(directory: Path) -> None:
    """Drop an uncommitted compaction and finish a committed one (on open, before reading),
    once no staging child of an earlier daemon is left (after :data:`ORPHAN_WAIT_S`, a stuck
    one's staging is dropped anyway: the next compaction starts afresh)."""
    fd = hold_staging(directory)
    try:
        shutil.rmtree(directory / STAGING, ignore_errors=True)
        if (directory / COMMIT / MANIFEST).exists():
            _install(directory, OsDisk(), threading.Lock(), _nothing)
        elif (directory / COMMIT).exists():
            shutil.rmtree(directory / COMMIT)  # renamed only once its manifest was synced
    finally:
        if fd is not None:
            os.close(fd)


def compacted_through(directory: Path) -> int:
    """The last seq a compacted segment accounts for (0 when none is): up to there, the log
    no longer holds every record."""
    through = 0
    for path in list_segments(directory):
        with open(path, "rb") as handle:
            header = parse_header(path, handle.read(64))
        if not isinstance(header, str) and header.last_seq is not None:
            through = header.last_seq
    return through
