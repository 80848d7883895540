"""Links newly embedded memories to their neighbours (the shell around :mod:`linking`).

Runs after the memories' ``Embedded`` events are applied, so memories embedded in the same
batch find each other; each pair is linked once.

What the linker has processed is in the log: the indexer links each embedded batch before it
commits the next, so only the last ``Embedded`` batch can lack its link pass (a crash, or a
disk that refused the ``Linked`` append). At start, :meth:`Linker.finish_interrupted` runs the
pass again for that batch; a pass is idempotent (pairs already linked are skipped).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import anyio

from memlane.daemon.domain.linking import MAX_LINKS, Neighbour, decide_links
from memlane.daemon.domain.models import ModelSpec
from memlane.daemon.runtime.projector import Projector
from memlane.daemon.runtime.thresholds import threshold_for
from memlane.daemon.runtime.writer import Writer
from memlane.events.log import read_log
from memlane.events.model import Embedded, Event, Linked, Record
from memlane.events.vector_codes import held_rows
from memlane.projections import queries
from memlane.projections.catchup import Projections


TAIL_SCAN = 100_000  # records read back from the end for an interrupted pass, at most


class Linker:
    def __init__(self, projections: Projections, projector: Projector, writer: Writer) -> None:
        self._projections = projections
        self._projector = projector
        self._writer = writer
        self.linked = 0

    async def link(self, spec: ModelSpec, records: Sequence[Record]) -> None:
        """Link the memories embedded by ``records`` (committed ``Embedded`` events)."""
        embedded = [r.event for r in records if isinstance(r.event, Embedded)]
        if not embedded:
            return
        await self._projector.wait_for(records[-1].seq)
        events = await anyio.to_thread.run_sync(self._decide, spec, embedded)
        if events:
            await self._writer.append(events)
            self.linked += len(events)

    async def finish_interrupted(self, spec: ModelSpec, log_dir: Path, last_seq: int) -> int:
        """Run the link pass again for the last ``Embedded`` batch after the last link;
        returns how many memories were checked."""
        records = await anyio.to_thread.run_sync(self._unlinked_tail, log_dir, last_seq)
        await self.link(spec, records)
        return len(records)

    def _unlinked_tail(self, log_dir: Path, last_seq: int) -> list[Record]:
        with self._projections.lock:
            row = self._projections.sqlite.conn.execute("SELECT max(seq) FROM links").fetchone()
        start = max(int(row[0] or 0) + 1, last_seq - TAIL_SCAN + 1, 1)
        batch: list[Record] = []
        for record in read_log(log_dir, start, upto=last_seq):
            if isinstance(record.event, Embedded):
                if batch and batch[-1].seq != record.seq - 1:
                    batch = []  # a later batch: the earlier one was linked before it
                batch.append(record)
        return batch

    def _decide(self, spec: ModelSpec, embedded: list[Embedded]) -> list[Event]:
        with self._projections.lock:
            conn = self._projections.sqlite.conn
            threshold = threshold_for(conn, spec, "link")
            vectors = self._projections.vectors
            placed = queries.placement(conn, [event.memory for event in embedded])
            live = [(event, placed[event.memory][0]) for event in embedded
                    if event.memory in placed and placed[event.memory][1] in queries.LIVE_STATES
                    and event.pipeline == vectors.pipeline]
            if not live:
                return []
            # the batch's neighbours in one search (a flat matrix scores them in one product)
            found = vectors.search_many(
                held_rows([e.vector for e, _ in live], [False] * len(live), live[0][0].dims),
                MAX_LINKS * 4)
            # every candidate's project and state in one read (no text)
            around = queries.placement(conn, list({i for hits in found for i, _ in hits}))
            events: list[Event] = []
            seen: set[tuple[int, int]] = set()
            for (event, project), hits in zip(live, found, strict=True):
                for link in self._links_for(conn, event.memory, project, hits, around,
                                            threshold):
                    if (link.a, link.b) not in seen:
                        seen.add((link.a, link.b))
                        events.append(link)
            return events

    def _links_for(self, conn: sqlite3.Connection, memory: int, project: str,  # noqa: PLR0913
                   hits: list[tuple[int, float]], placed: dict[int, tuple[str, str]],
                   threshold: float) -> list[Linked]:
        neighbours = [Neighbour(i, placed[i][0], score) for i, score in hits
                      if i in placed and placed[i][1] in queries.LIVE_STATES]
        linked = {other for other, _ in queries.links_of(conn, memory)}
        return decide_links(memory, project, neighbours, threshold=threshold, linked=linked)
