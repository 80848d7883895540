"""Reads of the SQLite projection that see every acknowledged write (read-your-writes).

Reads have a lane of their own: a read waits until the projector has applied every
acknowledged event, then runs on its own WAL reader connection
(:class:`~memlane.projections.read_pool.ReadPool`) in a thread of its own limiter. It never
takes the projections' lock, so it does not queue behind a projector batch, the linker or a
vector snapshot; nor behind bulk work holding anyio's default threads. Bulk readers
(lifecycle jobs, the embedding backlog, sync) get a :meth:`Reader.bulk` reader: the same
connections, other threads, so they cannot take every read thread from hooks and searches.

A read that meets a damaged file has the projector set it aside and rebuild it, then runs
once more.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

import anyio

from memlane.daemon.runtime.projector import Projector
from memlane.events.log import EventLog
from memlane.projections.catchup import Projections
from memlane.projections.damage import is_corruption

T = TypeVar("T")
READ_THREADS = 4  # interactive reads in flight at once (each on its own connection)
BULK_THREADS = 2  # bulk reads in flight at once


class Reader:
    def __init__(self, projections: Projections, projector: Projector, log: EventLog, *,
                 threads: int = READ_THREADS) -> None:
        self.projections = projections
        self._projector = projector
        self._log = log
        self._limiter = anyio.CapacityLimiter(threads)
        self._bulk: Reader | None = None

    def bulk(self) -> Reader:
        """The reader for bulk work: the same projections, threads of its own."""
        if self._bulk is None:
            self._bulk = Reader(self.projections, self._projector, self._log,
                                threads=BULK_THREADS)
        return self._bulk

    @property
    def last_seq(self) -> int:
        """The newest acknowledged event."""
        return self._log.last_seq

    async def caught_up(self) -> None:
        """Return once the projections show every acknowledged event."""
        await self._projector.wait_for(self._log.last_seq)

    async def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``query`` in a worker thread, in one read transaction (a snapshot), once the
        projection reflects every acknowledged event."""
        await self.caught_up()

        def run() -> T:
            with self.projections.reads.connection() as conn:
                return query(conn)

        try:
            return await anyio.to_thread.run_sync(run, limiter=self._limiter)
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise
            await self._projector.repair(f"while reading: {exc}")
        return await anyio.to_thread.run_sync(run, limiter=self._limiter)
