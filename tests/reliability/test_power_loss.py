"""Power loss: whatever a power cut leaves of the files, the log reopens with every acknowledged
record, only records that were written, each batch whole or not at all, and contiguous seqs.

The real :class:`EventLog` runs on a :class:`PowerLossDisk` (real files that remember what was
synced); only the disk is simulated.
"""

from __future__ import annotations

import errno
import random
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from memlane.events.codec import encode_batch
from memlane.events.errors import LogWriteFailed
from memlane.events.framing import frame
from memlane.events.log import EventLog, read_log
from memlane.events.model import Event, Expired, Record, Stored
from memlane.events.segments import list_segments
from tests.reliability.disks import CutPoint, PowerCut, PowerLossDisk

pytestmark = pytest.mark.crash

AT = datetime(2026, 11, 24, 14, 2, tzinfo=UTC)
batches = st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=5)
# A rotating append does 6 disk operations (tmp write, tmp sync, rename, dir sync, write, sync):
# cut points beyond them let the append finish, acknowledged, before the power fails.
cuts = st.builds(CutPoint, op=st.integers(min_value=1, max_value=7),
                 fraction=st.floats(min_value=0, max_value=1))
randoms = st.randoms(use_true_random=False)


def stored(n: int, padding: int = 0) -> Stored:
    return Stored(id=n, text=f"memory {n} " + "x" * padding, project="p", kind="note",
                  content_hash=f"{n:032x}")


class PowerLossMachine(RuleBasedStateMachine):
    """Appends, acknowledged or cut short by the power; reboots; recovery after each."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="ml-power-"))
        self.disk = PowerLossDisk()
        self.written: dict[int, list[Record]] = {}
        self.batches: list[list[Record]] = []
        self.acked: dict[int, Record] = {}
        self.made = 0
        self.segment_bytes = 0
        self.log: EventLog | None = None

    def teardown(self) -> None:
        if self.log is not None:
            self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    @initialize(segment_bytes=st.sampled_from([200, 700, 64 * 1024]))
    def open_log(self, segment_bytes: int) -> None:
        self.segment_bytes = segment_bytes
        self.log = self._open()

    @rule(paddings=batches)
    def append_and_ack(self, paddings: list[int]) -> None:
        """An append that returns is acknowledged."""
        events = self._events(paddings)
        self._note_written(self._records_for(events))
        self._note_acked(self._live.append(events, at=AT))

    @rule(paddings=batches, cut=cuts, rng=randoms)
    def power_fails_during_append(self, paddings: list[int], cut: CutPoint,
                                  rng: random.Random) -> None:
        """The power fails somewhere in an append (rotation included), then the machine boots."""
        events = self._events(paddings)
        self._note_written(self._records_for(events))
        self.disk.arm(cut)
        try:
            self._note_acked(self._live.append(events, at=AT))
        except PowerCut:
            pass
        finally:
            self.disk.disarm()
        self._reboot(rng)

    @rule(rng=randoms)
    def power_fails_between_appends(self, rng: random.Random) -> None:
        self._reboot(rng)

    @rule(cut=cuts, rng=randoms)
    def power_fails_during_recovery(self, cut: CutPoint, rng: random.Random) -> None:
        """A second cut while the log cuts a torn tail (or creates its first segment)."""
        self._live.close()
        self.log = None
        self.disk.power_cut(rng)
        self.disk.arm(cut)
        try:
            self.log = self._open()
        except PowerCut:
            self.disk.disarm()
            self.disk.power_cut(rng)
            self.log = self._open()
        finally:
            self.disk.disarm()

    @rule(paddings=batches, share=st.floats(min_value=0, max_value=1))
    def write_fails_with_enospc(self, paddings: list[int], share: float) -> None:
        """A full disk fails the batch after a short write; the log stays usable."""
        events = self._events(paddings)
        self._note_written(self._records_for(events))
        self.disk.write_error = (errno.ENOSPC, share)
        try:
            with pytest.raises(LogWriteFailed):
                self._live.append(events, at=AT)
        finally:
            self.disk.write_error = None

    @invariant()
    def recovered_lies_between_acked_and_written(self) -> None:
        if self.log is None:
            return
        records = self._recovered()
        assert [r.seq for r in records] == list(range(1, len(records) + 1))
        assert self.log.last_seq == len(records)
        for record in records:
            assert record in self.written[record.seq]
        on_disk = {r.seq: r for r in records}
        for seq, record in self.acked.items():
            assert on_disk.get(seq) == record, f"acknowledged seq {seq} was lost"

    @invariant()
    def batches_are_recovered_whole_or_not_at_all(self) -> None:
        if self.log is None:
            return
        on_disk = set(self._recovered())
        for batch in self.batches:
            present = sum(record in on_disk for record in batch)
            assert present in (0, len(batch)), f"{present} of a {len(batch)}-record batch survived"

    def _recovered(self) -> list[Record]:
        return list(read_log(self.root, tolerate_tail=False))

    @property
    def _live(self) -> EventLog:
        assert self.log is not None
        return self.log

    def _open(self) -> EventLog:
        return EventLog.open(self.root, disk=self.disk, segment_bytes=self.segment_bytes)

    def _reboot(self, rng: random.Random) -> None:
        self._live.close()
        self.log = None
        self.disk.power_cut(rng)
        self.log = self._open()  # a torn tail must never make this raise

    def _events(self, paddings: list[int]) -> list[Event]:
        events: list[Event] = []
        for padding in paddings:
            self.made += 1
            events.append(stored(self.made, padding))
        return events

    def _records_for(self, events: list[Event]) -> list[Record]:
        first = self._live.last_seq + 1
        return [Record(seq=first + i, at=AT, event=e) for i, e in enumerate(events)]

    def _note_written(self, records: list[Record]) -> None:
        self.batches.append(records)
        for record in records:
            self.written.setdefault(record.seq, []).append(record)

    def _note_acked(self, records: list[Record]) -> None:
        for record in records:
            self.acked[record.seq] = record


PowerLossMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestPowerLoss = PowerLossMachine.TestCase


def append_unsynced(segment: Path, batch: list[Record], *, keep: int) -> bytes:
    """Append ``batch`` as one append writes it, one frame, whose sync never happened: only the
    first ``keep`` bytes reached the disk. Returns the whole frame."""
    blob = frame(encode_batch(batch))
    with segment.open("ab") as handle:
        handle.write(blob[:keep])
    return blob


def synced_log(directory: Path) -> Path:
    """A log holding one acknowledged record; returns its segment."""
    log = EventLog.open(directory)
    log.append([stored(1)], at=AT)
    log.close()
    return list_segments(directory)[0]


EMPTY_SAVE = [Record(seq=2, at=AT, event=stored(2)),
              Record(seq=3, at=AT, event=Expired(memory=2, reason="empty save"))]


def test_a_torn_batch_is_recovered_whole_or_not_at_all(tmp_path: Path) -> None:
    """A power cut at any byte of a batch's write leaves none of that batch after recovery."""
    size = len(frame(encode_batch(EMPTY_SAVE)))
    for keep in range(size + 1):
        work = tmp_path / str(keep)
        append_unsynced(synced_log(work), EMPTY_SAVE, keep=keep)
        log = EventLog.open(work)
        log.close()
        expected = [1, 2, 3] if keep == size else [1]
        assert [r.seq for r in read_log(work, tolerate_tail=False)] == expected, keep


@pytest.mark.parametrize(("start", "length"), [(0, 8), (0, 60), (20, 40), (8, 1)])
def test_a_hole_in_the_unsynced_tail_is_a_torn_tail(tmp_path: Path, start: int,
                                                    length: int) -> None:
    """A zeroed hole in the unsynced last batch, whatever landed after it, is a torn tail: the
    batch is cut whole and the log goes on."""
    # Unsynced pages may reach the disk in any order, so a power cut can leave this.
    segment = synced_log(tmp_path)
    synced = segment.stat().st_size
    batch = [Record(seq=n, at=AT, event=stored(n)) for n in (2, 3, 4)]
    blob = append_unsynced(segment, batch, keep=10_000)
    with segment.open("r+b") as handle:
        handle.seek(synced + start)
        handle.write(bytes(length))
    log = EventLog.open(tmp_path)
    assert log.last_seq == 1 and log.truncated_bytes == len(blob)
    log.append([stored(2)], at=AT)
    log.close()
    assert [r.seq for r in read_log(tmp_path, tolerate_tail=False)] == [1, 2]
