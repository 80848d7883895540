"""What the viewer shows: timeline pages, a memory with its history, the link graph of a
project, search with its evidence, health, and a live feed of applied batches.

Reads go through the reader (read-your-writes); changes go through the same services as the
API's routes (forget, restore, jobs), so the viewer can do nothing the CLI cannot.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from memlane.daemon.domain.errors import BadRequest
from memlane.daemon.domain.graph_layout import Position, layout
from memlane.daemon.domain.state_history import Horizon, StateHistory, horizon_in, sample
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.writer import Writer
from memlane.daemon.service.memories import Memories
from memlane.daemon.service.requests import SearchBody, StoreBody
from memlane.daemon.service.search import Search
from memlane.daemon.service.status import Status
from memlane.events.compactor import compacted_through
from memlane.events.log import read_log
from memlane.events.model import (
    Consolidated,
    Expired,
    Forgotten,
    Pinned,
    Promoted,
    Record,
    Restored,
    Stored,
)
from memlane.projections import queries, viewer_queries

PAGE = 50
CHART_POINTS = 60
HORIZON_LOOKBACK = 4096  # seqs read back from a compaction's last one to find its last record
GRAPH_CAP = 5000  # nodes drawn at most, largest components first

Watch = Callable[[], MemoryObjectReceiveStream[list[Record]]]


class Viewer:
    def __init__(self, *, reader: Reader, writer: Writer,  # noqa: PLR0913 (keyword-only)
                 memories: Memories, search: Search, status: Status, watch: Watch,
                 log_dir: Path) -> None:
        self._reader = reader
        self._writer = writer
        self._memories = memories
        self._search = search
        self._status = status
        self._watch = watch
        self._log_dir = log_dir
        self._states = StateHistory()
        self._states_lock = anyio.Lock()
        self._compacted: tuple[int, Horizon | None] | None = None  # (through, its horizon)
        self._facets: tuple[int, dict[str, list[str]]] | None = None  # (newest id, choices)
        self._layouts: dict[str, tuple[tuple[tuple[int, int], ...], dict[int, Position]]] = {}

    async def timeline(self, filters: dict[str, str], *, before: int | None = None,
                       after: int | None = None) -> dict[str, Any]:
        rows = await self._reader.read(lambda conn: viewer_queries.timeline(
            conn, filters, before=before, after=after, limit=PAGE))
        older = rows[-1]["id"] if len(rows) == PAGE and after is None else None
        return {"rows": rows, "older": older}

    async def facets(self) -> dict[str, list[str]]:
        """The filter choices. Read whole once (a scan: ~0.1 s at 100k memories), then topped
        up from the rows added since: a memory's row is never deleted and its project, kind
        and source never change (forget keeps them), so nothing else can change them."""
        def top_up(conn: Any) -> dict[str, list[str]]:
            newest = conn.execute("SELECT coalesce(max(id), 0) FROM memories").fetchone()[0]
            if self._facets is None or newest < self._facets[0]:  # first, or a new projection
                self._facets = (newest, viewer_queries.facets(conn))
            elif newest > self._facets[0]:
                known = {name: set(values) for name, values in self._facets[1].items()}
                for row in conn.execute("SELECT DISTINCT project, kind, source FROM memories"
                                        " WHERE id > ?", (self._facets[0],)):
                    for name, value in zip(("project", "kind", "source"), row, strict=True):
                        known[name].add(value)
                self._facets = (newest, {name: sorted(values, key=_nulls_first)
                                         for name, values in known.items()})
            return self._facets[1]

        return await self._reader.read(top_up)

    async def memory(self, memory_id: int) -> dict[str, Any]:
        """The memory, every event that touched it, its lineage both ways and its links."""
        memory = await self._memories.get(memory_id)
        history = await self._memories.history(memory_id)

        def related(conn: Any) -> tuple[dict[str, list[int]], list[tuple[int, float]],
                                        dict[int, str]]:
            lineage = queries.lineage_of(conn, memory_id)
            links = queries.links_of(conn, memory_id)
            others = {*lineage["parents"], *lineage["children"], *(o for o, _ in links)}
            others.update(_mentioned(history))
            return lineage, links, queries.texts_of(conn, sorted(others))

        lineage, links, texts = await self._reader.read(related)
        pinned = await self._reader.read(
            lambda conn: viewer_queries.is_pinned(conn, memory_id))
        return {"memory": memory, "history": history, "lineage": lineage,
                "links": links, "texts": texts, "pinned": pinned}

    async def edit(self, memory_id: int, text: str) -> dict[str, Any]:
        """A new memory with ``text`` supersedes a live one, which expires (restorable) with
        the new one named as the reason. The same text again changes nothing."""
        old = await self._memories.get(memory_id)
        if old["state"] not in queries.LIVE_STATES:
            raise BadRequest(f"memory {memory_id} is {old['state']}; only a live memory can be "
                             "edited", code="not_live")
        stored = await self._memories.store(StoreBody(
            text=text, project=old["project"], kind=old["kind"], tags=old["tags"],
            source="viewer"))
        if stored["id"] != memory_id:
            await self._writer.append([Expired(
                memory=memory_id, reason=f"superseded by #{stored['id']} (edited)")])
        return {"id": stored["id"], "supersedes": memory_id}

    async def pin(self, memory_id: int, *, pinned: bool) -> dict[str, Any]:
        """Pin a live memory (it never expires) or unpin it."""
        memory = await self._memories.get(memory_id)
        if memory["state"] not in queries.LIVE_STATES:
            raise BadRequest(f"memory {memory_id} is {memory['state']}; only a live memory "
                             "can be pinned", code="not_live")
        await self._writer.append([Pinned(memory=memory_id, pinned=pinned)])
        return {"id": memory_id, "pinned": pinned}

    async def graph(self, project: str, cap: int = GRAPH_CAP) -> dict[str, Any]:
        """The project's linked memories, largest components first up to ``cap`` nodes, each
        with the position it is drawn at (laid out here, kept until the drawn links change)."""
        nodes, edges = await self._reader.read(
            lambda conn: viewer_queries.project_graph(conn, project))
        components = _components(nodes, edges)
        kept: list[list[int]] = []
        count = 0
        for component in components:
            if count + len(component) > cap:
                break
            kept.append(component)
            count += len(component)
        drawn = {i for component in kept for i in component}
        links = [(a, b, s) for a, b, s in edges if a in drawn and b in drawn]
        positions = await anyio.to_thread.run_sync(self._positions, project, kept, links)
        return {"project": project, "components": len(components), "shown": count,
                "total": len(nodes),
                "nodes": [{"id": i, **nodes[i], "x": positions[i][0], "y": positions[i][1]}
                          for component in kept for i in component],
                "edges": [[a, b, round(s, 4)] for a, b, s in links]}

    def _positions(self, project: str, components: list[list[int]],
                   links: list[tuple[int, int, float]]) -> dict[int, Position]:
        """The layout of these components, computed again only when the links drawn change."""
        key = tuple((a, b) for a, b, _ in links)
        known = self._layouts.get(project)
        if known is None or known[0] != key:
            known = self._layouts[project] = (key, layout(components, links))
        return known[1]

    async def search(self, query: str, project: str | None, k: int = 20) -> list[dict[str, Any]]:
        """The CLI's hybrid search, each hit with the parts of its score."""
        ranking = await self._search.ranked(SearchBody(query=query, project=project, k=k))
        return [{**hit, "dense": ranking.similarity.get(hit["id"]),
                 "lexical": hit["id"] in ranking.lexical} for hit in ranking.hits]

    async def health(self) -> dict[str, Any]:
        status = await self._status.status()
        log_bytes = await anyio.to_thread.run_sync(_tree_size, self._log_dir)
        return {**status, "log_bytes": log_bytes, "states": await self.states_over_time(),
                "compacted": await anyio.to_thread.run_sync(self._horizon)}

    def _horizon(self) -> Horizon | None:
        """Where the compacted part of the log ends (read again only when it moves)."""
        through = compacted_through(self._log_dir)
        if self._compacted is None or self._compacted[0] != through:
            self._compacted = (through, horizon_of(self._log_dir, through))
        return self._compacted[1]

    async def states_over_time(self) -> list[Any]:
        """Memories by state over time, sampled: the log read from where the last call
        stopped."""
        last = self._reader.last_seq
        async with self._states_lock:
            await anyio.to_thread.run_sync(lambda: self._states.observe(
                read_log(self._log_dir, self._states.seq + 1, upto=last)))
            return sample(self._states.points(), CHART_POINTS, until=datetime.now(UTC))

    async def live(self) -> AsyncGenerator[dict[str, Any], None]:
        """What each applied batch changed: the newest memory id, forgotten ids, and ids whose
    state changed."""
        with self._watch() as batches:
            async for batch in batches:
                if change := _change(batch):
                    yield change


def _change(batch: list[Record]) -> dict[str, Any] | None:
    new = [r.event.id for r in batch if isinstance(r.event, Stored | Consolidated)]
    gone = [r.event.memory for r in batch if isinstance(r.event, Forgotten)]
    changed = sorted({r.event.memory for r in batch
                      if isinstance(r.event, Expired | Restored | Promoted)} - set(gone))
    if not (new or gone or changed):
        return None
    return {"newest": max(new, default=None), "gone": gone, "changed": changed}


def _mentioned(history: list[dict[str, Any]]) -> set[int]:
    """Other memories a history names (link ends, consolidation sources, cluster members)."""
    found: set[int] = set()
    for event in history:
        found.update(i for key in ("a", "b", "id") if isinstance(i := event.get(key), int))
        found.update(event.get("sources") or ())
    return found


def _components(nodes: dict[int, Any], edges: list[tuple[int, int, float]]) -> list[list[int]]:
    """Connected components, largest first (ties: the oldest memory first)."""
    parent = {i: i for i in nodes}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b, _ in edges:
        parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in sorted(nodes):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def horizon_of(log_dir: Path, through: int) -> Horizon | None:
    """The last record kept at or before ``through``: looked for just before it, then (when
    compaction dropped a long run there, such as the vectors of a model switched away from)
    from the start. Read once per compaction: the caller keeps it until ``through`` moves."""
    if through <= 0:
        return None
    for start in (max(1, through - HORIZON_LOOKBACK), 1):
        if (found := horizon_in(read_log(log_dir, start, upto=through), through)) is not None:
            return found
    return None


def _nulls_first(value: str | None) -> tuple[bool, str]:
    """SQLite's ORDER BY: NULL before every text, texts by their bytes (code points)."""
    return (value is not None, value or "")


def _tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
