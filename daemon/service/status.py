"""``GET /v1/status`` and ``/v1/health``: what the daemon holds and how its parts are doing."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import anyio
import structlog
from memlane.daemon.runtime.indexer import Indexer
from memlane.daemon.runtime.ports import Embeds
from memlane.daemon.runtime.projector import Projector
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.storage import ADVICE, free_bytes, state_dir_refusal
from memlane.events.mentions import referenced
from memlane.events.log import EventLog
from memlane.events.model import Record
from memlane.events.sizes import LogSizes
from memlane.events.seal import SealReport
from memlane.projections import queries

log = structlog.get_logger()


class SpendsBudget(Protocol):
    """The LLM's daily budget, where one is configured."""

    @property
    def used_today(self) -> int: ...

    @property
    def limit(self) -> int: ...


class Status:
    def __init__(self, *, reader: Reader, log: EventLog, engine: Embeds, indexer: Indexer,
                 projector: Projector, home: Path, budget: SpendsBudget | None,
                 hook_failures: Callable[[], int], started: float,
                 recent_errors: Callable[[], list[dict[str, Any]]] = list,
                 compaction: Callable[[], dict[str, Any]] | None = None) -> None:
        self._reader = reader
        self._projector = projector
        self._home = home
        self._log = log
        self._sealed: SealReport | None = None
        self._engine = engine
        self._indexer = indexer
        self._budget = budget
        self._hook_failures = hook_failures
        self._started = started
        self._recent_errors = recent_errors
        self._compaction = compaction
        self._sizes = LogSizes(log.directory)
        self.tcp_error: str | None = None  # set by the composition root when TCP cannot bind

    def model_state(self) -> str:
        if self._engine.embedder is not None:
            return "ready"
        return "failed" if self._engine.load_error else "loading"

    async def health(self) -> dict[str, Any]:
        embedder = self._engine.embedder
        return {"status": self.model_state(), "model": embedder.spec.name if embedder else None,
                "pipeline": embedder.pipeline if embedder else None,
                "error": self._engine.load_error}

    async def status(self) -> dict[str, Any]:
        counts = await self._reader.read(lambda conn: (queries.count_by_state(conn),
                                                       queries.count_by_project(conn),
                                                       queries.unknown_event_count(conn),
                                                       queries.pending_work(conn)))
        embedder = self._engine.embedder
        projections = self._reader.projections
        return {
            "last_seq": self._reader.last_seq,
            "applied_seq": projections.applied_seq,
            "memories": counts[0],
            "projects": counts[1],
            "model": embedder.spec.name if embedder else None,
            "pipeline": embedder.pipeline if embedder else None,
            "model_state": self.model_state(),
            "embedding_backlog": self._indexer.backlog,
            "embed_passes": self._engine.passes,
            # whether a twin of the model is held (bulk passes two at a time), passes run on it
            "embed_twin": {"held": self._engine.twin_held, "passes": self._engine.twin_passes},
            "vectors": len(projections.vectors),
            "vector_layout": projections.vectors.mode,  # flat (exact scan) or hnsw
            "bm25": projections.postings.describe(),
            "unknown_events": counts[2],
            **counts[3],
            "llm": self._llm(),
            "projections": {**projections.damage.as_dict(), "stalled": self._projector.stalled},
            "storage": self._storage(),
            **self._log_health(),
            "hook_failures": self._hook_failures(),
            "recent_errors": self._recent_errors(),  # names and numbers only, no text
            "compaction": self._compaction() if self._compaction else None,
            "tcp_error": self.tcp_error,
            "uptime_s": round(time.monotonic() - self._started, 3),
            "rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "pid": os.getpid(),
        }

    async def sizes(self) -> dict[str, Any]:
        """The log's bytes by event kind, by project and over the last 7 days, and the
        projections' files (the first call reads the whole log; sealed segments are kept)."""
        projects: dict[int, str] = await self._reader.read(
            lambda conn: dict(conn.execute("SELECT id, project FROM memories").fetchall()))

        def project_of(record: Record) -> str:
            ids = referenced(record.event)
            return projects.get(ids[0], "(not projected yet)") if ids else "(no project)"

        measured = await anyio.to_thread.run_sync(self._sizes.measure, project_of,
                                                  datetime.now(UTC))
        projections = self._reader.projections
        files = {"sqlite": _bytes_of(projections.sqlite_path, "", "-wal", "-shm"),
                 "vectors": _bytes_of_all(projections.vectors_path)}
        return {"log": measured, "projections": files,
                "compaction": self._compaction() if self._compaction else None}

    async def check_sealed_segments(self) -> None:
        """Verify the sealed segments' digests in the background after start."""
        self._sealed = await anyio.to_thread.run_sync(self._log.verify_sealed)
        for problem in self._sealed.damaged:
            log.error("sealed_segment_damaged", segment=str(problem.segment),
                      offset=problem.offset, detail=problem.detail)

    def _log_health(self) -> dict[str, Any]:
        """The acknowledged watermark, what was cut on open, and the sealed segments' check."""
        cut = self._log.tail_cut
        sealed = self._sealed
        return {
            "log_acked_seq": self._log.acked_seq,
            "log_tail_cut": None if cut is None else {
                "segment": cut.segment.name, "offset": cut.offset, "cut_bytes": cut.cut_bytes,
                "after_seq": cut.after_seq, "reason": cut.reason,
                "possibly_acknowledged": cut.possibly_acknowledged, "copy": str(cut.copy)},
            "sealed_segments": None if sealed is None else {
                "checked": sealed.checked, "sealed": sealed.sealed,
                "damaged": [{"segment": p.segment.name, "offset": p.offset, "detail": p.detail}
                            for p in sealed.damaged]},
        }

    def _storage(self) -> dict[str, Any]:
        """Whether the state directory takes writes now, and what to do if not."""
        refusing = state_dir_refusal(self._home)
        return {"home": str(self._home), "free_bytes": free_bytes(self._home),
                "refusing_writes": refusing, "advice": ADVICE[refusing] if refusing else None}

    def _llm(self) -> dict[str, Any]:
        if self._budget is None:
            return {"configured": False}
        return {"configured": True, "calls_today": self._budget.used_today,
                "daily_budget": self._budget.limit}


def _bytes_of_all(path: Path) -> int:
    """The bytes of every file named as ``path`` or beginning so: the vectors, their keys and
    metadata, and the files of a matrix not saved yet or a save under way."""
    return _bytes_of(path, *(each.name[len(path.name):]
                             for each in path.parent.glob(f"{path.name}*")))


def _bytes_of(path: Path, *suffixes: str) -> int:
    total = 0
    for suffix in suffixes:
        try:
            total += os.stat(f"{path}{suffix}").st_size
        except FileNotFoundError:
            pass
    return total
