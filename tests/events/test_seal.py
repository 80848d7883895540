"""Sealed segments carry a digest; damage to one is reported by verification, not at open."""

from __future__ import annotations

import hashlib
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from memlane.events import log as log_module
from memlane.events.errors import LogCorrupted
from memlane.events.framing import Frame, iter_frames
from memlane.events.log import EventLog, read_log
from memlane.events.seal import digest_path, verify_sealed
from memlane.events.segments import SEGMENT_HEADER, list_segments
from tests.events.test_log import AT, blank_text, stored

SEGMENT_BYTES = 400


def sealed_log(directory: Path, count: int = 30) -> list[Path]:
    """A closed log of ``count`` single-record batches over several small segments."""
    log = EventLog.open(directory, segment_bytes=SEGMENT_BYTES)
    for n in range(1, count + 1):
        log.append([stored(n)], at=AT)
    log.close()
    segments = list_segments(directory)
    assert len(segments) >= 4
    return segments


def test_a_segment_is_sealed_when_the_log_moves_on(tmp_path: Path) -> None:
    """Every segment but the last has a private ``sha256sum``-style digest beside it."""
    segments = sealed_log(tmp_path)
    for segment in segments[:-1]:
        sidecar = digest_path(segment)
        expected = hashlib.sha256(segment.read_bytes()).hexdigest()
        assert sidecar.read_text() == f"{expected}  {segment.name}\n"
        assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600
    assert not digest_path(segments[-1]).exists()
    report = verify_sealed(tmp_path)
    assert (report.checked, report.problems) == (len(segments) - 1, [])


def test_a_bit_flip_in_a_sealed_segment_opens_and_is_reported(tmp_path: Path) -> None:
    """Damage to an old segment does not stop the log opening; verification names it, with
    the byte where its frames stop checking out."""
    segments = sealed_log(tmp_path)
    target = segments[1]
    data = bytearray(target.read_bytes())
    data[SEGMENT_HEADER.size + 30] ^= 0x20
    target.write_bytes(bytes(data))
    log = EventLog.open(tmp_path, segment_bytes=SEGMENT_BYTES)
    report = log.verify_sealed()
    log.close()
    [problem] = report.problems
    assert (problem.segment, problem.kind, problem.offset) == (target, "damaged",
                                                              SEGMENT_HEADER.size)
    assert "differs from its digest" in problem.detail
    with pytest.raises(LogCorrupted):
        list(read_log(tmp_path))


def test_a_sealed_segment_cut_at_a_frame_boundary_is_reported(tmp_path: Path) -> None:
    """Losing whole frames off an old segment leaves every frame valid; the digest still
    tells."""
    segments = sealed_log(tmp_path)
    target = segments[0]
    data = target.read_bytes()
    frames = [f for f in iter_frames(data, SEGMENT_HEADER.size) if isinstance(f, Frame)]
    assert len(frames) > 1
    target.write_bytes(data[:frames[-1].offset])
    [problem] = verify_sealed(tmp_path).problems
    assert problem.kind == "damaged" and problem.offset is None
    assert "every frame checks out" in problem.detail


def test_a_segment_sealed_without_a_digest_is_sealed_by_the_writer(tmp_path: Path) -> None:
    """Segments from before digests (or whose digest write failed) are reported unsealed by
    the read-only check, and sealed by the writer's, once their frames check out."""
    segments = sealed_log(tmp_path)
    for segment in segments[:-1]:
        digest_path(segment).unlink()
    assert {p.kind for p in verify_sealed(tmp_path).problems} == {"unsealed"}
    log = EventLog.open(tmp_path, segment_bytes=SEGMENT_BYTES)
    report = log.verify_sealed()
    log.close()
    assert (report.sealed, report.problems) == (len(segments) - 1, [])
    assert verify_sealed(tmp_path).problems == []


def test_a_rewrite_keeps_sealed_digests_true(tmp_path: Path) -> None:
    """``memlane forget`` rewrites an old segment and seals it again with its new digest."""
    segments = sealed_log(tmp_path)
    before = digest_path(segments[0]).read_text()
    log = EventLog.open(tmp_path, segment_bytes=SEGMENT_BYTES)
    assert log.rewrite(blank_text(2)) == 1
    log.append([stored(31)], at=AT)
    log.close()
    assert digest_path(segments[0]).read_text() != before
    assert verify_sealed(tmp_path).problems == []


@pytest.mark.parametrize("torn", [False, True])
def test_a_segment_reopened_is_sealed_with_its_whole_digest(tmp_path: Path, torn: bool) -> None:
    """The digest a reopened log carries on covers the segment as recovered (a torn tail
    cut off): sealed later, the segment's digest is that of its bytes."""
    log = EventLog.open(tmp_path, segment_bytes=4000)
    for n in range(1, 4):
        log.append([stored(n)], at=AT)
    log.close()
    current = list_segments(tmp_path)[-1]
    if torn:
        with open(current, "ab") as f:
            f.write(b"\x30\x00\x00\x00torn")
    log = EventLog.open(tmp_path, segment_bytes=4000)
    assert log.last_seq == 3 and (log.tail_cut is not None) == torn
    while len(list_segments(tmp_path)) == 1:
        log.append([stored(log.last_seq + 1)], at=AT)
    log.close()
    report = verify_sealed(tmp_path)
    assert (report.checked, report.problems) == (1, [])


def test_the_last_segment_is_hashed_beside_its_scan(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening hashes the last segment in another thread while it scans its frames (hashing
    lets the GIL go): each sees the other under way."""
    sealed_log(tmp_path)
    hashing, scanning = threading.Event(), threading.Event()
    real_scan = log_module.scan_segment

    class Hashing:
        @staticmethod
        def sha256(data: bytes = b"") -> Any:
            if len(data) > SEGMENT_HEADER.size:  # the last segment's content, not a new one
                hashing.set()
                assert scanning.wait(30), "the scan did not run while hashing"
            return hashlib.sha256(data)

    def scan(*args: Any, **kwargs: Any) -> Any:
        scanning.set()
        assert hashing.wait(30), "the hash was not taken while scanning"
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(log_module, "hashlib", Hashing)
    monkeypatch.setattr(log_module, "scan_segment", scan)
    log = EventLog.open(tmp_path, segment_bytes=SEGMENT_BYTES)
    log.append([stored(log.last_seq + 1)], at=AT)
    log.close()
    assert hashing.is_set() and scanning.is_set()
