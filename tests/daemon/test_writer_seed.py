"""The writer can build its admission index itself when it starts: a start serves without
waiting for it, and no command is decided before the index is whole."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio

from memlane.daemon.domain.admission import AdmissionIndex, BatchView
from memlane.daemon.runtime.writer import Writer, seed_admission
from memlane.events.log import EventLog
from memlane.events.model import Event, Record, Stored
from memlane.projections.catchup import Projections


async def nothing(records: list[Record]) -> None:
    return None


def stored(memory_id: int, text: str) -> Stored:
    return Stored(id=memory_id, text=text, project="p", kind="note", content_hash=f"h-{text}")


def test_a_command_waits_for_the_index_and_is_decided_against_it(tmp_path: Path) -> None:
    """A store submitted while the index is being built is decided once it is whole, and
    sees what the index holds (here: its duplicate)."""
    log = EventLog.open(tmp_path / "log")
    release = threading.Event()

    def seed() -> AdmissionIndex:
        release.wait(30)
        index = AdmissionIndex()
        index.load_row(7, "p", "h-known", live=True, key=None)
        return index

    writer = Writer(log, seed, on_commit=nothing)
    answers: list[int | None] = []

    def decide(view: BatchView, seq: int) -> tuple[list[Event], None]:
        answers.append(view.find_duplicate("p", "h-known"))
        return [], None

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(writer.run)
            tg.start_soon(writer.submit, decide)
            await anyio.wait_all_tasks_blocked()  # the command waits in the writer's stream
            assert answers == []
            release.set()
            await writer.submit(decide)
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert answers == [7, 7]
    log.close()


def test_the_seed_reads_the_caught_up_projection(tmp_path: Path) -> None:
    """Built from the projection, the index knows its live memories and idempotency keys."""
    log = EventLog.open(tmp_path / "log")
    log.append([stored(1, "one"), Stored(id=2, text="two", project="p", kind="note",
                                         content_hash="h-two", idempotency_key="k-2")])
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "v.usearch")
    projections.catch_up(log.directory, log.last_seq)
    index = seed_admission(projections)
    assert index.find_duplicate("p", "h-one") == 1 and index.find_key("k-2") == 2
    projections.close()
    log.close()
