"""The acknowledged watermark: a torn tail beyond it is cut, damage at or below it is refused."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from memlane.events import log as log_module
from memlane.events.acked import ACK_EVERY, ACK_FILE, read_acked
from memlane.events.disk import OsDisk
from memlane.events.errors import LogCorrupted, LogDamagedBelowAck, WatermarkDamaged
from memlane.events.framing import HEADER, frame
from memlane.events.codec import encode_batch
from memlane.events.log import EventLog, read_log
from memlane.events.model import Record, Stored
from memlane.events.segments import SEGMENT_HEADER, list_segments
from tests.events.test_log import AT, batch_frame, records, stored

BATCHES = [[1], [2, 3], [4]]


def acked_log(directory: Path) -> Path:
    """A closed log of ``BATCHES``, every one acknowledged and recorded; returns its segment."""
    log = EventLog.open(directory)
    for batch in BATCHES:
        log.append([stored(n) for n in batch], at=AT)
    log.close()
    assert read_acked(directory) == 4
    return list_segments(directory)[0]


def frame_starts() -> list[tuple[int, int]]:
    """(offset, first seq) of each frame of ``acked_log``, and the end as (end, 0)."""
    starts, offset = [], SEGMENT_HEADER.size
    for batch in BATCHES:
        starts.append((offset, batch[0]))
        offset += len(batch_frame(*batch))
    return [*starts, (offset, 0)]


def frame_at(position: int) -> tuple[int, int]:
    """(offset, first seq) of the frame holding byte ``position``."""
    return max((s for s in frame_starts()[:-1] if s[0] <= position), key=lambda s: s[0])


def test_a_torn_tail_at_every_byte_of_the_last_frame_is_cut(tmp_path: Path) -> None:
    """A last batch that never finished, cut at any byte, is cut off and kept aside (0600);
    every acknowledged record stays and the log goes on."""
    template = tmp_path / "template"
    segment = acked_log(template)
    blob = batch_frame(5, 6)
    for keep in range(1, len(blob)):
        work = tmp_path / str(keep)
        shutil.copytree(template, work)
        with (work / segment.name).open("ab") as handle:
            handle.write(blob[:keep])
        log = EventLog.open(work)
        assert log.last_seq == 4, keep
        cut = log.tail_cut
        assert cut is not None and (cut.cut_bytes, cut.after_seq) == (keep, 4)
        assert not cut.possibly_acknowledged
        assert cut.copy.read_bytes() == blob[:keep]
        assert stat.S_IMODE(cut.copy.stat().st_mode) == 0o600
        log.append([stored(5)], at=AT)
        log.close()
        assert list(read_log(work, tolerate_tail=False)) == records(1, 2, 3, 4, 5)
        shutil.rmtree(work)


def test_a_damaged_full_length_frame_beyond_the_watermark_is_cut_and_reported(
        tmp_path: Path) -> None:
    """A whole-length last frame with a bad checksum, past the watermark, may be a torn write
    or a damaged acknowledged batch: it is cut, kept, and reported as possibly acknowledged."""
    segment = acked_log(tmp_path)
    damaged = bytearray(batch_frame(5))
    damaged[-3] ^= 0x04
    with segment.open("ab") as handle:
        handle.write(damaged)
    log = EventLog.open(tmp_path)
    assert log.last_seq == 4
    cut = log.tail_cut
    assert cut is not None and cut.possibly_acknowledged and cut.reason == "checksum mismatch"
    assert cut.copy.read_bytes() == bytes(damaged)
    log.close()


def test_a_bit_flip_at_or_below_the_watermark_is_refused_naming_its_position(
        tmp_path: Path) -> None:
    """A flipped bit anywhere in acknowledged frames, the last one included, refuses to open,
    names the frame's byte and first seq, and changes no byte."""
    template = tmp_path / "template"
    segment = acked_log(template)
    data = segment.read_bytes()
    work = tmp_path / "work"
    for position in range(SEGMENT_HEADER.size, len(data)):
        shutil.copytree(template, work)
        flipped = bytearray(data)
        flipped[position] ^= 1 << (position % 8)
        (work / segment.name).write_bytes(flipped)
        with pytest.raises(LogDamagedBelowAck) as caught:
            EventLog.open(work)
        offset, seq = frame_at(position)
        assert (caught.value.offset, caught.value.seq, caught.value.acked) == (offset, seq, 4)
        assert f"at byte {offset} (seq {seq})" in str(caught.value)
        assert (work / segment.name).read_bytes() == flipped
        assert not (work / "torn").exists()
        shutil.rmtree(work)


def test_a_log_truncated_below_the_watermark_is_refused(tmp_path: Path) -> None:
    """A segment cut at any byte below the acknowledged end is refused, never reopened with
    fewer records (which would hand out acknowledged seqs again)."""
    template = tmp_path / "template"
    segment = acked_log(template)
    data = segment.read_bytes()
    work = tmp_path / "work"
    for cut in range(SEGMENT_HEADER.size, len(data)):
        shutil.copytree(template, work)
        (work / segment.name).write_bytes(data[:cut])
        with pytest.raises(LogDamagedBelowAck) as caught:
            EventLog.open(work)
        expected = frame_at(cut) if cut > SEGMENT_HEADER.size else (cut, 1)
        assert (caught.value.offset, caught.value.seq) == expected, cut
        shutil.rmtree(work)


def test_a_missing_last_segment_or_log_is_refused(tmp_path: Path) -> None:
    """Losing the last segment, or every segment, below the watermark is refused."""
    log = EventLog.open(tmp_path, segment_bytes=300)
    for n in range(1, 21):
        log.append([stored(n)], at=AT)
    log.close()
    segments = list_segments(tmp_path)
    segments[-1].unlink()
    with pytest.raises(LogDamagedBelowAck, match="ends at byte"):
        EventLog.open(tmp_path)
    for segment in segments[:-1]:
        segment.unlink()
    with pytest.raises(LogDamagedBelowAck, match="holds no segment"):
        EventLog.open(tmp_path)


def test_the_callers_floor_refuses_what_the_watermark_missed(tmp_path: Path) -> None:
    """A seq the caller saw (the projections' applied seq) is a floor too, even where no
    watermark was recorded."""
    segment = acked_log(tmp_path)
    (tmp_path / ACK_FILE).unlink()
    end_of_seq_3 = frame_starts()[2][0]
    segment.write_bytes(segment.read_bytes()[:end_of_seq_3])
    with pytest.raises(LogDamagedBelowAck, match="the caller") as caught:
        EventLog.open(tmp_path, acknowledged_at_least=4)
    assert (caught.value.seq, caught.value.acked) == (4, 4)
    log = EventLog.open(tmp_path, acknowledged_at_least=3)
    assert log.last_seq == 3
    log.close()


class CountingDisk(OsDisk):
    """A real disk that counts syncs of segments and replacements of the watermark."""

    def __init__(self) -> None:
        self.syncs = 0
        self.watermarks = 0

    def sync(self, fd: int) -> None:
        self.syncs += 1
        super().sync(fd)

    def create(self, path: Path, data: bytes) -> None:
        if path.name == ACK_FILE:
            self.watermarks += 1
            self.syncs -= 1  # counted apart
        super().create(path, data)


def test_the_watermark_costs_no_sync_on_most_appends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Appends sync once each; the watermark is written every ``ACK_EVERY`` appends and on
    close, as a private file."""
    monkeypatch.setattr(log_module, "ACK_INTERVAL", 3600.0)
    disk = CountingDisk()
    log = EventLog.open(tmp_path, disk=disk)
    syncs_at_open = disk.syncs
    appends = 3 * ACK_EVERY + 5
    for n in range(1, appends + 1):
        log.append([stored(n)], at=AT)
    assert disk.syncs - syncs_at_open == appends
    assert disk.watermarks == 3 and read_acked(tmp_path) == 3 * ACK_EVERY
    log.close()
    assert disk.watermarks == 4 and read_acked(tmp_path) == appends
    assert stat.S_IMODE((tmp_path / ACK_FILE).stat().st_mode) == 0o600


def test_a_damaged_watermark_refuses_to_open(tmp_path: Path) -> None:
    """An unreadable watermark is reported, not ignored."""
    acked_log(tmp_path)
    (tmp_path / ACK_FILE).write_bytes(b"x" * 20)
    with pytest.raises(WatermarkDamaged, match="delete that file"):
        EventLog.open(tmp_path)


def frame_holding_ascii_frame() -> tuple[str, bytes]:
    """A text whose UTF-8 bytes are themselves one whole, checksummed frame."""
    for n in range(10_000):
        inner = frame(f"crafted {n}".encode())
        if all(b < 0x80 for b in inner):
            return inner.decode(), inner
    raise AssertionError("no ascii frame found")


def test_a_frame_inside_a_torn_batch_is_not_taken_for_damage(tmp_path: Path) -> None:
    """A stored text holding frame-like bytes, torn at any byte of its batch, is a torn tail:
    the frame inside the batch's extent is its payload, not a later frame."""
    text, inner = frame_holding_ascii_frame()
    template = tmp_path / "template"
    segment = acked_log(template)
    batch = [Record(seq=5, at=AT, event=Stored(id=5, text=text, project="p", kind="note",
                                                content_hash="0" * 32))]
    blob = frame(encode_batch(batch))
    assert inner in blob
    for keep in range(1, len(blob)):
        work = tmp_path / str(keep)
        shutil.copytree(template, work)
        with (work / segment.name).open("ab") as handle:
            handle.write(blob[:keep])
        log = EventLog.open(work)
        assert log.last_seq == 4, keep
        log.close()
        shutil.rmtree(work)


@pytest.mark.parametrize("which", [1, 2])
def test_a_damaged_length_field_is_still_damage(tmp_path: Path, which: int) -> None:
    """With no watermark, a frame whose length field grew is still told from a torn tail: it
    checks out at its true end, where the next frame starts (or the file ends)."""
    segment = acked_log(tmp_path)
    (tmp_path / ACK_FILE).unlink()
    offset = frame_starts()[which][0]
    data = bytearray(segment.read_bytes())
    length = HEADER.unpack_from(data, offset)[0]
    data[offset:offset + 4] = (length + 3000).to_bytes(4, "little")
    segment.write_bytes(bytes(data))
    reason = "valid frame follows" if which == 1 else "length field is damaged"
    with pytest.raises(LogCorrupted, match=reason):
        EventLog.open(tmp_path)
