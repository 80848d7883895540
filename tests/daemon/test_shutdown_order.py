"""A commit that lands after the projector or the indexer stopped (a shutdown in progress) is
still acknowledged: the records are in the log, and the next catch-up applies them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from memlane.daemon.domain.admission import AdmissionIndex
from memlane.daemon.runtime.indexer import Indexer
from memlane.daemon.runtime.linker import Linker
from memlane.daemon.runtime.projector import Projector
from memlane.daemon.runtime.writer import Writer
from memlane.events.log import EventLog
from memlane.events.model import Record, Stored
from memlane.projections.catchup import Projections


def test_a_commit_after_the_projector_and_indexer_stopped_is_acknowledged(
        tmp_path: Path) -> None:
    log = EventLog.open(tmp_path / "log")
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "v.usearch")
    projector = Projector(projections, log_dir=log.directory)
    indexer: Indexer | None = None

    async def on_commit(records: list[Record]) -> None:
        await projector.push(records)
        assert indexer is not None
        indexer.push(records)

    writer = Writer(log, AdmissionIndex(), on_commit=on_commit)
    unused: Any = None
    indexer = Indexer(unused, writer, Linker(projections, projector, writer))

    async def main() -> list[Record]:
        async with anyio.create_task_group() as tg:
            await tg.start(writer.run)
            async with anyio.create_task_group() as consumers:  # stopped first, as at shutdown
                await consumers.start(projector.run)
                await consumers.start(indexer.run, unused)
                consumers.cancel_scope.cancel()
            records = await writer.append([Stored(id=1, text="a note", project="p", kind="note",
                                                     content_hash="h")])
            tg.cancel_scope.cancel()
        return records

    records = anyio.run(main)
    assert [r.seq for r in records] == [1]
    assert projections.applied_seq == 0  # not projected before the stop ...
    projections.catch_up(log.directory, log.last_seq)
    assert projections.applied_seq == 1  # ... and applied by the catch-up that follows it
    projections.close()
    log.close()
