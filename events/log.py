"""The append-only event log: recovery on open, durable batched appends, ordered reads.

Invariants: seqs rise strictly from 1, with no gap but inside a compacted segment's range
(see :mod:`compactor`); an append returns only after the bytes are synced;
each append writes its batch as one frame, so the unsynced last batch is cut whole on open
(torn, or with holes where its pages never landed), a copy kept under ``torn/`` and described
in :attr:`EventLog.tail_cut`: no part of an unacknowledged batch survives. Records at or below
the acknowledged floor (see :mod:`acked`) are never cut: a log that lost or damaged one is
refused with :class:`LogDamagedBelowAck`, so no seq is ever reused. Only a batch whose payload
exceeds ``MAX_PAYLOAD`` is split into several frames, in order, and may be cut after any of
them. Any other damage raises :class:`LogCorrupted` and leaves every file as it was. Appends go
only to a version-2 segment: a version-1 segment found last on open is left as it is and a new
segment started after it. A segment the log moves on from is sealed with its digest (see
:mod:`seal`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from memlane.events import compactor
from memlane.events.acked import ACK_EVERY, ACK_INTERVAL, ack_floor, read_acked, write_acked
from memlane.events.backup import Snapshot, take_snapshot
from memlane.events.codec import encode_batch
from memlane.events.disk import OsDisk
from memlane.events.errors import (
    LogCorrupted,
    LogDamagedBelowAck,
    LogLocked,
    LogStopped,
    LogWriteFailed,
)
from memlane.events.framing import MAX_PAYLOAD, frame
from memlane.events.model import Event, Record
from memlane.events.rewrite import Transform, rewrite_segments
from memlane.events.reading import first_seq_of
from memlane.events.reading import read_log as read_log  # where callers have always found it
from memlane.events.scan import SegmentScan, scan_segment
from memlane.events.seal import (
    SealReport,
    digest_path,
    remove_digest,
    verify_sealed,
    write_digest,
)
from memlane.events.segments import (
    VERSION,
    list_segments,
    refuse_newer,
    segment_header,
    segment_name,
)

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


@dataclass(frozen=True)
class TailCut:
    """The tail cut on open: beyond the acknowledged floor, so never known to be acknowledged.

    ``possibly_acknowledged`` says the cut frame was full length, so it may be an acknowledged
    batch hit by damage rather than a torn write; a copy of the bytes is at ``copy``.
    """

    segment: Path
    offset: int
    cut_bytes: int
    after_seq: int
    reason: str
    possibly_acknowledged: bool
    copy: Path


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
        self._path: Path | None = None
        self._hash = hashlib.sha256()
        self._seal_lock = threading.Lock()
        self.last_seq = 0
        self.acked_seq = 0  # the recorded watermark
        self._unrecorded = 0
        self._recorded_at = time.monotonic()
        self.tail_cut: TailCut | None = None
        self._stopped: str | None = None

    @classmethod
    def open(cls, directory: Path, *, disk: OsDisk | None = None, lock: bool = True,
             segment_bytes: int = SEGMENT_BYTES, acknowledged_at_least: int = 0) -> EventLog:
        """Lock, recover and open the log for appending.

        ``acknowledged_at_least`` is a seq the caller knows was acknowledged (the projections'
        applied seq): a log that no longer holds it is refused, like one below the watermark.
        """
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_fd = acquire_lock(directory) if lock else None
        log = cls(directory, disk=disk or OsDisk(), lock_fd=lock_fd, segment_bytes=segment_bytes)
        try:
            log._recover(acknowledged_at_least)
        except BaseException:
            log.close()
            raise
        return log

    @property
    def truncated_bytes(self) -> int:
        return self.tail_cut.cut_bytes if self.tail_cut is not None else 0

    def _recover(self, caller_floor: int) -> None:
        for stray in self.directory.glob("*.tmp"):
            stray.unlink()
        compactor.recover(self.directory)
        self.acked_seq = read_acked(self.directory)
        floor = ack_floor(self.directory, self.acked_seq, caller_floor)
        segments = list_segments(self.directory)
        refuse_newer(segments)
        if not segments:
            if floor.seq:
                raise LogDamagedBelowAck(self.directory, 0, 1, floor.seq, floor.source,
                                         "holds no segment")
            self._start_segment(1)
            return
        last = segments[-1]
        data = last.read_bytes()
        expect = first_seq_of(segments[-2]) if len(segments) > 1 else None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="memlane-log-digest") as pool:
            whole = pool.submit(hashlib.sha256, data)  # lets the GIL go: beside the scan
            scan = scan_segment(last, data, None, floor, decode=False)
        if expect is not None and scan.first_seq <= expect:
            raise LogCorrupted(last, 0, "segment order is wrong")
        if scan.tail is not None:
            self._cut_tail(last, data, scan)
        self.last_seq, self._path = scan.last_seq, last
        self._hash = (whole.result() if scan.end == len(data)
                      else hashlib.sha256(data[: scan.end]))  # a torn tail is not hashed
        if scan.version != VERSION:  # older frames may not hold batches; compacted: sealed
            self._start_segment(self.last_seq + 1)
            return
        self._fd = self._disk.open_append(last)
        self._size = scan.end

    def _cut_tail(self, path: Path, data: bytes, scan: SegmentScan) -> None:
        assert scan.tail is not None
        torn_dir = self.directory / "torn"
        torn_dir.mkdir(exist_ok=True, mode=0o700)
        copy = torn_dir / f"{path.name}.{scan.end}"
        _write_private(copy, data[scan.end:])
        fd = self._disk.open_append(path)
        try:
            self._disk.truncate(fd, scan.end)
            self._disk.sync(fd)
        finally:
            self._disk.close(fd)
        self.tail_cut = TailCut(
            segment=path, offset=scan.end, cut_bytes=len(data) - scan.end,
            after_seq=scan.last_seq, reason=scan.tail.reason, copy=copy,
            possibly_acknowledged=_maybe_acknowledged(scan.tail.reason, data[scan.end:]))

    def _start_segment(self, first_seq: int) -> None:
        """Create the next segment and append to it from now on, sealing the previous one; if
        this fails before the new segment is open, the current one stays in use."""
        path = self.directory / segment_name(first_seq)
        header = segment_header(first_seq)
        self._disk.create(path, header)
        fd = self._disk.open_append(path)
        previous, sealed, digest = self._fd, self._path, self._hash.hexdigest()
        self._fd, self._size, self._path, self._hash = fd, len(header), path, hashlib.sha256(header)
        if previous >= 0:
            self._disk.close(previous)
        if sealed is not None:
            self._seal(sealed, digest)
            self._record_ack()

    def _seal(self, segment: Path, hexdigest: str) -> None:
        """Write a sealed segment's digest; a failure leaves it unsealed, as
        :meth:`verify_sealed` reports and repairs."""
        with self._seal_lock:
            try:
                write_digest(self._disk, segment, hexdigest)
            except OSError:
                pass

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
        self._hash.update(blob)
        self._unrecorded += 1
        if (self._unrecorded >= ACK_EVERY
                or time.monotonic() - self._recorded_at >= ACK_INTERVAL):
            self._record_ack()

    def _record_ack(self) -> None:
        """Record :attr:`last_seq` as the watermark; a failure keeps the old one, and the next
        due append or the close tries again."""
        self._unrecorded, self._recorded_at = 0, time.monotonic()
        if self.last_seq <= self.acked_seq:
            return
        try:
            write_acked(self._disk, self.directory, self.last_seq)
        except OSError:
            return
        self.acked_seq = self.last_seq

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
        rewritten = rewrite_segments(self.directory, transform, self._replace)
        if self._path in rewritten:
            self._disk.close(self._fd)
            self._fd = self._disk.open_append(self._path)
            self._size = len(rewritten[self._path])
            self._hash = hashlib.sha256(rewritten[self._path])
        return len(rewritten)

    def _replace(self, segment: Path, blob: bytes) -> None:
        """Replace a segment's bytes; a sealed one is unsealed first and sealed again after,
        so a crash in between leaves it unsealed, never with a wrong digest."""
        if segment == self._path:
            self._disk.create(segment, blob)
            return
        with self._seal_lock:
            remove_digest(self._disk, segment)
            self._disk.create(segment, blob)
            write_digest(self._disk, segment, hashlib.sha256(blob).hexdigest())

    def switch_compacted(self, staged: compactor.Staged,
                         step: compactor.Step | None = None) -> None:
        """Switch staged compacted segments in (see :mod:`compactor`). Call only between
        appends; the active segment is never among them."""
        if self._stopped:
            raise LogStopped(self._stopped)
        if any(self.directory / s.name == self._path for s in staged.segments):
            raise LogWriteFailed("compaction never touches the segment being appended to")
        compactor.commit(self.directory, staged, seal_lock=self._seal_lock,
                         step=step or (lambda _name: None))

    def snapshot(self) -> Snapshot:
        """The log as it stands, to copy at leisure (call between appends): every segment
        held open, the one being appended to up to its current end."""
        return take_snapshot(self.directory, self.last_seq, self._size)

    def verify_sealed(self) -> SealReport:
        """Check every sealed segment's digest (see :mod:`seal`), and seal those written
        without one whose frames check out. Safe to run in a thread beside appends."""
        report = verify_sealed(self.directory)
        for problem in list(report.problems):
            segment = problem.segment
            if problem.kind != "unsealed" or self._path is None or segment >= self._path:
                continue
            with self._seal_lock:
                if not digest_path(segment).exists():
                    write_digest(self._disk, segment,
                                 hashlib.sha256(segment.read_bytes()).hexdigest())
            report.problems.remove(problem)
            report.sealed += 1
        return report

    def close(self) -> None:
        if self._fd >= 0 and not self._stopped:
            self._record_ack()
        if self._fd >= 0:
            self._disk.close(self._fd)
            self._fd = -1
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _maybe_acknowledged(reason: str, cut: bytes) -> bool:
    """Whether a cut tail may be a damaged batch rather than a write that never finished: it
    is not cut short, nor all zeros."""
    return not reason.startswith("incomplete") and cut.count(0) != len(cut)


def _write_private(path: Path, data: bytes) -> None:
    """Write a new file readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        OsDisk().write(fd, data)
    finally:
        os.close(fd)


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
