"""The briefing: what a session should know about its project, within a token budget."""

from __future__ import annotations

import sqlite3
from typing import Any

from memlane.daemon.domain.briefing import compose_briefing, estimate_tokens
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.service.requests import BriefingBody, SearchBody
from memlane.daemon.service.search import Search
from memlane.projections import queries


class Briefings:
    def __init__(self, *, reader: Reader, search: Search) -> None:
        self._reader = reader
        self._search = search

    async def briefing(self, body: BriefingBody) -> dict[str, Any]:
        """The memories worth showing at a session start, within ``body.budget`` tokens."""
        relevant: list[dict[str, Any]] = []
        if body.context:
            search = SearchBody(query=body.context, project=body.project, k=10)
            relevant = await self._search.search(search)
        candidates, related = await self._reader.read(
            lambda conn: briefing_inputs(conn, body.project, relevant))
        chosen, text = compose_briefing(candidates, budget=body.budget, related=related)
        return {"project": body.project, "text": text, "chars": len(text),
                "tokens": estimate_tokens(text),
                "memories": [{k: m[k] for k in ("id", "text", "kind", "state")} for m in chosen]}


Candidates = dict[str, list[dict[str, Any]]]


def briefing_inputs(conn: sqlite3.Connection, project: str | None,
                    relevant: list[dict[str, Any]] | None = None
                    ) -> tuple[Candidates, list[tuple[int, int]]]:
    """The briefing's candidates by section (search hits as ``relevant``, given their source)
    and the related pairs among them."""
    candidates = queries.briefing_rows(conn, project)
    if relevant:
        sources = queries.sources_of(conn, [h["id"] for h in relevant])
        candidates["relevant"] = [{**h, "source": sources.get(h["id"], "")} for h in relevant]
    ids = sorted({m["id"] for rows in candidates.values() for m in rows})
    return candidates, queries.related_pairs(conn, ids)
