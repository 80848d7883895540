"""The viewer's review: what consolidations and routes did (with undo) and what routes propose
(with the exact diff against the target file; accept, reject, or edit then accept).

A diff is shown with the digest of the file it was computed from; accepting checks the digest
again, so what is written is exactly what the user saw. Editing a proposal before accepting
makes a new proven memory from the old one (a one-source consolidation: the old one expires,
an undo brings it back), so every line memlane writes is the text of a memory in the log and
forget can find it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import anyio
import msgspec

from memlane.daemon.domain.consolidation import Merge, Source, decide_consolidation
from memlane.daemon.domain.errors import ApiError, BadRequest, NotFound
from memlane.daemon.domain.redaction import redact
from memlane.daemon.domain.review import (
    MemoryFacts,
    RouteFacts,
    Verdict,
    decide_route_review,
    decide_undo_consolidation,
    route_diff,
)
from memlane.daemon.domain.routing import already_present
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.writer import Writer
from memlane.daemon.service.proposals import EDIT_MODEL, EDIT_PROMPT, Proposals
from memlane.daemon.service.unrouting import WriteFile, unroute
from memlane.events.model import Event, Restored
from memlane.projections import queries, review_queries

MAX_FILE_BYTES = 1024 * 1024


class Review:
    def __init__(self, *, reader: Reader, writer: Writer, write_file: WriteFile,
                 proposals: Proposals, lock: anyio.Lock) -> None:
        self._reader = reader
        self._writer = writer
        self._write_file = write_file
        self.proposals = proposals
        # The route job's: a file is changed by one of them at a time, and a memory made by
        # an edit is routed here, never by the job in between.
        self._lock = lock

    async def overview(self) -> dict[str, Any]:
        """Consolidations waiting, recent consolidations and routes; each live routing
        proposal with its diff."""
        consolidations, routes = await self._reader.read(lambda conn: (
            review_queries.recent_consolidations(conn), review_queries.recent_routes(conn)))
        for route in routes:
            if route["action"] == "proposed" and route["state"] in queries.LIVE_STATES:
                current = await anyio.to_thread.run_sync(_read, Path(route["target"]))
                _, route["diff"] = route_diff(current, route["memory"], route["text"],
                                              Path(route["target"]).name)
                route["digest"] = digest(current)
        return {"proposals": await self.proposals.waiting(), "consolidations": consolidations,
                "routes": routes}

    async def undo_consolidation(self, proven: int) -> dict[str, Any]:
        """Restore the sources, retire the proven memory, and take its routed lines back."""
        async with self._lock:
            return await self._undo_consolidation(proven)

    async def _undo_consolidation(self, proven: int) -> dict[str, Any]:
        found, sources = await self._reader.read(
            lambda conn: review_queries.undo_facts(conn, proven))
        if found is None:
            raise NotFound(f"no memory with id {proven}")
        events = decide_undo_consolidation(MemoryFacts(*found), [MemoryFacts(*s) for s in sources])
        route = await self._route(proven, required=False)
        diff = None
        if route is not None and route["action"] == "written":
            diff = await self._unroute(route)
            events.append(decide_route_review(_facts(route), "undone",
                                              note="its consolidation was undone"))
        await self._writer.append(events)
        return {"id": proven, "restored": [e.memory for e in events if isinstance(e, Restored)],
                "unrouted": diff}

    async def accept_route(self, memory: int, *, digest_seen: str,
                           text: str | None = None) -> dict[str, Any]:
        """Write a proposed route into its file (``text``: the user's edit of the memory)."""
        async with self._lock:
            return await self._accept_route(memory, digest_seen, text)

    async def _accept_route(self, memory: int, digest_seen: str,
                            text: str | None) -> dict[str, Any]:
        route = await self._route(memory)
        decide_route_review(_facts(route), "accepted")  # only a proposal: fails early
        if route["state"] not in queries.LIVE_STATES:
            raise BadRequest(f"memory {memory} is {route['state']}", code="not_live")
        path = Path(route["target"])
        current = await anyio.to_thread.run_sync(_read, path)
        if digest(current) != digest_seen:
            raise ApiError(f"{path} changed since its diff was shown; reload the review",
                           code="stale_diff", status=409)
        events: list[Event] = []
        written, written_text = memory, route["text"]
        if text is not None and text.strip() != route["text"].strip():
            written, written_text = await self._supersede(route, text)
            events.append(decide_route_review(_facts(route), "rejected",
                                              note=f"edited into #{written}"))
        if not already_present(current, written, written_text):
            updated, _ = route_diff(current, written, written_text, path.name)
            await anyio.to_thread.run_sync(self._write_file, path, updated.encode(),
                                           None if path.exists() else 0o644)
        proposal = RouteFacts(written, route["target"], route["section"], "proposed")
        events.append(decide_route_review(proposal, "accepted"))
        await self._writer.append(events)
        return {"memory": written, "target": str(path), "action": "written"}

    async def reject_route(self, memory: int) -> dict[str, Any]:
        async with self._lock:
            route = await self._route(memory)
            await self._writer.append([decide_route_review(_facts(route), "rejected")])
        return {"memory": memory, "target": route["target"], "action": "skipped"}

    async def undo_route(self, memory: int) -> dict[str, Any]:
        """Take the lines a route wrote back out of its file."""
        async with self._lock:
            route = await self._route(memory)
            event = decide_route_review(_facts(route), "undone")
            diff = await self._unroute(route)
            await self._writer.append([event])
        return {"memory": memory, "target": route["target"], "unrouted": diff}

    async def _supersede(self, route: dict[str, Any], text: str) -> tuple[int, str]:
        """A new proven memory with the user's text, made from the proposed one."""
        clean = redact(text).text
        if not clean.strip():
            raise BadRequest("text is blank", code="blank_text")
        source = Source(route["memory"], route["text"], route["kind"],
                        tuple(_tags(route["tags"])))
        merge = Merge(text=clean, kind=route["kind"], tags=(), model=EDIT_MODEL,
                      prompt_version=EDIT_PROMPT)
        records, _ = await self._writer.submit(lambda _v, seq: (
            decide_consolidation(None, route["project"], [source], merge, seq), None))
        return records[0].seq, clean

    async def _route(self, memory: int, *, required: bool = True) -> dict[str, Any] | None:
        route = await self._reader.read(lambda conn: review_queries.route_of(conn, memory))
        if route is None and required:
            raise NotFound(f"memory {memory} has no route")
        return route

    async def _unroute(self, route: dict[str, Any]) -> dict[str, str] | None:
        return await anyio.to_thread.run_sync(
            unroute, Path(route["target"]), {route["memory"]: route["text"]}, self._write_file)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogateescape")).hexdigest()[:32]


def _read(path: Path) -> str:
    if not path.is_file():
        return ""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise BadRequest(f"{path} is over {MAX_FILE_BYTES} bytes; memlane does not edit it",
                         code="file_too_large")
    return path.read_text(encoding="utf-8", errors="surrogateescape")


def _facts(route: dict[str, Any]) -> RouteFacts:
    return RouteFacts(route["memory"], route["target"], route["section"], route["action"])


def _tags(raw: str) -> list[str]:
    return msgspec.json.decode(raw, type=list[str])
