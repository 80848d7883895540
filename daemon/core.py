"""The daemon's operations (store, get, search, import, status, rebuild) over its parts.

The imperative shell: it gathers inputs, calls the pure deciders, hands events to the writer
and reads the projections once they show every acknowledged write.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from anyio.abc import TaskGroup
import numpy as np
import structlog

from memlane.daemon.admission import AdmissionIndex, BatchView
from memlane.daemon.briefing import compose_briefing
from memlane.daemon.calibration import distribution, pair_scores, suggest
from memlane.daemon.decide import StoreOutcome, StoreRequest, decide_store
from memlane.daemon.engine import EmbedEngine
from memlane.daemon.errors import ApiError, BadRequest, NotFound, Unavailable
from memlane.daemon.history import history
from memlane.daemon.indexer import Indexer
from memlane.daemon.forgetting import purge
from memlane.daemon.gate import Gate
from memlane.daemon.kinds import detect_kind
from memlane.daemon.linker import threshold_for
from memlane.daemon.redact import redact
from memlane.daemon.recall import RecallHit, decide_recalls
from memlane.daemon.paths import Paths
from memlane.daemon.projector import Projector
from memlane.daemon.protocol import BriefingBody, SearchBody, StoreBody
from memlane.daemon.retrieval import Ranking, dense_candidates, lexical_candidates, rank
from memlane.daemon.writer import Writer
from memlane.events.log import read_log
from memlane.events.model import KINDS, Event, Forgotten, Restored, ThresholdSet
from memlane.projections import queries
from memlane.projections.catchup import Projections

if TYPE_CHECKING:
    from memlane.daemon.hooks import Hooks
    from memlane.daemon.lifecycle import Lifecycle

T = TypeVar("T")
log = structlog.get_logger()
SEARCH_FRESHNESS_TIMEOUT = 5.0
CALIBRATION_SAMPLE = 3000  # memories per project: pairs grow with the square


@dataclass
class Core:
    """Everything a request handler may touch."""

    paths: Paths
    writer: Writer
    projections: Projections
    projector: Projector
    engine: EmbedEngine
    indexer: Indexer
    started: float
    lifecycle: Lifecycle | None = None  # set by the composition root once the core exists
    hooks: Hooks | None = None  # likewise
    gate: Gate = field(default_factory=Gate)
    stop_listening: anyio.CancelScope | None = None
    tcp_error: str | None = None
    background: TaskGroup | None = None  # for work a request need not wait for
    _thresholds: dict[tuple[str, str], float] = field(default_factory=dict)

    async def shut_down(self, timeout: float) -> None:
        """Stop accepting, let requests in flight finish (bounded); the caller then cancels."""
        if self.stop_listening is not None:
            self.stop_listening.cancel()
        finished = await self.gate.drain(timeout)
        log.info("drained", finished=finished, inflight=self.gate.inflight)

    async def read(self, query: Callable[[Any], T]) -> T:
        """Run a read against the SQLite projection once it reflects every acknowledged event."""
        await self.projector.wait_for(self.writer.log.last_seq)

        def run() -> T:
            with self.projections.lock:
                return query(self.projections.sqlite.conn)

        return await anyio.to_thread.run_sync(run)

    async def store(self, body: StoreBody) -> dict[str, Any]:
        request = to_store_request(body)
        records, outcome = await self.writer.submit(
            lambda view, seq: decide_store(view, request, seq))
        return store_answer(outcome)

    async def import_many(self, bodies: list[StoreBody]) -> dict[str, Any]:
        requests = [to_store_request(b) for b in bodies]

        def decide_all(view: BatchView, seq: int) -> tuple[list[Event], list[StoreOutcome]]:
            events: list[Event] = []
            outcomes = []
            for request in requests:
                new, outcome = decide_store(view, request, seq + len(events))
                view.observe(new)
                events.extend(new)
                outcomes.append(outcome)
            return events, outcomes

        _, outcomes = await self.writer.submit(decide_all)
        duplicates = sum(o.duplicate for o in outcomes)
        return {"stored": len(outcomes) - duplicates, "duplicates": duplicates,
                "ids": [o.id for o in outcomes]}

    async def get(self, memory_id: int) -> dict[str, Any]:
        memory = await self.read(lambda conn: queries.get_memory(conn, memory_id))
        if memory is None:
            raise NotFound(f"no memory with id {memory_id}")
        return memory

    async def search(self, body: SearchBody) -> list[dict[str, Any]]:
        ranking = await self.ranked_search(body)
        if body.recall and ranking.hits:
            await self.record_recalls(body.query, ranking.hits, ranking.similarity)
        return ranking.hits

    async def ranked_search(self, body: SearchBody, *, fresh: bool = True) -> Ranking:
        """Hits with their evidence; ``fresh`` waits (bounded) until every earlier store has
        its vector. The query is embedded while the full-text index is searched."""
        if not body.query.strip():
            raise BadRequest("the query is blank; give it some words", code="blank_input")
        vector: np.ndarray | None = None
        lexical: list[tuple[int, float]] = []

        async def embed_query() -> None:
            nonlocal vector
            if self.engine.ready:
                if fresh:
                    await self.indexer.wait_until_indexed(self.writer.log.last_seq,
                                                          SEARCH_FRESHNESS_TIMEOUT)
                vector = (await self.engine.embed([body.query], input_type="query"))[0]

        async def search_text() -> None:
            nonlocal lexical
            lexical = await self.read(
                lambda conn: lexical_candidates(conn, body.query, body.project))

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(embed_query)
                tg.start_soon(search_text)
        except BaseExceptionGroup as group:  # a client's error stays a client's error
            error = next((e for e in group.exceptions if isinstance(e, ApiError)), None)
            if error is None:
                raise
            raise error from None

        def run(conn: Any) -> Ranking:
            dense = [] if vector is None else dense_candidates(
                self.projections.vectors, conn, vector, body.project)
            return rank(conn, dense, lexical, body.k)

        return await self.read(run)

    async def floor(self, name: str) -> float:
        """A similarity threshold of the loaded model (infinite without a model); cached, as
        only ``calibrate`` changes them."""
        embedder = self.engine.embedder
        if embedder is None:
            return float("inf")
        spec = embedder.spec
        key = (spec.name, name)
        if key not in self._thresholds:
            self._thresholds[key] = await self.read(lambda conn: threshold_for(conn, spec, name))
        return self._thresholds[key]

    async def record_recalls(self, query: str, hits: list[dict[str, Any]],
                             similarity: dict[int, float]) -> None:
        floor = await self.floor("recall")
        counts = await self.read(lambda conn: queries.recall_counts(conn, [h["id"] for h in hits]))
        candidates = [RecallHit(h["id"], rank, h["score"], similarity.get(h["id"]), h["state"])
                      for rank, h in enumerate(hits, start=1)]
        events = decide_recalls(redact(query).text, candidates, floor=floor, recalls=counts)
        if events:
            await self.writer.append(events)

    async def briefing(self, body: BriefingBody) -> dict[str, Any]:
        """The memories worth showing at a session start, within ``body.budget`` characters."""
        candidates = await self.read(lambda conn: queries.briefing_rows(conn, body.project))
        if body.context:
            search = SearchBody(query=body.context, project=body.project, k=10)
            candidates["relevant"] = await self.search(search)
        chosen, text = compose_briefing(candidates, budget=body.budget)
        return {"project": body.project, "text": text, "chars": len(text),
                "memories": [{k: m[k] for k in ("id", "text", "kind", "state")} for m in chosen]}

    async def calibrate(self, *, apply: bool) -> dict[str, Any]:
        """The similarity distribution of live memories and suggested thresholds (recorded as
        ``ThresholdSet`` events when ``apply``)."""
        embedder = self.engine.embedder
        if embedder is None:
            raise Unavailable("the embedding model is not loaded", code="model_not_ready")
        spec = embedder.spec
        by_project = await self.read(queries.live_ids_by_project)
        with self.projections.lock:
            groups = [self.projections.vectors.vectors(ids[:CALIBRATION_SAMPLE])[1]
                      for ids in by_project.values()]
        scores = [pair_scores(v) for v in groups if len(v) > 1]
        nearest = np.concatenate([n for n, _ in scores]) if scores else np.zeros(0)
        pairs = np.concatenate([p for _, p in scores]) if scores else np.zeros(0)
        current = await self.read(lambda conn: {name: threshold_for(conn, spec, name)
                                               for name in spec.thresholds})
        suggested = suggest(pairs, current)
        if apply:
            await self.writer.append([ThresholdSet(model=spec.name, name=name, value=value)
                                      for name, value in suggested.items()
                                      if value != current.get(name)])
            self._thresholds.clear()
        return {"model": spec.name, "memories": int(sum(len(v) for v in groups)),
                "nearest_neighbour": distribution(nearest.tolist()),
                "pairs": distribution(pairs.tolist()),
                "suspected_duplicates": int((nearest >= current["duplicate"]).sum()),
                "current": current, "suggested": suggested, "applied": apply}

    async def forget(self, memory_id: int) -> dict[str, Any]:
        """Purge a memory's text and vector from the log and every projection."""
        memory = await self.get(memory_id)
        if memory["state"] == "forgotten":
            return {"id": memory_id, "forgotten": True, "segments_rewritten": 0}
        digest = await self.read(lambda conn: queries.content_hash_of(conn, memory_id))
        text = memory["text"] or ""

        def decide(_view: Any, _seq: int) -> tuple[list[Event], int]:
            segments = self.writer.log.rewrite(purge(memory_id))
            return [Forgotten(memory=memory_id, content_hash=digest)], segments

        records, segments = await self.writer.submit(decide)
        await self.projector.wait_for(records[-1].seq)
        await anyio.to_thread.run_sync(self._scrub, text)
        return {"id": memory_id, "forgotten": True, "segments_rewritten": segments}

    def _scrub(self, text: str) -> None:
        """Leave no copy of a forgotten text in projection files or torn-tail copies."""
        with self.projections.lock:
            self.projections.scrub()
        needle = text.encode()
        for torn in (self.paths.log_dir / "torn").glob("*"):
            if needle and needle in torn.read_bytes():
                torn.unlink()

    async def history(self, memory_id: int) -> list[dict[str, Any]]:
        """Every event that touched the memory (a scan of the log)."""
        last = self.writer.log.last_seq
        return await anyio.to_thread.run_sync(
            lambda: history(read_log(self.paths.log_dir, 1, upto=last), memory_id))

    async def restore(self, memory_id: int) -> dict[str, Any]:
        """Undo an expiry."""
        memory = await self.get(memory_id)
        if memory["state"] != "expired":
            raise BadRequest(f"memory {memory_id} is {memory['state']}, not expired",
                             code="not_expired")
        await self.writer.append([Restored(memory=memory_id)])
        return await self.get(memory_id)

    async def status(self) -> dict[str, Any]:
        counts = await self.read(lambda conn: (queries.count_by_state(conn),
                                               queries.count_by_project(conn),
                                               queries.unknown_event_count(conn),
                                               queries.pending_work(conn)))
        embedder = self.engine.embedder
        return {
            "last_seq": self.writer.log.last_seq,
            "applied_seq": self.projections.applied_seq,
            "memories": counts[0],
            "projects": counts[1],
            "model": embedder.spec.name if embedder else None,
            "pipeline": embedder.pipeline if embedder else None,
            "model_state": "ready" if embedder else ("failed" if self.engine.load_error else "loading"),
            "embedding_backlog": self.indexer.backlog,
            "embed_passes": self.engine.passes,
            "vectors": len(self.projections.vectors),
            "unknown_events": counts[2],
            **counts[3],
            "llm": self._llm_status(),
            "tcp_error": self.tcp_error,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "pid": os.getpid(),
        }

    def _llm_status(self) -> dict[str, Any]:
        llm = self.lifecycle.llm if self.lifecycle is not None else None
        budget = getattr(llm, "budget", None)
        if budget is None:
            return {"configured": False}
        return {"configured": True, "calls_today": budget.used_today, "daily_budget": budget.limit}

    async def export(self, *, project: str | None, include_expired: bool) -> list[dict[str, Any]]:
        return await self.read(lambda conn: list(queries.export_rows(
            conn, project=project, include_expired=include_expired)))

    async def rebuild(self) -> dict[str, int]:
        await self.projector.wait_for(self.writer.log.last_seq)
        last = self.writer.log.last_seq
        count = await anyio.to_thread.run_sync(
            self.projections.rebuild, self.paths.log_dir, last)
        return {"replayed": count, "last_seq": last}


def to_store_request(body: StoreBody) -> StoreRequest:
    """Validate a store body and decide its kind; the text is stored with secrets redacted."""
    if not body.text.strip():
        raise BadRequest("text is blank", code="blank_text")
    kind = detect_kind(body.text, body.tags, body.kind)
    if kind not in KINDS:
        raise BadRequest(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}", code="bad_kind")
    clean = redact(body.text)
    return StoreRequest(text=clean.text, project=body.project or "global", kind=kind,
                        source=body.source, tags=tuple(body.tags),
                        idempotency_key=body.idempotency_key, redactions=clean.count)


def store_answer(outcome: StoreOutcome) -> dict[str, Any]:
    return {"id": outcome.id, "seq": outcome.id, "duplicate": outcome.duplicate,
            "kind": outcome.kind, "redactions": outcome.redactions}


def seed_admission(projections: Projections) -> AdmissionIndex:
    """Build the writer's dedup/idempotency index from the caught-up projection."""
    index = AdmissionIndex()
    for memory_id, project, digest, state, key in queries.admission_rows(projections.sqlite.conn):
        index.load_row(memory_id, project, digest, live=state in queries.LIVE_STATES, key=key)
    return index

