"""Compacted segments on disk: their format, the damage still detected, and a crash-safe switch."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from memlane.events.compactor import COMMIT, STAGING, CompactionRaced
from memlane.events.errors import LogCorrupted, LogTooNew
from memlane.events.framing import frame
from memlane.events.codec import encode_batch
from memlane.events.log import EventLog, read_log
from memlane.events import model as m
from memlane.events.retention import compact, prepare, switch
from memlane.events.scan import iter_segment
from memlane.events.segments import (
    COMPACTED,
    COMPACTED_TAIL,
    MAGIC,
    SEGMENT_HEADER,
    compacted_header,
    list_segments,
    parse_header,
)
from memlane.events.vector_codes import held_rows
from tests.history import START, History, generate

SEGMENT = 16 * 1024


class Crash(Exception):
    """Stands for kill -9 at a step (the daemon test kills a real process)."""


def small_log(directory: Path) -> tuple[EventLog, History]:
    log = EventLog.open(directory, segment_bytes=SEGMENT)
    history = generate(log, days=12, stores=4, prompts=10, switch_at=6, forgets=1, dims=(8, 16))
    return log, history


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in list_segments(directory)}


def record(seq: int, event: m.Event) -> m.Record:
    return m.Record(seq=seq, at=START, event=event)


def test_a_compacted_segment_may_skip_seqs_inside_its_range_only(tmp_path: Path) -> None:
    """Gaps inside a compacted segment's range read; a record past it is damage."""
    kept = [record(2, m.Restored(memory=1)), record(5, m.Restored(memory=1))]
    (tmp_path / "00000000000000000001.seg").write_bytes(
        compacted_header(1, 6) + frame(encode_batch(kept)))
    (tmp_path / "00000000000000000007.seg").write_bytes(
        SEGMENT_HEADER.pack(MAGIC, 2, 7) + frame(encode_batch([record(7, m.Restored(memory=1))])))
    assert [r.seq for r in read_log(tmp_path)] == [2, 5, 7]
    (tmp_path / "00000000000000000001.seg").write_bytes(
        compacted_header(1, 4) + frame(encode_batch(kept)))
    with pytest.raises(LogCorrupted, match="seq 5 where 3 was due"):
        list(read_log(tmp_path))


def test_a_gap_outside_a_compacted_segment_is_still_damage(tmp_path: Path) -> None:
    """The segment after a compacted one must start right after its range."""
    (tmp_path / "00000000000000000001.seg").write_bytes(
        compacted_header(1, 6) + frame(encode_batch([record(3, m.Restored(memory=1))])))
    (tmp_path / "00000000000000000008.seg").write_bytes(
        SEGMENT_HEADER.pack(MAGIC, 2, 8) + frame(encode_batch([record(8, m.Restored(memory=1))])))
    with pytest.raises(LogCorrupted, match="expected 7"):
        list(read_log(tmp_path))


@pytest.mark.parametrize("sealed", [True, False])
def test_a_log_from_a_newer_memlane_is_refused_plainly(tmp_path: Path, sealed: bool) -> None:
    """A segment of an unknown format version, sealed or last, stops the open before
    anything is read or changed, and says to upgrade."""
    newer = tmp_path / "00000000000000000001.seg"
    newer.write_bytes(SEGMENT_HEADER.pack(MAGIC, 9, 1) + frame(encode_batch([record(1, m.Restored(
        memory=1))])))
    if sealed:
        (tmp_path / "00000000000000000002.seg").write_bytes(SEGMENT_HEADER.pack(MAGIC, 2, 2))
    before = snapshot(tmp_path)
    with pytest.raises(LogTooNew, match="written by a newer memlane than this one.*Upgrade"):
        EventLog.open(tmp_path)
    assert snapshot(tmp_path) == before
    with pytest.raises(LogCorrupted, match="newer than this memlane reads: upgrade memlane"):
        list(read_log(tmp_path))


STEPS = ["surveyed", "segment_staged", "manifest_written", "committed", "segment_installed"]


@pytest.mark.parametrize("step,occurrence", [(s, 1) for s in STEPS] + [("segment_staged", 3),
                                                                        ("segment_installed", 2),
                                                                        ("segment_installed", 3),
                                                                        ("installed", 1)])
def test_a_crash_at_any_step_leaves_the_old_segments_or_the_new(
        tmp_path: Path, step: str, occurrence: int) -> None:
    """After a crash and a reopen, every segment is the original, or every one compacted."""
    log, history = small_log(tmp_path / "a")
    old = snapshot(log.directory)
    twin, _ = small_log(tmp_path / "b")
    compact(twin, cutoff=history.now, floors=[twin.last_seq])
    new = snapshot(twin.directory)
    twin.close()
    assert old != new
    seen: list[str] = []

    def crash(name: str) -> None:
        seen.append(name)
        if name == step and seen.count(name) == occurrence:
            raise Crash(name)

    with pytest.raises(Crash):
        compact(log, cutoff=history.now, floors=[log.last_seq], step=crash)
    log.close()
    reopened = EventLog.open(log.directory)
    assert snapshot(log.directory) in (old, new)
    assert not (log.directory / STAGING).exists() and not (log.directory / COMMIT).exists()
    assert [r.seq for r in read_log(log.directory)][-1] == reopened.last_seq
    reopened.close()


def test_a_segment_rewritten_meanwhile_stops_the_switch(tmp_path: Path) -> None:
    """A forget that rewrote a segment after it was staged: nothing is switched."""
    log, history = small_log(tmp_path)
    prepared = prepare(log.directory, log.last_seq, cutoff=history.now, floors=[log.last_seq])
    first = log.directory / prepared.staged.segments[0].name
    before = snapshot(log.directory)
    os.utime(first, ns=(1, 1))
    with pytest.raises(CompactionRaced):
        switch(log, prepared)
    assert snapshot(log.directory) == before
    assert not (log.directory / STAGING).exists()
    log.close()


def test_only_segments_below_every_floor_and_the_window_are_compacted(tmp_path: Path) -> None:
    """A floor (a hold, the projections) and the retention window both stop compaction."""
    log, history = small_log(tmp_path)
    floor = log.last_seq // 3
    prepared = compact(log, cutoff=history.now, floors=[floor])
    assert prepared.horizon == floor
    assert all(int(Path(s.name).stem) < floor for s in prepared.staged.segments)
    window = compact(log, cutoff=history.now - timedelta(days=30), floors=[log.last_seq])
    assert window.staged.segments == [] and window.horizon == 1
    log.close()


def segment_records(path: Path) -> tuple[int, list[m.Record]]:
    """A segment's format version and its records."""
    data = path.read_bytes()
    header = parse_header(path, data)
    assert not isinstance(header, str)
    return header.version, [r for r in iter_segment(path, data, None) if isinstance(r, m.Record)]


def test_compacted_segments_hold_vectors_as_runs_of_codes_in_format_4(tmp_path: Path) -> None:
    """Every vector a compacted segment keeps is in an ``Embeddings`` run of int8 codes (a
    quarter of the floats), in format version 4, which a memlane reading up to 3 refuses (it
    would not know the runs); the live tail keeps each ``Embedded`` with the model's floats.
    Compacting again changes nothing."""
    log, history = small_log(tmp_path)
    log.close()  # records the acknowledged watermark: every sealed segment is compactable
    log = EventLog.open(tmp_path)
    compact(log, cutoff=history.now, floors=[log.last_seq])
    once = snapshot(tmp_path)
    assert compact(log, cutoff=history.now, floors=[log.last_seq]).staged.segments == []
    assert snapshot(tmp_path) == once
    log.close()
    *sealed, tail = list_segments(tmp_path)
    runs = 0
    for version, records in [segment_records(path) for path in sealed]:
        assert version in (2, COMPACTED) and COMPACTED == 4
        for r in records:
            assert not (isinstance(r.event, m.Embedded) and r.event.vector)
            if isinstance(r.event, m.Embeddings):
                assert version == 4 and len(r.event.codes) == len(r.event.memories) * r.event.dims
                runs += 1
    assert runs > 0
    assert any(isinstance(r.event, m.Embedded) and len(r.event.vector) == 4 * r.event.dims
               for r in segment_records(tail)[1])


def test_a_segment_compacted_before_codes_is_read_and_coded_by_the_next_compaction(
        tmp_path: Path) -> None:
    """A format-3 segment (an older compaction, vectors as floats) still reads; compacting
    again turns its vectors into a run of codes that the projection holds as it held them."""
    vector = np.random.default_rng(3).standard_normal(8).astype("<f4")
    older = [record(1, m.Stored(id=1, text="a memory to keep", project="p", kind="note",
                                content_hash="0" * 32)),
             record(3, m.Embedded(memory=1, vector=vector.tobytes(), dims=8, model="t",
                                  pipeline="t:8"))]
    (tmp_path / "00000000000000000001.seg").write_bytes(
        SEGMENT_HEADER.pack(MAGIC, 3, 1) + COMPACTED_TAIL.pack(4) + frame(encode_batch(older)))
    (tmp_path / "00000000000000000005.seg").write_bytes(
        SEGMENT_HEADER.pack(MAGIC, 2, 5) + frame(encode_batch([record(5, m.Restored(memory=1))])))
    assert [r.seq for r in read_log(tmp_path)] == [1, 3, 5]
    log = EventLog.open(tmp_path)
    log.append([m.Restored(memory=1)])
    log.close()  # records the acknowledged watermark: compactable up to it
    log = EventLog.open(tmp_path)
    compact(log, cutoff=START + timedelta(days=1), floors=[log.last_seq])
    log.close()
    version, records = segment_records(tmp_path / "00000000000000000001.seg")
    assert version == 4 and [r.seq for r in records] == [1, 3]
    run = records[1].event
    assert isinstance(run, m.Embeddings) and run.memories == (1,)
    assert held_rows([run.codes], [True], 8).tobytes() == \
        held_rows([vector.tobytes()], [False], 8).tobytes()


ORPHAN = """
import sys, time
from pathlib import Path
from memlane.events.compactor import STAGING, hold_staging
directory = Path(sys.argv[1])
assert hold_staging(directory) is not None
print("held", flush=True)
time.sleep(0.5)
(directory / STAGING).mkdir()
(directory / STAGING / "00000000000000000001.seg").write_bytes(b"half a segment")
"""


def test_an_open_waits_for_a_staging_process_before_it_drops_staging(tmp_path: Path) -> None:
    """A staging child may outlive its daemon (killed -9) for a moment: the next open waits
    for the staging lock it holds, then drops what it staged (the child stages only while
    its daemon lives: tests/reliability/test_compaction_kill9.py)."""
    log, _ = small_log(tmp_path)
    log.close()
    with subprocess.Popen([sys.executable, "-c", ORPHAN, str(tmp_path)],
                          stdout=subprocess.PIPE) as child:
        assert child.stdout is not None and child.stdout.readline() == b"held\n"
        EventLog.open(tmp_path).close()
        assert child.wait(timeout=30) == 0
    assert not (tmp_path / STAGING).exists()
