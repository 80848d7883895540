"""The event log: durable appends, recovery from torn tails, refusal of real damage."""

from __future__ import annotations

import errno
import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memlane.events.disk import OsDisk
from memlane.events.errors import LogCorrupted, LogLocked, LogStopped, LogWriteFailed
from memlane.events.framing import frame
from memlane.events.codec import encode_record
from memlane.events.log import EventLog, read_log
from memlane.events.model import Linked, Record, Stored
from memlane.events.segments import SEGMENT_HEADER, list_segments

AT = datetime(2026, 11, 24, 14, 2, tzinfo=UTC)


def stored(i: int) -> Stored:
    return Stored(id=i, text=f"memory number {i}", project="p", kind="note",
                  content_hash=f"{i:032x}")


def write_log(directory: Path, count: int, **kwargs: object) -> None:
    log = EventLog.open(directory, **kwargs)  # type: ignore[arg-type]
    for i in range(1, count + 1):
        log.append([stored(i)], at=AT)
    log.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_appends_are_read_back_in_order_after_reopen(tmp_path: Path) -> None:
    """Records come back in seq order with their events, and a reopened log continues the seq."""
    write_log(tmp_path, 5)
    log = EventLog.open(tmp_path)
    assert log.last_seq == 5
    log.append([Linked(a=1, b=2, similarity=0.9)])
    log.close()
    records = list(read_log(tmp_path))
    assert [r.seq for r in records] == list(range(1, 7))
    assert records[0].event == stored(1) and isinstance(records[-1].event, Linked)


def test_recovery_at_every_byte_cut(tmp_path: Path) -> None:
    """Cutting the log at any byte recovers exactly the whole records before the cut."""
    source = tmp_path / "source"
    write_log(source, 4)
    segment = list_segments(source)[0]
    data = segment.read_bytes()
    ends = [SEGMENT_HEADER.size]
    for i in range(1, 5):
        rec = Record(seq=i, at=AT, event=stored(i))
        ends.append(ends[-1] + len(frame(encode_record(rec))))
    assert ends[-1] == len(data)
    for cut in range(SEGMENT_HEADER.size, len(data) + 1):
        work = tmp_path / f"cut{cut}"
        work.mkdir()
        (work / segment.name).write_bytes(data[:cut])
        log = EventLog.open(work)
        whole = max(i for i, end in enumerate(ends) if end <= cut)
        assert log.last_seq == whole, cut
        log.append([stored(whole + 1)], at=AT)
        log.close()
        assert [r.seq for r in read_log(work, tolerate_tail=False)] == list(range(1, whole + 2))
        shutil.rmtree(work)


def test_zero_filled_tail_is_a_torn_tail(tmp_path: Path) -> None:
    """A tail of zeros (file grown, data never written) is cut, and a copy is kept."""
    write_log(tmp_path, 3)
    segment = list_segments(tmp_path)[0]
    with segment.open("ab") as handle:
        handle.write(b"\0" * 4096)
    log = EventLog.open(tmp_path)
    assert log.last_seq == 3 and log.truncated_bytes == 4096
    log.close()
    assert list((tmp_path / "torn").iterdir())


@pytest.mark.parametrize("where", [0.25, 0.5, 0.75])
def test_bit_flip_before_valid_records_refuses_and_keeps_file(tmp_path: Path, where: float) -> None:
    """A flipped bit followed by valid records refuses to open and changes no byte."""
    write_log(tmp_path, 20)
    segment = list_segments(tmp_path)[0]
    data = bytearray(segment.read_bytes())
    position = int(len(data) * where)
    data[position] ^= 0x10
    segment.write_bytes(bytes(data))
    before = digest(segment)
    with pytest.raises(LogCorrupted) as caught:
        EventLog.open(tmp_path)
    assert "valid record follows" in str(caught.value)
    assert digest(segment) == before
    assert not (tmp_path / "torn").exists()


def test_seq_gap_is_corruption(tmp_path: Path) -> None:
    """Records whose seqs skip a number are refused."""
    write_log(tmp_path, 2)
    segment = list_segments(tmp_path)[0]
    with segment.open("ab") as handle:
        handle.write(frame(encode_record(Record(seq=4, at=AT, event=stored(4)))))
    with pytest.raises(LogCorrupted, match="seq 4 where 3 was due"):
        EventLog.open(tmp_path)


def test_second_writer_is_locked_out(tmp_path: Path) -> None:
    """Only one writer may hold a log directory."""
    log = EventLog.open(tmp_path)
    with pytest.raises(LogLocked):
        EventLog.open(tmp_path)
    log.close()
    EventLog.open(tmp_path).close()


def test_segments_rotate_and_read_across(tmp_path: Path) -> None:
    """Small segments rotate; reading and reopening work across them."""
    write_log(tmp_path, 50, segment_bytes=1024)
    assert len(list_segments(tmp_path)) > 3
    log = EventLog.open(tmp_path, segment_bytes=1024)
    assert log.last_seq == 50
    log.close()
    assert [r.seq for r in read_log(tmp_path, 17)] == list(range(17, 51))


def test_damage_in_a_sealed_segment_is_reported_on_read(tmp_path: Path) -> None:
    """A torn-looking end of a segment that is not the last one is corruption."""
    write_log(tmp_path, 50, segment_bytes=1024)
    first = list_segments(tmp_path)[0]
    first.write_bytes(first.read_bytes()[:-3])
    with pytest.raises(LogCorrupted):
        list(read_log(tmp_path))


class FailingDisk(OsDisk):
    """A disk whose next write or sync fails with a chosen errno."""

    def __init__(self) -> None:
        self.fail_write: int | None = None
        self.fail_sync: int | None = None

    def write(self, fd: int, data: bytes) -> None:
        if self.fail_write is not None:
            super().write(fd, data[: len(data) // 2])  # a short write, then the error
            raise OSError(self.fail_write, "injected")
        super().write(fd, data)

    def sync(self, fd: int) -> None:
        if self.fail_sync is not None:
            raise OSError(self.fail_sync, "injected")
        super().sync(fd)


def test_failed_write_is_not_acknowledged_and_leaves_log_clean(tmp_path: Path) -> None:
    """ENOSPC mid-write fails that batch only; the partial bytes are removed."""
    disk = FailingDisk()
    log = EventLog.open(tmp_path, disk=disk)
    log.append([stored(1)])
    disk.fail_write = errno.ENOSPC
    with pytest.raises(LogWriteFailed):
        log.append([stored(2), stored(3)])
    disk.fail_write = None
    log.append([stored(2)])
    log.close()
    assert [r.seq for r in read_log(tmp_path, tolerate_tail=False)] == [1, 2]


def test_failed_sync_stops_the_writer(tmp_path: Path) -> None:
    """After an fsync failure no later append is acknowledged."""
    disk = FailingDisk()
    log = EventLog.open(tmp_path, disk=disk)
    disk.fail_sync = errno.EIO
    with pytest.raises(LogStopped):
        log.append([stored(1)])
    disk.fail_sync = None
    with pytest.raises(LogStopped):
        log.append([stored(1)])
    log.close()
