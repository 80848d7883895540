"""Posted events: appended in order with what is submitted after them, without the poster
waiting; a flush returns once they are in the log; a failure is logged, never raised."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import structlog

from memlane.daemon.domain.admission import AdmissionIndex
from memlane.daemon.runtime.writer import Writer
from memlane.events.log import EventLog, read_log
from memlane.events.model import Record, Shown


async def nothing(records: list[Record]) -> None:
    return None


def shown(session: str) -> Shown:
    return Shown(memories=(1, 2), session=session, hook="UserPromptSubmit")


def test_posted_events_are_appended_in_order_and_a_flush_waits_for_them(tmp_path: Path) -> None:
    """Posting returns at once; a flush returns after every posted event is in the log,
    in the order posted, before what was submitted after them."""
    log = EventLog.open(tmp_path / "log")
    writer = Writer(log, AdmissionIndex(), on_commit=nothing)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(writer.run)
            assert writer.post([shown("a")]) and writer.post([shown("b")])
            assert log.last_seq == 0  # nobody waited: nothing is appended yet
            await writer.append([shown("c")])
            writer.post([shown("d")])
            await writer.flush()
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert [r.event.session for r in read_log(log.directory)] == ["a", "b", "c", "d"]
    log.close()


def test_a_posted_event_that_fails_is_logged_and_the_writer_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed append of posted events is logged; the next command is appended."""
    log = EventLog.open(tmp_path / "log")
    writer = Writer(log, AdmissionIndex(), on_commit=nothing)
    failures = iter([OSError("disk full")])
    append = log.append_records

    def flaky(records: list[Record]) -> None:
        if (failure := next(failures, None)) is not None:
            from memlane.events.errors import LogWriteFailed
            raise LogWriteFailed(str(failure))
        append(records)

    monkeypatch.setattr(log, "append_records", flaky)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(writer.run)
            writer.post([shown("lost")])
            await writer.append([shown("kept")])
            tg.cancel_scope.cancel()

    with structlog.testing.capture_logs() as logs:
        anyio.run(main)
    assert [e["event"] for e in logs] == ["posted_events_not_appended"]
    assert [r.event.session for r in read_log(log.directory)] == ["kept"]
    log.close()


def test_posting_to_a_writer_that_stopped_says_so(tmp_path: Path) -> None:
    """A writer that has stopped takes no posted event: the caller appends (and hears why)."""
    log = EventLog.open(tmp_path / "log")
    writer = Writer(log, AdmissionIndex(), on_commit=nothing)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(writer.run)
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert writer.post([shown("a")]) is False
    log.close()
