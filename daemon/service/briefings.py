"""The briefing: what a session should know about its project, within a budget."""

from __future__ import annotations

from typing import Any

from memlane.daemon.domain.briefing import compose_briefing
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.service.requests import BriefingBody, SearchBody
from memlane.daemon.service.search import Search
from memlane.projections import queries


class Briefings:
    def __init__(self, *, reader: Reader, search: Search) -> None:
        self._reader = reader
        self._search = search

    async def briefing(self, body: BriefingBody) -> dict[str, Any]:
        """The memories worth showing at a session start, within ``body.budget`` characters."""
        candidates = await self._reader.read(lambda conn: queries.briefing_rows(conn, body.project))
        if body.context:
            search = SearchBody(query=body.context, project=body.project, k=10)
            candidates["relevant"] = await self._search.search(search)
        chosen, text = compose_briefing(candidates, budget=body.budget)
        return {"project": body.project, "text": text, "chars": len(text),
                "memories": [{k: m[k] for k in ("id", "text", "kind", "state")} for m in chosen]}
