"""Reads of the SQLite projection that see every acknowledged write (read-your-writes).

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


class Reader:
    def __init__(self, projections: Projections, projector: Projector, log: EventLog) -> None:
        self.projections = projections
        self._projector = projector
        self._log = log

    @property
    def last_seq(self) -> int:
        """The newest acknowledged event."""
        return self._log.last_seq

    async def caught_up(self) -> None:
        """Return once the projections show every acknowledged event."""
        await self._projector.wait_for(self._log.last_seq)

    async def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``query`` in a worker thread once the projection reflects every acknowledged
        event."""
        await self.caught_up()

        def run() -> T:
            with self.projections.lock:
                return query(self.projections.sqlite.conn)

        try:
            return await anyio.to_thread.run_sync(run)
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise
            await self._projector.repair(f"while reading: {exc}")
        return await anyio.to_thread.run_sync(run)
