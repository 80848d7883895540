"""Links newly embedded memories to their neighbours (the shell around :mod:`linking`).

Runs after the memories' ``Embedded`` events are applied, so memories embedded in the same
batch find each other; each pair is linked once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import anyio
import numpy as np

from memlane.daemon.domain.linking import MAX_LINKS, Neighbour, decide_links
from memlane.daemon.domain.models import ModelSpec
from memlane.daemon.runtime.projector import Projector
from memlane.daemon.runtime.thresholds import threshold_for
from memlane.daemon.runtime.writer import Writer
from memlane.events.model import Embedded, Event, Linked, Record
from memlane.projections import queries
from memlane.projections.catchup import Projections


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

    def _decide(self, spec: ModelSpec, embedded: list[Embedded]) -> list[Event]:
        with self._projections.lock:
            conn = self._projections.sqlite.conn
            threshold = threshold_for(conn, spec, "link")
            events: list[Event] = []
            seen: set[tuple[int, int]] = set()
            for event in embedded:
                for link in self._links_for(conn, event, threshold):
                    if (link.a, link.b) not in seen:
                        seen.add((link.a, link.b))
                        events.append(link)
            return events

    def _links_for(self, conn: sqlite3.Connection, event: Embedded,
                   threshold: float) -> list[Linked]:
        vectors = self._projections.vectors
        me = queries.get_memory(conn, event.memory)
        if me is None or me["state"] not in queries.LIVE_STATES or event.pipeline != vectors.pipeline:
            return []
        vector = np.frombuffer(event.vector, dtype="<f4")
        hits = vectors.search(vector, MAX_LINKS * 4)
        rows = queries.get_memories(conn, [i for i, _ in hits])
        neighbours = [Neighbour(i, rows[i]["project"], score) for i, score in hits
                      if i in rows and rows[i]["state"] in queries.LIVE_STATES]
        linked = {other for other, _ in queries.links_of(conn, event.memory)}
        return decide_links(event.memory, me["project"], neighbours, threshold=threshold,
                            linked=linked)
