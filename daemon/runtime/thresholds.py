"""The similarity thresholds in force: recorded by ``memlane calibrate``, else the model's."""

from __future__ import annotations

import sqlite3

from memlane.daemon.domain.models import ModelSpec
from memlane.daemon.runtime.reader import Reader
from memlane.projections import queries


def threshold_for(conn: sqlite3.Connection, spec: ModelSpec, name: str) -> float:
    """The threshold recorded for the model, else the spec's."""
    chosen = queries.threshold(conn, spec.name, name)
    return chosen if chosen is not None else spec.thresholds[name]


class Thresholds:
    """A cache of :func:`threshold_for` (only calibration changes them: it calls ``clear``)."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self._cache: dict[tuple[str, str], float] = {}

    async def of(self, spec: ModelSpec, name: str) -> float:
        key = (spec.name, name)
        if key not in self._cache:
            self._cache[key] = await self._reader.read(lambda conn: threshold_for(conn, spec, name))
        return self._cache[key]

    def clear(self) -> None:
        self._cache.clear()
