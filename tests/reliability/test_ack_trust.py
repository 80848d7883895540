"""The log never loses an acknowledged event silently: after any one flipped bit or cut in any
segment of a closed log, either opening refuses, or verification reports the damage, or every
acknowledged record reads back."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memlane.events.errors import LogCorrupted
from memlane.events.log import EventLog, read_log
from memlane.events.segments import list_segments
from tests.events.test_log import AT, records, stored

COUNT = 40
SEGMENT_BYTES = 500


SEGMENTS = 10


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed log of two-record batches over ``SEGMENTS`` segments."""
    root = tmp_path_factory.mktemp("template")
    log = EventLog.open(root, segment_bytes=SEGMENT_BYTES)
    for n in range(1, COUNT + 1, 2):
        log.append([stored(n), stored(n + 1)], at=AT)
    log.close()
    assert len(list_segments(root)) == SEGMENTS
    return root


def damaged_copy(template: Path, which: int, position: float, cut: bool) -> tuple[Path, Path]:
    work = Path(tempfile.mkdtemp(prefix="ml-ack-")) / "log"
    shutil.copytree(template, work)
    segment = list_segments(work)[which]
    data = bytearray(segment.read_bytes())
    index = min(int(position * len(data)), len(data) - 1)
    if cut:
        del data[index:]
    else:
        data[index] ^= 1 << (index % 8)
    segment.write_bytes(bytes(data))
    return work, segment


def never_silent(work: Path, segment: Path) -> None:
    try:
        log = EventLog.open(work, segment_bytes=SEGMENT_BYTES)
    except LogCorrupted:
        return  # refused, nothing changed
    report = log.verify_sealed()
    log.close()
    if report.damaged:
        assert [p.segment for p in report.damaged] == [segment]
        return
    assert list(read_log(work, tolerate_tail=False)) == records(*range(1, COUNT + 1))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, SEGMENTS - 1), position=st.floats(0, 1, exclude_max=True),
       cut=st.booleans())
def test_one_flipped_bit_or_cut_anywhere_is_never_silent(template: Path, which: int,
                                                         position: float, cut: bool) -> None:
    work, segment = damaged_copy(template, which, position, cut)
    try:
        never_silent(work, segment)
    finally:
        shutil.rmtree(work.parent)
