"""The lifecycle jobs: cluster, consolidate, age (the shell around the pure rules).

Each job gathers its inputs from the caught-up projection, calls the pure decider and hands
the events to the writer. One job of a kind runs at a time; a timer runs them all in turn and
clients run one on demand (``POST /v1/jobs/<name>``). In review mode clusters are not merged
by the job: they wait as proposals for the user (``service/proposals.py``); with an LLM, the job
asks it once per waiting cluster and holds its merge (in memory only: nothing of a proposal
reaches the disk before the user accepts it) for the review page to show. Two sources of one
consolidation, or members of a rejected cluster, are never clustered together again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import hashlib
from typing import Any

import anyio
import structlog

from memlane.daemon.domain.aging import AgePolicy, MemoryFacts, aging_events, decide_aging, due_for_check
from memlane.daemon.domain.aging import looks_substantive
from memlane.daemon.domain.clustering import MIN_SIZE, find_clusters
from memlane.daemon.domain.consolidation import (
    Merge,
    Source,
    decide_consolidation,
    extractive_merge,
    sentences_of,
)
from memlane.daemon.domain.errors import ApiError, Unavailable
from memlane.daemon.domain.models import ModelSpec
from memlane.daemon.runtime.indexer import Indexer
from memlane.daemon.runtime.ports import Embeds
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.thresholds import Thresholds
from memlane.daemon.runtime.writer import Writer
from memlane.daemon.service.ports import Consolidator
from memlane.daemon.service.router import Router
from memlane.events.model import Clustered, Event
from memlane.projections import queries

log = structlog.get_logger()
INDEX_WAIT = 30.0


class Lifecycle:
    """Runs one job of a kind at a time, on demand or in a timed round."""

    def __init__(self, *, reader: Reader, writer: Writer, engine: Embeds, indexer: Indexer,
                 thresholds: Thresholds, router: Router, llm: Consolidator | None,
                 policy: AgePolicy | None = None, review: bool = False) -> None:
        self._reader = reader
        self._writer = writer
        self._engine = engine
        self._indexer = indexer
        self._thresholds = thresholds
        self.router = router
        self.llm = llm
        self.policy = policy or AgePolicy()
        self.review = review
        self._locks: dict[str, anyio.Lock] = {}
        # Review mode: the LLM's merge of each waiting cluster, by the digest of its live
        # sources (a source forgotten or expired since makes the merge unreachable).
        self._held: dict[str, Merge] = {}
        # Sync sets this: a once-per-team lease on consolidating a cluster of shared memories
        # (False: another device of the team consolidates it, and this one adopts its result).
        self.claim: Callable[[str, list[int]], Awaitable[bool]] | None = None

    def job_lock(self, job: str) -> anyio.Lock:
        """The lock one job of this kind holds while it runs."""
        return self._locks.setdefault(job, anyio.Lock())

    async def run_job(self, job: str, **options: Any) -> dict[str, Any]:
        jobs: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
            "cluster": self.cluster, "consolidate": self.consolidate, "route": self.route,
            "age": self.age}
        async with self.job_lock(job):
            return await jobs[job](**options)

    async def run_all(self) -> None:
        """One round of every job, in dependency order (the timer's work)."""
        for job in ("cluster", "consolidate", "route", "age"):
            try:
                await self.run_job(job)
            except ApiError as exc:
                log.info("job_skipped", job=job, reason=exc.message)

    async def cluster(self) -> dict[str, Any]:
        """Record new complete-linkage clusters among live memories outside open clusters."""
        spec = self._spec()
        await self._indexer.wait_idle(INDEX_WAIT)  # every stored memory linked first

        def gather(conn: Any) -> tuple[dict[tuple[int, int], float], set[int], list[Any]]:
            eligible = (queries.active_ids(conn) | _proven_ids(conn)) - \
                queries.open_cluster_members(conn)
            forbidden = queries.lineage_pairs(conn) + queries.sibling_pairs(conn)
            return queries.live_links(conn), eligible, forbidden

        links, eligible, forbidden = await self._reader.read(gather)
        threshold = await self._thresholds.of(spec, "cluster")
        found = find_clusters(links, eligible, threshold=threshold, forbidden=forbidden)

        def decide(_view: Any, seq: int) -> tuple[list[Event], None]:
            return [Clustered(cluster=seq + i, members=c.members, cohesion=c.cohesion)
                    for i, c in enumerate(found)], None

        records, _ = await self._writer.submit(decide) if found else ([], None)
        return {"clusters": [{"id": r.seq, "members": list(r.event.members)}  # type: ignore[union-attr]
                             for r in records]}

    async def consolidate(self, *, offline: bool = False) -> dict[str, Any]:
        """Merge each open cluster into a proven memory: extractively when ``offline``, else
        through the LLM; without one, or in review mode, clusters wait."""
        if self.review:
            return await self._cluster_for_review(ask_llm=not offline and self.llm is not None)
        if not offline and self.llm is None:
            raise Unavailable("no LLM key is configured: clusters wait; "
                              "`memlane consolidate --offline` merges them without an LLM",
                              code="no_llm")
        async with self.job_lock("cluster"):  # what was just stored can be merged right away
            clustered = await self.cluster()
        done: list[dict[str, Any]] = []
        waiting: list[dict[str, Any]] = []
        for cluster in await self._reader.read(lambda c: queries.clusters(c, open_only=True)):
            sources, project = await self._reader.read(
                lambda c, ids=cluster["members"]: live_sources(c, ids))
            if len(sources) < 3:
                continue
            if self.claim is not None and not await self.claim(project, [s.id for s in sources]):
                waiting.append({"cluster": cluster["id"],
                                "reason": "another device of the team consolidates it"})
                continue
            try:
                merge = await (self.offline_merge(sources) if offline
                               else self._llm_merge(sources))
            except ApiError as exc:  # the cluster waits for the next round
                waiting.append({"cluster": cluster["id"], "reason": exc.message})
                if exc.code in ("llm_budget", "llm_quota"):
                    break
                continue
            records, _ = await self._writer.submit(
                lambda _v, seq, s=sources, m=merge, cid=cluster["id"], p=project:
                (decide_consolidation(cid, p, s, m, seq), None))
            done.append({"cluster": cluster["id"], "proven": records[0].seq,
                         "sources": [s.id for s in sources]})
        return {"consolidated": done, "waiting": waiting, **clustered}

    async def _cluster_for_review(self, *, ask_llm: bool) -> dict[str, Any]:
        """Cluster, and (``ask_llm``) ask the LLM once for each waiting cluster's merge."""
        async with self.job_lock("cluster"):
            clustered = await self.cluster()
        waiting: list[dict[str, Any]] = []
        held: dict[str, Merge] = {}
        for cluster in await self._reader.read(lambda c: queries.clusters(c, open_only=True)):
            sources, _ = await self._reader.read(
                lambda c, ids=cluster["members"]: live_sources(c, ids))
            key = sources_digest(sources)
            item = {"cluster": cluster["id"], "reason": "waiting for review"}
            if ask_llm and len(sources) >= MIN_SIZE and key not in self._held:
                try:
                    self._held[key] = await self._llm_merge(sources)
                except ApiError as exc:  # the offline merge is shown; the next round asks
                    item["reason"] = f"waiting for review (offline merge): {exc.message}"
                    ask_llm = exc.code not in ("llm_budget", "llm_quota")
            if key in self._held:
                held[key] = self._held[key]
                item["merged_by"] = held[key].model
            waiting.append(item)
        self._held = held  # merges of clusters accepted, rejected or changed since are dropped
        return {"consolidated": [], "waiting": waiting, **clustered}

    async def review_merge(self, sources: list[Source]) -> Merge:
        """The merge the review shows and accepting records: the LLM's, when the job holds
        one for exactly these sources, else the offline one."""
        held = self._held.get(sources_digest(sources))
        return held if held is not None else await self.offline_merge(sources)

    async def offline_merge(self, sources: list[Source]) -> Merge:
        sentences = sentences_of(sources)
        vectors = await self._engine.embed(sentences)
        threshold = await self._thresholds.of(self._spec(), "cluster")
        return extractive_merge(sources, sentences, vectors @ vectors.T, threshold=threshold)

    async def _llm_merge(self, sources: list[Source]) -> Merge:
        assert self.llm is not None
        return await self.llm.merge(sources)

    async def route(self, *, dry_run: bool = False, write: bool = False) -> dict[str, Any]:
        """Route proven memories into their project's files (see :mod:`router`)."""
        return await self.router.route(dry_run=dry_run, write=write)

    async def age(self, *, dry_run: bool = False) -> dict[str, Any]:
        """Reprieve or expire isolated memories past the age limit (``dry_run``: only say so)."""
        await self._indexer.wait_idle(INDEX_WAIT)  # a memory about to be linked is not isolated
        memories, stored = await self._reader.read(_aging_inputs)
        due = [m for m in memories if due_for_check(m, stored.get(m.project, ()), self.policy)]
        substance = {m.id: await self._has_substance(m.text) for m in due}
        decisions = decide_aging(due, stored, substance, self.policy)
        if decisions and not dry_run:
            reprieves = {m.id: m.reprieves for m in due}
            await self._writer.append(aging_events(decisions, reprieves))
        return {"dry_run": dry_run, "decisions": [
            {"id": d.memory, "action": d.action, "age": d.age, "reason": d.reason}
            for d in decisions]}

    async def _has_substance(self, text: str) -> bool:
        if self.llm is not None:
            try:
                return await self.llm.has_substance(text)
            except ApiError:
                pass  # over budget or unreachable: the offline check decides
        return looks_substantive(text)

    def _spec(self) -> ModelSpec:
        embedder = self._engine.embedder
        if embedder is None:
            raise Unavailable("the embedding model is not loaded", code="model_not_ready")
        return embedder.spec


def _proven_ids(conn: Any) -> set[int]:
    return {row[0] for row in conn.execute("SELECT id FROM memories WHERE state = 'proven'")}


def sources_digest(sources: list[Source]) -> str:
    """Names a cluster's live sources, ids and texts (an edit or a forget changes it)."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(f"{source.id}\0{len(source.text)}\0{source.text}\0".encode())
    return digest.hexdigest()


def live_sources(conn: Any, ids: list[int]) -> tuple[list[Source], str]:
    rows = queries.get_memories(conn, ids)
    live = [rows[i] for i in ids if i in rows and rows[i]["state"] in queries.LIVE_STATES]
    project = live[0]["project"] if live else ""
    return [Source(r["id"], r["text"], r["kind"], tuple(r["tags"])) for r in live], project


def _aging_inputs(conn: Any) -> tuple[list[MemoryFacts], dict[str, list[int]]]:
    clustered = queries.open_cluster_members(conn)
    memories = [MemoryFacts(id=i, project=p, kind=k, text=t or "", degree=d, reprieves=r,
                            refreshed_seq=s, clustered=i in clustered)
                for i, p, k, t, d, r, s in queries.aging_rows(conn)]
    return memories, queries.stored_ids_by_project(conn)
