"""Records by seq: what the log holds at each seq, read without a scan from its start."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from memlane.events import seek
from memlane.events.log import EventLog, read_log
from memlane.events.model import Record, Stored
from memlane.events.seek import Seeker
from memlane.events.segments import list_segments

AT = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)


def stored(i: int) -> Stored:
    return Stored(id=i, text=f"memory number {i}", project="p", kind="note",
                  content_hash=f"{i:032x}")


def append(log: EventLog, first: int, sizes: list[int]) -> None:
    """Appends of ``sizes`` records each (one frame per append)."""
    for size in sizes:
        log.append([stored(first + i) for i in range(size)], at=AT)
        first += size


@pytest.mark.parametrize("stride", [1, 3, seek.STRIDE])
def test_records_at_any_seqs_are_the_log_s_records_and_the_rest_are_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stride: int) -> None:
    """Seqs across segments and inside batches come back as the log holds them, in order,
    however sparse the index of frames; a seq past the end is missing."""
    monkeypatch.setattr(seek, "STRIDE", stride)
    log = EventLog.open(tmp_path, segment_bytes=2048)
    append(log, 1, [1, 3, 7, 1, 12, 2, 5, 9, 1, 4] * 3)
    assert len(list_segments(tmp_path)) > 3
    everything = list(read_log(tmp_path))
    wanted = [log.last_seq, 1, 2, 17, 18, 40, 41, 42, 5, 5]
    found, missing = Seeker(tmp_path).records([*wanted, log.last_seq + 1])
    assert found == [r for r in everything if r.seq in wanted]
    assert missing == [log.last_seq + 1]
    log.close()


def test_records_appended_after_a_lookup_are_found(tmp_path: Path) -> None:
    """The active segment's index grows with it."""
    log = EventLog.open(tmp_path)
    append(log, 1, [4, 2])
    seeker = Seeker(tmp_path)
    assert [r.seq for r in seeker.records([6])[0]] == [6]
    append(log, 7, [3, 1])
    found, missing = seeker.records([7, 10, 11])
    assert [r.seq for r in found] == [7, 10] and missing == [11]
    log.close()


def test_a_rewritten_segment_is_read_as_it_now_is(tmp_path: Path) -> None:
    """After a rewrite (forget) re-encodes frames under the index, the records read are the
    new ones."""
    log = EventLog.open(tmp_path)
    append(log, 1, [3, 3, 3])
    seeker = Seeker(tmp_path)
    assert seeker.records([5])[0][0].event == stored(5)

    def blank(record: Record) -> Record:
        if record.seq in (2, 5):
            return msgspec.structs.replace(
                record, event=msgspec.structs.replace(record.event, text=""))
        return record

    assert log.rewrite(blank) == 1
    found, _ = seeker.records([1, 5, 9])
    assert [r.event.text for r in found] == ["memory number 1", "", "memory number 9"]
    log.close()
