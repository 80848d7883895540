"""I/O faults: short writes land every byte; a failed write fails only its batch; a failed sync
stops the writer for good. In process with a faulty disk, then in the real daemon with
syscall faults injected by strace."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from memlane.cli.client import DaemonError
from memlane.cli.logcmd import verify
from memlane.daemon.__main__ import EXIT_LOG_FAILED
from memlane.daemon.domain.admission import AdmissionIndex
from memlane.daemon.runtime.writer import Writer
from memlane.events import disk as disk_module
from memlane.events.codec import encode_batch
from memlane.events.errors import LogStopped, LogWriteFailed
from memlane.events.framing import frame
from memlane.events.acked import ACK_FILE
from memlane.events.log import EventLog, read_log
from memlane.events.model import Record, Stored
from memlane.events.segments import list_segments, segment_header
from tests.e2e.daemon import DaemonProcess
from tests.reliability.conftest import start
from tests.reliability.disks import FaultyDisk
from tests.reliability.straced import (
    NO_MODEL,
    StracedDaemon,
    assert_acked_present,
    assert_contiguous,
    first_segment,
    require_strace,
    store_until_failure,
    stored_with_text,
)

pytestmark = pytest.mark.crash

AT = datetime(2026, 11, 24, 14, 2, tzinfo=UTC)
FAILING_SYNC = 4  # strace fails a thread's 4th fdatasync of the segment, and every later one
FAILING_WRITE = 3


def stored(n: int) -> Stored:
    return Stored(id=n, text=f"memory number {n}", project="p", kind="note",
                  content_hash=f"{n:032x}")


def records(*seqs: int) -> list[Record]:
    return [Record(seq=n, at=AT, event=stored(n)) for n in seqs]


def append(log: EventLog, *seqs: int) -> list[Record]:
    return log.append([stored(n) for n in seqs], at=AT)


def batch_bytes(batch: list[Record]) -> bytes:
    """What one append writes: the batch as one frame."""
    return frame(encode_batch(batch))


class ShortWritingOs:
    """The ``os`` module as the disk sees it, except that ``write`` takes at most ``limit``
    bytes per call, as a pipe, a signal or a nearly full disk may make it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.calls = 0

    def write(self, fd: int, data: bytes | memoryview) -> int:
        self.calls += 1
        return os.write(fd, bytes(data[: self.limit]))

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)


@pytest.mark.parametrize("limit", [1, 7, 64])
def test_short_writes_land_every_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      limit: int) -> None:
    """When write() takes fewer bytes than asked, the disk loops until the whole batch is in."""
    short = ShortWritingOs(limit)
    monkeypatch.setattr(disk_module, "os", short)
    log = EventLog.open(tmp_path)
    append(log, 1, 2, 3)
    append(log, 4)
    log.close()
    writes = [segment_header(1), batch_bytes(records(1, 2, 3)), batch_bytes(records(4))]
    assert list_segments(tmp_path)[0].read_bytes() == b"".join(writes)
    acked = (tmp_path / ACK_FILE).read_bytes()  # the watermark a clean close writes
    assert short.calls == sum(-(-len(blob) // limit) for blob in [*writes, acked])


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
@pytest.mark.parametrize("landed", [0, 50, 10_000])
def test_a_failed_write_fails_only_its_batch(tmp_path: Path, code: int, landed: int) -> None:
    """ENOSPC or EIO mid-write refuses the batch, removes its bytes, and the log goes on."""
    disk = FaultyDisk()
    log = EventLog.open(tmp_path, disk=disk)
    append(log, 1, 2)
    segment = list_segments(tmp_path)[0]
    size = segment.stat().st_size
    disk.fail_write, disk.landed = code, landed
    with pytest.raises(LogWriteFailed):
        append(log, 3, 4, 5)
    assert segment.stat().st_size == size and log.last_seq == 2
    disk.fail_write = None
    append(log, 3)
    log.close()
    reopened = EventLog.open(tmp_path)
    assert reopened.truncated_bytes == 0
    append(reopened, 4)
    reopened.close()
    assert list(read_log(tmp_path, tolerate_tail=False)) == records(1, 2, 3, 4)


def test_a_failed_write_that_cannot_be_undone_stops_the_log(tmp_path: Path) -> None:
    """A failed write whose bytes cannot be cut stops the log; a reopen cuts the torn batch
    whole."""
    disk = FaultyDisk()
    log = EventLog.open(tmp_path, disk=disk)
    append(log, 1, 2)
    batch_size = len(batch_bytes(records(3, 4)))
    disk.fail_write, disk.landed, disk.fail_truncate = errno.EIO, batch_size - 3, errno.EIO
    with pytest.raises(LogWriteFailed):
        append(log, 3, 4)
    disk.fail_write = disk.fail_truncate = None
    with pytest.raises(LogStopped, match="could not be undone"):
        append(log, 3)
    log.close()
    reopened = EventLog.open(tmp_path)
    assert reopened.truncated_bytes > 0
    reopened.close()
    assert list(read_log(tmp_path, tolerate_tail=False)) == records(1, 2)


def test_a_failed_sync_stops_the_log_for_good(tmp_path: Path) -> None:
    """After an fsync failure nothing more is acknowledged, even once the disk recovers."""
    disk = FaultyDisk()
    log = EventLog.open(tmp_path, disk=disk)
    append(log, 1)
    disk.fail_sync = errno.EIO
    with pytest.raises(LogStopped, match="sync failed"):
        append(log, 2)
    disk.fail_sync = None
    with pytest.raises(LogStopped):
        append(log, 2)
    with pytest.raises(LogStopped):
        log.append_records(records(2))
    with pytest.raises(LogStopped):
        log.rewrite(lambda record: record)
    log.close()
    recovered = list(read_log(tmp_path, tolerate_tail=False))
    assert recovered in (records(1), records(1, 2))


@pytest.mark.parametrize("step", ["create", "sync"])
def test_a_failed_segment_rotation_fails_only_its_batch(tmp_path: Path, step: str) -> None:
    """ENOSPC or EIO while starting the next segment refuses that batch alone."""
    disk = FaultyDisk()
    log = EventLog.open(tmp_path, disk=disk, segment_bytes=100)
    append(log, 1, 2)
    if step == "create":
        disk.fail_create = errno.ENOSPC
    else:
        disk.fail_sync = errno.EIO  # the new segment's header fails to sync
    with pytest.raises(LogWriteFailed):
        append(log, 3)
    disk.fail_create = disk.fail_sync = None
    append(log, 3)
    log.close()
    assert list(read_log(tmp_path, tolerate_tail=False)) == records(1, 2, 3)


class WriterUnderTest:
    """A :class:`Writer` over a faulty disk, with what it acknowledged and committed."""

    def __init__(self, directory: Path, **log_options: int) -> None:
        self.disk = FaultyDisk()
        self.log = EventLog.open(directory, disk=self.disk, **log_options)
        self.committed: list[Record] = []
        self.writer = Writer(self.log, AdmissionIndex(), on_commit=self._committed)
        self.outcomes: list[tuple[int, str]] = []

    async def _committed(self, records: list[Record]) -> None:
        self.committed.extend(records)

    async def submit(self, n: int, *, shield: bool = False) -> None:
        """Submit one event and note the answer; a shielded submit hears the writer's verdict
        even when the writer's failure cancels the task group around it."""
        with anyio.CancelScope(shield=shield):
            try:
                await self.writer.append([stored(n)])
            except (LogStopped, LogWriteFailed) as exc:
                self.outcomes.append((n, type(exc).__name__))
            else:
                self.outcomes.append((n, "acked"))


def test_a_failed_sync_stops_the_writer(tmp_path: Path) -> None:
    """A failed sync fails its batch, every waiting and every later submit, and the writer."""
    under = WriterUnderTest(tmp_path)

    async def scenario() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(under.writer.run)
            await under.submit(1)
            under.disk.fail_sync = errno.EIO
            async with anyio.create_task_group() as clients:
                for n in range(2, 7):
                    clients.start_soon(lambda n=n: under.submit(n, shield=True))

    with pytest.raises(ExceptionGroup) as caught:
        anyio.run(scenario)
    assert caught.group_contains(LogStopped)
    under.disk.fail_sync = None
    anyio.run(under.submit, 7)
    assert dict(under.outcomes) == {1: "acked", **{n: "LogStopped" for n in range(2, 8)}}
    assert [r.seq for r in under.committed] == [1]
    under.log.close()
    recovered = list(read_log(tmp_path, tolerate_tail=False))
    assert recovered[0].event == stored(1)
    assert [r.seq for r in recovered] == list(range(1, len(recovered) + 1))


def test_a_failed_rotation_fails_only_its_batch_in_the_writer(tmp_path: Path) -> None:
    """Through the writer: ENOSPC while starting a segment fails that submit; the next works."""
    under = WriterUnderTest(tmp_path, segment_bytes=100)

    async def scenario() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(under.writer.run)
            await under.submit(1)
            await under.submit(2)
            under.disk.fail_create = errno.ENOSPC
            await under.submit(3)
            under.disk.fail_create = None
            await under.submit(3)
            tg.cancel_scope.cancel()

    anyio.run(scenario)
    assert under.outcomes == [(1, "acked"), (2, "acked"), (3, "LogWriteFailed"), (3, "acked")]
    under.log.close()


@pytest.fixture
def home(short_tmp: Path) -> Iterator[Path]:
    require_strace()
    (short_tmp / "home").mkdir()
    yield short_tmp / "home"


def test_an_injected_fdatasync_failure_stops_the_daemon_and_loses_no_ack(
        home: Path, daemons: list[DaemonProcess]) -> None:
    """A failed fdatasync fails its store and stops the daemon (exit 5); no ack is lost."""
    plain = DaemonProcess(home, **NO_MODEL)
    fault = f"inject=fdatasync:error=EIO:when={FAILING_SYNC}+"
    straced = start(daemons, StracedDaemon(
        home, ["-P", str(first_segment(plain)), "-e", "trace=fdatasync", "-e", fault], **NO_MODEL))
    acked, failed, _error = store_until_failure(straced.client, "synced memory")
    assert len(acked) >= FAILING_SYNC - 1
    assert straced.process is not None and straced.process.wait(timeout=60) == EXIT_LOG_FAILED
    assert "sync failed ([Errno 5] Input/output error)" in straced.stderr()
    restarted = start(daemons, plain)
    assert_acked_present(restarted, acked)
    assert_contiguous(restarted)
    for event in stored_with_text(restarted, failed):  # written but never acknowledged: whole
        assert restarted.client.request("GET", f"/v1/memories/{event.id}")["text"] == failed
    assert verify(restarted.paths.log_dir)["ok"]


def test_an_injected_enospc_fails_stores_but_the_daemon_keeps_running(
        home: Path, daemons: list[DaemonProcess]) -> None:
    """ENOSPC on the log's write() fails stores; the daemon serves on and reopens cleanly."""
    plain = DaemonProcess(home, **NO_MODEL)
    fault = f"inject=write:error=ENOSPC:when={FAILING_WRITE}+"
    straced = start(daemons, StracedDaemon(
        home, ["-P", str(first_segment(plain)), "-e", "trace=write", "-e", fault], **NO_MODEL))
    acked, failed, error = store_until_failure(straced.client, "memory on a full disk")
    assert len(acked) >= FAILING_WRITE - 1
    assert isinstance(error, DaemonError) and error.status >= 500
    assert "status" in straced.client.request("GET", "/v1/health")
    assert straced.stop() == 0
    restarted = start(daemons, plain)
    assert recovered_line(restarted)["truncated_bytes"] == 0
    assert_acked_present(restarted, acked)
    assert not stored_with_text(restarted, failed)
    again = restarted.client.request("POST", "/v1/memories", {"text": failed, "project": "p"})
    assert again["duplicate"] is False
    assert_contiguous(restarted)


def recovered_line(daemon: DaemonProcess) -> dict[str, object]:
    """The last ``recovered`` log line the daemon wrote on stderr."""
    lines = [json.loads(line) for line in daemon.stderr().splitlines() if '"recovered"' in line]
    return lines[-1]  # type: ignore[no-any-return]
