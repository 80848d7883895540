"""Reading from a seq and opening the log decode only what they need: the frames before a
read's first seq, and every frame at open, are checked by their seqs alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from memlane.events import scan
from memlane.events.errors import LogCorrupted
from memlane.events.log import EventLog, read_log
from memlane.events.scan import scan_segment
from memlane.events.segments import SEGMENT_HEADER, list_segments, segment_header

from tests.events.test_log import AT, batch_frame, stored, write_log


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of records in each frame fully decoded from now on."""
    counts: list[int] = []
    real = scan.decode_frame

    def counting(payload: bytes) -> list[object]:
        records = real(payload)
        counts.append(len(records))
        return records

    monkeypatch.setattr(scan, "decode_frame", counting)
    return counts


def test_a_read_from_a_seq_decodes_no_frame_before_it(tmp_path: Path,
                                                      decoded: list[int]) -> None:
    write_log(tmp_path, 50)
    assert [r.seq for r in read_log(tmp_path, 48)] == [48, 49, 50]
    assert decoded == [1, 1, 1]


def test_a_frame_reaching_the_first_seq_is_read_whole(tmp_path: Path) -> None:
    log = EventLog.open(tmp_path)
    log.append([stored(1), stored(2), stored(3)], at=AT)
    log.append([stored(4), stored(5)], at=AT)
    log.close()
    assert [r.seq for r in read_log(tmp_path, 2)] == [2, 3, 4, 5]
    assert [r.seq for r in read_log(tmp_path, 4, upto=4)] == [4]


def test_skipped_frames_are_still_checked_for_seq_gaps(tmp_path: Path) -> None:
    segment = tmp_path / "00000000000000000001.seg"
    segment.write_bytes(segment_header(1) + batch_frame(1, 2) + batch_frame(4) + batch_frame(5))
    with pytest.raises(LogCorrupted, match="seq 4 where 3 was due"):
        list(read_log(tmp_path, 5))


def test_opening_the_log_decodes_no_record(tmp_path: Path, decoded: list[int]) -> None:
    write_log(tmp_path, 30)
    log = EventLog.open(tmp_path)
    assert log.last_seq == 30
    log.close()
    assert decoded == []


@pytest.mark.parametrize("cut", [0, 1, 7, 20])
def test_a_scan_by_seqs_finds_what_a_full_scan_finds(tmp_path: Path, cut: int) -> None:
    write_log(tmp_path, 12)
    (path,) = list_segments(tmp_path)
    data = path.read_bytes()
    data = data[: len(data) - cut] if cut else data
    assert len(data) > SEGMENT_HEADER.size
    assert scan_segment(path, data, None, decode=False) == scan_segment(path, data, None)


def test_a_scan_by_seqs_refuses_a_seq_gap(tmp_path: Path) -> None:
    path = tmp_path / "00000000000000000001.seg"
    data = segment_header(1) + batch_frame(1) + batch_frame(3)
    with pytest.raises(LogCorrupted, match="seq 3 where 2 was due"):
        scan_segment(path, data, None, decode=False)
