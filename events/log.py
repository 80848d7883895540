"""The append-only event log: recovery on open, durable batched appends, ordered reads.

Invariants: seqs are contiguous from 1; an append returns only after the bytes are synced;
each append writes its batch as one frame, so the unsynced last batch is cut whole on open
(torn, or with holes where its pages never landed), a copy kept under ``torn/``: no part of an
unacknowledged batch survives. Only a batch whose payload exceeds ``MAX_PAYLOAD`` is split into
several frames, in order, and may be cut after any of them. Any other damage raises
:class:`LogCorrupted` and leaves every file as it was. Appends go only to a version-2 segment:
a version-1 segment found last on open is left as it is and a new segment started after it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from memlane.events.codec import encode_batch
from memlane.events.disk import OsDisk
from memlane.events.errors import LogCorrupted, LogLocked, LogStopped, LogWriteFailed
from memlane.events.framing import MAX_PAYLOAD, FrameError, frame
from memlane.events.model import Event, Record
from memlane.events.rewrite import Transform, rewrite_segments
from memlane.events.scan import iter_segment, scan_segment
from memlane.events.segments import VERSION, list_segments, segment_header, segment_name

SEGMENT_BYTES = 64 * 1024 * 1024


def acquire_lock(directory: Path) -> int:
    """Hold the directory's writer lock for the life of the process (or until closed)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "writer.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown pid"
        os.close(fd)
        raise LogLocked(directory, f"pid {holder}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


class EventLog:
    """The writer's view of the log. Open with :meth:`open`; one instance per directory."""

    def __init__(self, directory: Path, *, disk: OsDisk, lock_fd: int | None,
                 segment_bytes: int) -> None:
        self.directory = directory
        self._disk = disk
        self._lock_fd = lock_fd
        self._segment_bytes = segment_bytes
        self._fd = -1
        self._size = 0
        self.last_seq = 0
        self.truncated_bytes = 0
        self._stopped: str | None = None

    @classmethod
    def open(cls, directory: Path, *, disk: OsDisk | None = None, lock: bool = True,
             segment_bytes: int = SEGMENT_BYTES) -> EventLog:
        """Lock, recover and open the log for appending."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_fd = acquire_lock(directory) if lock else None
        log = cls(directory, disk=disk or OsDisk(), lock_fd=lock_fd, segment_bytes=segment_bytes)
        try:
            log._recover()
        except BaseException:
            log.close()
            raise
        return log

    def _recover(self) -> None:
        for stray in self.directory.glob("*.seg.tmp"):
            stray.unlink()
        segments = list_segments(self.directory)
        if not segments:
            self._start_segment(1)
            return
        last = segments[-1]
        data = last.read_bytes()
        expect = _first_seq_of(segments[-2]) if len(segments) > 1 else None
        scan = scan_segment(last, data, None)
        if expect is not None and scan.first_seq <= expect:
            raise LogCorrupted(last, 0, "segment order is wrong")
        if scan.tail is not None:
            self._cut_tail(last, data, scan.end)
        self.last_seq = scan.last_seq
        if scan.version < VERSION:
            self._start_segment(self.last_seq + 1)  # its frames may not hold batches
            return
        self._fd = self._disk.open_append(last)
        self._size = scan.end

    def _cut_tail(self, path: Path, data: bytes, end: int) -> None:
        torn_dir = self.directory / "torn"
        torn_dir.mkdir(exist_ok=True, mode=0o700)
        (torn_dir / f"{path.name}.{end}").write_bytes(data[end:])
        fd = self._disk.open_append(path)
        try:
            self._disk.truncate(fd, end)
            self._disk.sync(fd)
        finally:
            self._disk.close(fd)
        self.truncated_bytes = len(data) - end

    def _start_segment(self, first_seq: int) -> None:
        """Create the next segment and append to it from now on; if this fails before the new
        segment is open, the current one stays in use."""
        path = self.directory / segment_name(first_seq)
        header = segment_header(first_seq)
        self._disk.create(path, header)
        fd = self._disk.open_append(path)
        previous, self._fd, self._size = self._fd, fd, len(header)
        if previous >= 0:
            self._disk.close(previous)

    def append(self, events: Sequence[Event], *, at: datetime | None = None) -> list[Record]:
        """Durably append ``events`` as one batch; return their records once synced."""
        if self._stopped:
            raise LogStopped(self._stopped)
        stamp = at or datetime.now(UTC)
        records = [Record(seq=self.last_seq + i, at=stamp, event=e)
                   for i, e in enumerate(events, start=1)]
        self.append_records(records)
        return records

    def append_records(self, records: Sequence[Record]) -> None:
        """Durably append pre-built records whose seqs continue the log."""
        if self._stopped:
            raise LogStopped(self._stopped)
        if not records:
            return
        if records[0].seq != self.last_seq + 1:
            raise LogWriteFailed(f"seq {records[0].seq} does not follow {self.last_seq}")
        blob = _frame_batch(records)
        if self._size >= self._segment_bytes:
            self._rotate(records[0].seq)
        try:
            self._disk.write(self._fd, blob)
        except OSError as exc:
            self._undo_partial_write(exc)
            raise LogWriteFailed(f"write failed, batch not acknowledged: {exc}") from exc
        try:
            self._disk.sync(self._fd)
        except OSError as exc:
            self._stopped = f"sync failed ({exc}); the log stopped accepting writes"
            raise LogStopped(self._stopped) from exc
        self._size += len(blob)
        self.last_seq += len(records)

    def _rotate(self, first_seq: int) -> None:
        try:
            self._start_segment(first_seq)
        except OSError as exc:
            raise LogWriteFailed(
                f"could not start a new segment, batch not acknowledged: {exc}") from exc

    def _undo_partial_write(self, exc: OSError) -> None:
        try:
            self._disk.truncate(self._fd, self._size)
        except OSError as undo_exc:
            self._stopped = f"write failed ({exc}) and could not be undone ({undo_exc})"

    def rewrite(self, transform: Transform) -> int:
        """Replace the records ``transform`` changes, keeping seqs (see :mod:`rewrite`);
        returns how many segments changed. Call only between appends."""
        if self._stopped:
            raise LogStopped(self._stopped)
        rewritten = rewrite_segments(self.directory, transform, self._disk)
        active = list_segments(self.directory)[-1]
        if active in rewritten:
            self._disk.close(self._fd)
            self._fd = self._disk.open_append(active)
            self._size = len(rewritten[active])
        return len(rewritten)

    def close(self) -> None:
        if self._fd >= 0:
            self._disk.close(self._fd)
            self._fd = -1
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _frame_batch(records: Sequence[Record]) -> bytes:
    """One frame holding ``records``; a batch whose payload would exceed ``MAX_PAYLOAD`` is
    split into several frames, in order."""
    payload = encode_batch(records)
    if len(payload) <= MAX_PAYLOAD:
        return frame(payload)
    if len(records) == 1:
        raise LogWriteFailed(f"record {records[0].seq} takes {len(payload)} bytes, more than a "
                             f"frame holds ({MAX_PAYLOAD}); batch not acknowledged")
    half = len(records) // 2
    return _frame_batch(records[:half]) + _frame_batch(records[half:])


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
        for item in iter_segment(path, data, expect):
            if isinstance(item, FrameError):
                if index != len(segments) - 1 or not tolerate_tail:
                    raise LogCorrupted(path, item.offset, item.reason)
                return
            if upto is not None and item.seq > upto:
                return
            if item.seq >= from_seq:
                yield item
            expect = item.seq + 1
        if expect is None:
            expect = _first_seq_of(path)


def _segment_index(segments: list[Path], seq: int) -> int:
    index = -1
    for i, path in enumerate(segments):
        if _first_seq_of(path) <= seq:
            index = i
    return index


def _first_seq_of(path: Path) -> int:
    return int(path.stem)
