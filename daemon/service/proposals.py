"""Consolidations waiting for the user (the viewer's review): each open cluster shown with the
merge that accepting it records, then accepted (as shown, or as edited) or rejected.

The merge shown is the LLM's when the consolidate job holds one for exactly the cluster's
live sources (with an LLM, the job asks it once per waiting cluster), else the offline
(extractive) one, computed when the page is drawn: drawing the page never calls the LLM.
Accepting recomputes nothing the user did not see: the text that comes back with the request
is compared with that same merge and recorded with its model, or, when it differs, recorded as
the user's edit (redacted like any stored text). A rejected cluster closes unmerged and its
members are never clustered together again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from memlane.daemon.domain.clustering import MIN_SIZE
from memlane.daemon.domain.consolidation import (
    OFFLINE_MODEL,
    Merge,
    Source,
    decide_consolidation,
)
from memlane.daemon.domain.errors import BadRequest, NotFound, Unavailable
from memlane.daemon.domain.redaction import redact
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.writer import Writer
from memlane.daemon.service.lifecycle import live_sources
from memlane.events.model import ConsolidationRejected
from memlane.projections import queries, review_queries

EDIT_MODEL = "user"
EDIT_PROMPT = "review-edit"
SHOWN = 10  # open clusters shown at once (each merge embeds its sentences)

MergeSources = Callable[[list[Source]], Awaitable[Merge]]


class Proposals:
    def __init__(self, *, reader: Reader, writer: Writer, merge: MergeSources,
                 lock: anyio.Lock) -> None:
        self._reader = reader
        self._writer = writer
        self._merge = merge
        self._lock = lock  # the consolidate job's: a cluster is merged or rejected once

    async def waiting(self) -> list[dict[str, Any]]:
        """Open clusters (oldest first) with their live members and the merge of them."""
        clusters = await self._reader.read(lambda c: queries.clusters(c, open_only=True))
        found = []
        for cluster in sorted(clusters, key=lambda c: c["id"])[:SHOWN]:
            sources, project = await self._reader.read(
                lambda c, ids=cluster["members"]: live_sources(c, ids))
            if len(sources) < MIN_SIZE:
                continue
            try:
                merge: Merge | None = await self._merge(sources)
            except Unavailable:
                merge = None  # the embedding model is loading: the page says so
            found.append({"cluster": cluster["id"], "project": project,
                          "text": merge.text if merge else None,
                          "model": merge.model if merge else None,
                          "offline": merge is not None and merge.model == OFFLINE_MODEL,
                          "sources": [{"id": s.id, "text": s.text} for s in sources]})
        return found

    async def accept(self, cluster: int, text: str) -> dict[str, Any]:
        """Record the merge of an open cluster with ``text`` (the merge shown, or the edit)."""
        async with self._lock:
            return await self._accept(cluster, text)

    async def _accept(self, cluster: int, text: str) -> dict[str, Any]:
        sources, project = await self._open(cluster)
        merge = await self._merge(sources)
        if text.strip() != merge.text.strip():
            clean = redact(text).text
            if not clean.strip():
                raise BadRequest("text is blank", code="blank_text")
            merge = Merge(text=clean, kind=merge.kind, tags=merge.tags, model=EDIT_MODEL,
                          prompt_version=EDIT_PROMPT)
        records, _ = await self._writer.submit(lambda _v, seq: (
            decide_consolidation(cluster, project, sources, merge, seq), None))
        return {"cluster": cluster, "proven": records[0].seq,
                "sources": [s.id for s in sources], "edited": merge.model == EDIT_MODEL}

    async def reject(self, cluster: int) -> dict[str, Any]:
        """Close an open cluster unmerged."""
        async with self._lock:
            members = await self._members(cluster)
            await self._writer.append([ConsolidationRejected(cluster=cluster,
                                                             members=tuple(members))])
        return {"cluster": cluster, "rejected": members}

    async def _open(self, cluster: int) -> tuple[list[Source], str]:
        members = await self._members(cluster)
        sources, project = await self._reader.read(lambda c: live_sources(c, members))
        if len(sources) < MIN_SIZE:
            raise BadRequest(f"cluster {cluster} has {len(sources)} live members; a merge "
                             f"needs {MIN_SIZE}", code="too_few_sources")
        return sources, project

    async def _members(self, cluster: int) -> list[int]:
        found = await self._reader.read(lambda c: review_queries.cluster_of(c, cluster))
        if found is None:
            raise NotFound(f"no cluster {cluster}")
        outcome = found["consolidated_into"]
        if outcome is not None:
            raise BadRequest(f"cluster {cluster} was " + (
                "rejected" if outcome == 0 else f"consolidated into #{outcome}") + " already",
                code="not_open")
        return list(found["members"])
