"""Search: hybrid ranking over the projections, the relevance floors, recall signals."""

from __future__ import annotations

from typing import Any

import anyio
import numpy as np

from memlane.daemon.domain.errors import ApiError, BadRequest
from memlane.daemon.domain.ranking import FLOOR_THRESHOLDS, Floor
from memlane.daemon.domain.recall import RecallHit, decide_recalls
from memlane.daemon.domain.redaction import redact
from memlane.daemon.runtime.indexer import Indexer
from memlane.daemon.runtime.ports import Embeds
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.thresholds import Thresholds
from memlane.daemon.runtime.writer import Writer
from memlane.daemon.service.candidates import (
    LexicalEvidence, Ranking, lexical_evidence, rank, rank_embedded)
from memlane.daemon.service.requests import SearchBody
from memlane.projections import queries
from memlane.projections.fulltext import has_live

FRESHNESS_TIMEOUT = 5.0


class Search:
    def __init__(self, *, reader: Reader, writer: Writer, engine: Embeds, indexer: Indexer,
                 thresholds: Thresholds) -> None:
        self._reader = reader
        self._writer = writer
        self._engine = engine
        self._indexer = indexer
        self._thresholds = thresholds

    async def search(self, body: SearchBody) -> list[dict[str, Any]]:
        """Hits that pass the relevance floor (every hit, those below it marked, with
        ``floor: false``); recalls are recorded only for hits that pass."""
        ranking = await self.ranked(body)
        floor = await self.relevance_floor()
        passing = ranking if floor is None else ranking.floored(floor)
        shown = passing if floor is None or body.floor else ranking.floored(floor,
                                                                            keep_below=True)
        if body.recall and passing.hits:
            await self.record_recalls(body.query, passing.hits, passing.similarity)
        return shown.hits

    async def ranked(self, body: SearchBody, *, fresh: bool = True) -> Ranking:
        """Hits with their evidence; ``fresh`` waits (bounded) until every earlier store has
        its vector. The query is embedded while the full-text index is searched."""
        if not body.query.strip():
            raise BadRequest("the query is blank; give it some words", code="blank_input")
        project = body.project
        if project is not None and not await self._reader.read(
                lambda conn: has_live(conn, project)):
            return Ranking([], {}, frozenset())  # a new project: no embedding can find anything
        vector: np.ndarray | None = None
        evidence = LexicalEvidence([], 0.0, 0)
        postings = self._reader.projections.postings

        async def embed_query() -> None:
            nonlocal vector
            if self._engine.ready:
                if fresh:
                    await self._indexer.wait_until_indexed(self._reader.last_seq,
                                                           FRESHNESS_TIMEOUT)
                vector = (await self._engine.embed([body.query], input_type="query",
                                                    lane="interactive"))[0]

        async def search_text() -> None:
            nonlocal evidence
            evidence = await self._reader.read(
                lambda conn: lexical_evidence(conn, body.query, body.project, postings=postings))

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(embed_query)
                tg.start_soon(search_text)
        except BaseExceptionGroup as group:  # a client's error stays a client's error
            error = next((e for e in group.exceptions if isinstance(e, ApiError)), None)
            if error is None:
                raise
            raise error from None
        vectors = self._reader.projections.vectors

        def run(conn: Any) -> Ranking:
            if vector is None:
                return rank(conn, [], evidence, body.k, project=body.project)
            return rank_embedded(vectors, conn, vector, evidence, body.k, project=body.project,
                                 postings=postings)

        return await self._reader.read(run)

    async def floor(self, name: str) -> float:
        """A similarity threshold of the loaded model (infinite without a model)."""
        embedder = self._engine.embedder
        if embedder is None:
            return float("inf")
        return await self._thresholds.of(embedder.spec, name)

    async def relevance_floor(self) -> Floor | None:
        """The loaded model's relevance floor (none without a model: nothing to judge by)."""
        embedder = self._engine.embedder
        if embedder is None:
            return None
        spec = embedder.spec
        return Floor.of({name: await self._thresholds.of(spec, name)
                         for name in FLOOR_THRESHOLDS})

    async def record_recalls(self, query: str, hits: list[dict[str, Any]],
                             similarity: dict[int, float]) -> None:
        floor = await self.floor("recall")
        counts = await self._reader.read(
            lambda conn: queries.recall_counts(conn, [h["id"] for h in hits]))
        candidates = [RecallHit(h["id"], rank, h["score"], similarity.get(h["id"]), h["state"])
                      for rank, h in enumerate(hits, start=1)]
        events = decide_recalls(redact(query).text, candidates, floor=floor, recalls=counts)
        if events:
            await self._writer.append(events)
