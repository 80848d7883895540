"""The relevance floor's probes (:mod:`memlane.daemon.domain.calibration`): the user's recent
recorded queries, each judged as search judges it, in its own project and in others.

A query comes from the ``Recalled`` records of the most recently recalled memories, read by
seq through the per-memory event index (never a scan of the log); its project is the recalled
memory's. Compaction folds the ``Recalled`` records of segments older than the retention window
into counts, so only queries inside that window are found.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import anyio
import numpy as np

from memlane.daemon.domain.calibration import (
    MIN_PROJECT, Probes, probe_queries, wrong_projects)
from memlane.daemon.domain.ranking import Floor
from memlane.daemon.runtime.ports import Embeds
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.service.candidates import lexical_evidence, rank_embedded
from memlane.events.model import Recalled
from memlane.events.seek import Seeker
from memlane.projections import memory_events, queries
from memlane.projections.vector_store import VectorProjection

PROBES = 200  # distinct (query, project) pairs, the most recent
PAGE = 200  # memories whose events are read at a time, the most recently recalled first
PAGES = 5
MEMORY_EVENTS = 16  # newest events read per memory
K = 10  # hits ranked per probe, as a search's default k: BM25-only hits add their cosines


class Prober:
    """Gathers the user's recorded queries and judges them as search would."""

    def __init__(self, *, reader: Reader, engine: Embeds, log_dir: Path) -> None:
        self._reader = reader
        self._engine = engine
        self._seeker = Seeker(log_dir)

    async def probes(self, floor: Floor, sizes: Mapping[str, int]) -> Probes:
        """The floor's evidence for each recent recorded query in its project and in up to
        three others (``sizes``: live memories per project)."""
        asked = await self.recorded_queries()
        projects = sum(n >= MIN_PROJECT for n in sizes.values())
        if not asked:
            return Probes(own=[], negative=[], projects=projects)
        vectors = await self._engine.embed([q for q, _ in asked], input_type="query")
        own: list[float] = []
        negative: list[float] = []
        for (query, project), vector in zip(asked, vectors, strict=True):
            judged = await self._reader.read(partial(
                _evidence, self._reader.projections.vectors, vector=vector, query=query,
                projects=[project, *wrong_projects(query, project, sizes)], floor=floor))
            own.append(judged[0])
            negative += judged[1:]
        return Probes(own=own, negative=negative, projects=projects)

    async def recorded_queries(self) -> list[tuple[str, str]]:
        """Up to :data:`PROBES` distinct (query, project) of recorded recalls, newest first."""
        recalls: list[tuple[int, str, str]] = []
        for page in range(PAGES):
            seqs = await self._reader.read(partial(_recent_seqs, offset=page * PAGE))
            if not seqs:
                break
            recalls += await anyio.to_thread.run_sync(self._recalls, seqs)
            if len(probe_queries(recalls, PROBES)) >= PROBES:
                break
        return probe_queries(recalls, PROBES)

    def _recalls(self, seqs: Mapping[int, str]) -> list[tuple[int, str, str]]:
        """(seq, query, project) of the ``Recalled`` records at ``seqs`` (seq -> project)."""
        found, _ = self._seeker.records(seqs)
        return [(r.seq, r.event.query, seqs[r.seq]) for r in found
                if isinstance(r.event, Recalled)]


def _recent_seqs(conn: sqlite3.Connection, *, offset: int) -> dict[int, str]:
    """The newest events' seqs of a page of the most recently recalled memories, each with the
    memory's project."""
    return {seq: project for memory, project in queries.recently_recalled(conn, PAGE, offset)
            for seq in memory_events.newest_seqs_of(conn, memory, MEMORY_EVENTS)}


def _evidence(vectors: VectorProjection, conn: sqlite3.Connection, *, vector: np.ndarray,
              query: str, projects: list[str], floor: Floor) -> list[float]:
    """The floor's evidence for ``query`` in each project, ranked as search ranks it (``-inf``:
    nothing there to judge)."""
    judged = [rank_embedded(vectors, conn, vector, lexical_evidence(conn, query, project), K,
                            project=project).evidence(floor) for project in projects]
    return [float("-inf") if e is None else e for e in judged]
