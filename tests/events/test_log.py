"""The event log: durable appends, recovery from torn tails, refusal of real damage."""

from __future__ import annotations

import errno
import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from memlane.events import log as log_module
from memlane.events.acked import ACK_FILE
from memlane.events.codec import encode_batch
from memlane.events.disk import OsDisk
from memlane.events.errors import LogCorrupted, LogLocked, LogStopped, LogWriteFailed
from memlane.events.framing import frame
from memlane.events.log import EventLog, read_log
from memlane.events.model import Linked, Record, Stored
from memlane.events import rewrite as rewrite_module
from memlane.events.rewrite import Transform
from memlane.events.segments import (
    MAGIC,
    SEGMENT_HEADER,
    list_segments,
    segment_header,
    segment_name,
)

AT = datetime(2026, 11, 24, 14, 2, tzinfo=UTC)


def stored(i: int) -> Stored:
    return Stored(id=i, text=f"memory number {i}", project="p", kind="note",
                  content_hash=f"{i:032x}")


def write_log(directory: Path, count: int, **kwargs: object) -> None:
    log = EventLog.open(directory, **kwargs)  # type: ignore[arg-type]
    for i in range(1, count + 1):
        log.append([stored(i)], at=AT)
    log.close()


def records(*seqs: int) -> list[Record]:
    return [Record(seq=n, at=AT, event=stored(n)) for n in seqs]


def batch_frame(*seqs: int) -> bytes:
    """The bytes one append of ``seqs`` writes: one frame holding the whole batch."""
    return frame(encode_batch(records(*seqs)))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_appends_are_read_back_in_order_after_reopen(tmp_path: Path) -> None:
    """Records come back in seq order with their events, and a reopened log continues the seq."""
    write_log(tmp_path, 5)
    log = EventLog.open(tmp_path)
    assert log.last_seq == 5
    log.append([Linked(a=1, b=2, similarity=0.9)])
    log.close()
    read = list(read_log(tmp_path))
    assert [r.seq for r in read] == list(range(1, 7))
    assert read[0].event == stored(1) and isinstance(read[-1].event, Linked)


def test_each_append_is_one_frame(tmp_path: Path) -> None:
    """A segment is its header, then one frame per append holding that append's batch."""
    log = EventLog.open(tmp_path)
    log.append([stored(1)], at=AT)
    log.append([stored(2), stored(3), stored(4)], at=AT)
    log.close()
    expected = segment_header(1) + batch_frame(1) + batch_frame(2, 3, 4)
    assert list_segments(tmp_path)[0].read_bytes() == expected


def test_recovery_at_every_byte_cut(tmp_path: Path) -> None:
    """Cutting the log at any byte recovers exactly the whole batches before the cut: the cut
    points are the frame boundaries of the batches, never a record inside a batch."""
    source = tmp_path / "source"
    log = EventLog.open(source)
    batches = [[1], [2, 3, 4], [5, 6]]
    for batch in batches:
        log.append([stored(n) for n in batch], at=AT)
    log.close()
    segment = list_segments(source)[0]
    data = segment.read_bytes()
    boundaries = {SEGMENT_HEADER.size: 0}  # frame end -> last seq whole there
    end = SEGMENT_HEADER.size
    for batch in batches:
        end += len(batch_frame(*batch))
        boundaries[end] = batch[-1]
    assert end == len(data)
    for cut in range(SEGMENT_HEADER.size, len(data) + 1):
        work = tmp_path / f"cut{cut}"
        work.mkdir()
        (work / segment.name).write_bytes(data[:cut])
        log = EventLog.open(work)
        whole = boundaries[max(b for b in boundaries if b <= cut)]
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
    """A flipped bit followed by valid records refuses to open and changes no byte, even with
    no acknowledged watermark to compare with."""
    write_log(tmp_path, 20)
    (tmp_path / ACK_FILE).unlink()
    segment = list_segments(tmp_path)[0]
    data = bytearray(segment.read_bytes())
    position = int(len(data) * where)
    data[position] ^= 0x10
    segment.write_bytes(bytes(data))
    before = digest(segment)
    with pytest.raises(LogCorrupted) as caught:
        EventLog.open(tmp_path)
    assert "valid frame follows" in str(caught.value)
    assert digest(segment) == before
    assert not (tmp_path / "torn").exists()


@pytest.mark.parametrize("batch", [(4,), (3, 5)])
def test_seq_gap_is_corruption(tmp_path: Path, batch: tuple[int, ...]) -> None:
    """Records whose seqs skip a number, between batches or inside one, are refused."""
    write_log(tmp_path, 2)
    segment = list_segments(tmp_path)[0]
    with segment.open("ab") as handle:
        handle.write(batch_frame(*batch))
    with pytest.raises(LogCorrupted, match=f"seq {batch[-1]} where {batch[-1] - 1} was due"):
        EventLog.open(tmp_path)


def write_v1_segment(directory: Path, seqs: range) -> Path:
    """A segment as version 1 wrote it: one record (a msgpack map) per frame."""
    directory.mkdir()
    path = directory / segment_name(seqs[0])
    frames = [frame(msgspec.msgpack.encode(r)) for r in records(*seqs)]
    path.write_bytes(SEGMENT_HEADER.pack(MAGIC, 1, seqs[0]) + b"".join(frames))
    return path


def test_a_version_1_log_is_read_and_continued_in_a_new_segment(tmp_path: Path) -> None:
    """A version-1 segment stays readable and untouched; appends go to a new version-2
    segment."""
    old = write_v1_segment(tmp_path / "log", range(1, 4))
    before = digest(old)
    log = EventLog.open(tmp_path / "log")
    assert log.last_seq == 3
    log.append([stored(4), stored(5)], at=AT)
    log.close()
    assert digest(old) == before
    assert list_segments(tmp_path / "log") == [old, tmp_path / "log" / segment_name(4)]
    assert list(read_log(tmp_path / "log", tolerate_tail=False)) == records(1, 2, 3, 4, 5)


def test_an_oversized_batch_is_split_into_frames_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch too big for one frame is written as several frames, in order; only such a batch
    can be cut after one of its frames."""
    monkeypatch.setattr(log_module, "MAX_PAYLOAD", len(encode_batch(records(1, 2))))
    log = EventLog.open(tmp_path)
    log.append([stored(n) for n in range(1, 6)], at=AT)
    log.close()
    segment = list_segments(tmp_path)[0]
    first_frame = batch_frame(1, 2)
    assert segment.read_bytes().startswith(segment_header(1) + first_frame)
    assert list(read_log(tmp_path, tolerate_tail=False)) == records(1, 2, 3, 4, 5)
    segment.write_bytes(segment.read_bytes()[: SEGMENT_HEADER.size + len(first_frame) + 5])
    (tmp_path / ACK_FILE).unlink()  # as if the power failed before the batch was acknowledged
    log = EventLog.open(tmp_path)
    assert log.last_seq == 2
    log.close()


def test_a_record_too_big_for_a_frame_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A single record larger than a frame holds fails its batch and writes nothing."""
    monkeypatch.setattr(log_module, "MAX_PAYLOAD", 64)
    log = EventLog.open(tmp_path)
    with pytest.raises(LogWriteFailed, match="more than a frame holds"):
        log.append([stored(1)], at=AT)
    assert log.last_seq == 0
    log.close()
    assert list_segments(tmp_path)[0].read_bytes() == segment_header(1)


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


def blank_text(seq: int) -> Transform:
    """A transform that blanks the text of the Stored event at ``seq``."""

    def transform(record: Record) -> Record:
        if record.seq != seq:
            return record
        assert isinstance(record.event, Stored)
        return msgspec.structs.replace(
            record, event=msgspec.structs.replace(record.event, text=""))

    return transform


def test_a_rewrite_re_encodes_only_the_frame_it_changes(tmp_path: Path) -> None:
    """A rewrite replaces the frame holding a changed record and copies the others verbatim."""
    log = EventLog.open(tmp_path)
    for batch in ([1, 2], [3, 4], [5]):
        log.append([stored(n) for n in batch], at=AT)
    assert log.rewrite(blank_text(3)) == 1
    log.append([stored(6)], at=AT)
    log.close()
    expected = records(1, 2, 3, 4, 5, 6)
    expected[2] = blank_text(3)(expected[2])
    changed = frame(encode_batch(expected[2:4]))
    segment = list_segments(tmp_path)[0]
    assert segment.read_bytes() == (segment_header(1) + batch_frame(1, 2) + changed
                                    + batch_frame(5) + batch_frame(6))
    assert list(read_log(tmp_path, tolerate_tail=False)) == expected


@pytest.mark.parametrize(("wrong", "refusal"), [("untransformed records", "did not read back"),
                                                 ("shifted seqs", "seq 13 where 3 was due")])
def test_a_rewrite_that_does_not_read_back_leaves_the_original(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wrong: str, refusal: str) -> None:
    """The rewritten bytes are read back before they replace the segment: a re-encoded frame
    holding other records than the transformed ones, or seqs out of order, is refused."""
    log = EventLog.open(tmp_path)
    for batch in ([1, 2], [3, 4], [5]):
        log.append([stored(n) for n in batch], at=AT)
    segment = list_segments(tmp_path)[0]
    before = digest(segment)

    def encode_wrongly(batch: list[Record]) -> bytes:
        seqs = [r.seq for r in batch]
        return encode_batch(records(*seqs) if wrong == "untransformed records"
                            else records(*[n + 10 for n in seqs]))

    monkeypatch.setattr(rewrite_module, "encode_batch", encode_wrongly)
    with pytest.raises(LogCorrupted, match=refusal):
        log.rewrite(blank_text(3))
    log.close()
    assert digest(segment) == before


def test_a_rewrite_that_changes_nothing_leaves_the_files(tmp_path: Path) -> None:
    """A transform that changes no record rewrites no segment."""
    write_log(tmp_path, 3)
    before = digest(list_segments(tmp_path)[0])
    log = EventLog.open(tmp_path)
    assert log.rewrite(lambda record: record) == 0
    log.close()
    assert digest(list_segments(tmp_path)[0]) == before


def test_a_rewritten_version_1_segment_becomes_version_2(tmp_path: Path) -> None:
    """Rewriting a version-1 segment writes its changed records as a batch under a version-2
    header and copies the other frames verbatim."""
    old = write_v1_segment(tmp_path / "log", range(1, 4))
    v1_frames = old.read_bytes()[SEGMENT_HEADER.size:]
    log = EventLog.open(tmp_path / "log")
    log.rewrite(blank_text(3))
    log.close()
    data = old.read_bytes()
    assert data[:SEGMENT_HEADER.size] == segment_header(1)
    expected = records(1, 2, 3)
    expected[2] = blank_text(3)(expected[2])
    kept = len(v1_frames) - len(frame(msgspec.msgpack.encode(records(3)[0])))
    assert data[SEGMENT_HEADER.size:] == v1_frames[:kept] + frame(encode_batch(expected[2:]))
    assert list(read_log(tmp_path / "log", tolerate_tail=False)) == expected
