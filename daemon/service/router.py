"""The route job: proven memories into the project's instruction files (shell of :mod:`routing`).

Reads the targets, embeds their paragraphs with the warm model, decides per memory, writes
atomically (when the project opted in, or the user asked with ``--write``) and records a
``Routed`` event per decision. ``dry_run`` records and writes nothing and returns the diffs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from memlane.daemon.domain.errors import ApiError
from memlane.daemon.domain.provenance import is_quarantined
from memlane.daemon.domain.review import SECTION_NAME, route_diff
from memlane.daemon.runtime.ports import Embeds
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.thresholds import threshold_for
from memlane.daemon.runtime.writer import Writer
from memlane.daemon.service.ports import Consolidator
from memlane.daemon.domain.routing import (
    TargetScore,
    choose_target,
    decide_route,
    offline_conflict,
    paragraphs,
    score_targets,
)
from memlane.events.model import Routed

DEFAULT_TARGET = "CLAUDE.md"
MAX_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class RouteOptions:
    write_projects: tuple[str, ...] = ()
    docs: tuple[str, ...] = ()  # extra targets, relative to each project root
    review: bool = False  # every write waits for the user's approval (the viewer's review)


@dataclass
class _Files:
    """The targets' texts during one run (writes update them)."""

    root: Path
    texts: dict[str, str] = field(default_factory=dict)


def targets_of(root: Path, docs: tuple[str, ...]) -> list[str]:
    rules = sorted(str(p.relative_to(root)) for p in (root / ".claude" / "rules").glob("*.md"))
    return [DEFAULT_TARGET, *rules, *(d for d in docs if (root / d).is_file())]


def _load_files(root: Path, docs: tuple[str, ...]) -> _Files | None:
    """The project's target files (None when the project is not a local directory)."""
    if not root.is_absolute() or not root.is_dir():
        return None
    return _Files(root, {t: _read(root / t) for t in targets_of(root, docs)})


def _read(path: Path) -> str:
    if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
        return ""
    return path.read_text(encoding="utf-8", errors="replace")


class Router:
    """Routes proven memories into their project's files; writes through ``write_file``."""

    def __init__(self, *, reader: Reader, writer: Writer, engine: Embeds,
                 llm: Consolidator | None, options: RouteOptions,
                 write_file: Callable[[Path, bytes, int | None], None]) -> None:
        self._reader = reader
        self._writer = writer
        self._engine = engine
        self._llm = llm
        self._options = options
        self._write_file = write_file
        # Whether a memory came from another device (set when sync runs): never written alone.
        self.from_teammate: Callable[[int], bool] = lambda memory: False

    async def route(self, *, dry_run: bool, write: bool) -> dict[str, Any]:
        embedder = self._engine.embedder
        if embedder is None:
            return {"routes": [], "note": "the embedding model is not loaded"}
        spec = embedder.spec
        pending, link, duplicate = await self._reader.read(lambda conn: (
            _unrouted(conn), threshold_for(conn, spec, "link"),
            threshold_for(conn, spec, "duplicate")))
        results = []
        files: dict[str, _Files | None] = {}
        for memory in pending:
            if memory["project"] not in files:
                files[memory["project"]] = await anyio.to_thread.run_sync(
                    _load_files, Path(memory["project"]), self._options.docs)
            state = files[memory["project"]]
            if state is None:
                continue
            may_write = write or memory["project"] in self._options.write_projects
            results.append(await self._route_one(memory, state, link=link, duplicate=duplicate,
                                                 may_write=may_write, dry_run=dry_run))
        return {"dry_run": dry_run, "routes": results}

    async def _route_one(self, memory: dict[str, Any], files: _Files, *, link: float,
                         duplicate: float, may_write: bool, dry_run: bool) -> dict[str, Any]:
        best = await self._best_target(memory["text"], files)
        current = files.texts.get(best.target, "")
        conflict = await _conflicts(self._llm, memory["text"], best.nearest, best.similarity,
                                    link)
        decision = decide_route(memory["id"], memory["text"], best, current,
                                duplicate=duplicate, conflict=conflict, may_write=may_write,
                                review=self._options.review,
                                teammate=self.from_teammate(memory["id"]))
        diff = ""
        if decision.action != "skipped":
            updated, diff = route_diff(current, memory["id"], memory["text"], best.target)
            if decision.action == "written" and not dry_run:
                target = files.root / best.target
                # A new instruction file is 0644 like any project file (the daemon's umask is 077).
                await anyio.to_thread.run_sync(self._write_file, target, updated.encode(),
                                               None if target.exists() else 0o644)
                files.texts[best.target] = updated
        if not dry_run:
            await self._writer.append([Routed(
                memory=memory["id"], target=str(files.root / best.target),
                section=SECTION_NAME, action=decision.action,
                verdict=decision.verdict)])
        return {"memory": memory["id"], "target": str(files.root / best.target),
                "action": decision.action, "verdict": decision.verdict, "diff": diff}

    async def _best_target(self, text: str, files: _Files) -> TargetScore:
        vector = (await self._engine.embed([text]))[0]
        similarities = {}
        for target, existing in files.texts.items():
            parts = paragraphs(existing)
            vectors = await self._engine.embed(parts) if parts else np.zeros((0, len(vector)))
            similarities[target] = list(zip(parts, (vectors @ vector).tolist()))
        return choose_target(score_targets(similarities), DEFAULT_TARGET)


async def _conflicts(llm: Consolidator | None, text: str, nearest: str, similarity: float,
                     link: float) -> bool:
    if not nearest or similarity < link:
        return False
    if llm is not None:
        try:
            return bool(await llm.conflicts(text, nearest))
        except ApiError:
            pass  # over budget or unreachable: the offline check decides
    return offline_conflict(text, nearest, similarity, threshold=link)


def _unrouted(conn: Any) -> list[dict[str, Any]]:
    """Proven memories not routed yet; never a quarantined one (an instruction-like text the
    user did not type must not reach an instruction file)."""
    return [{"id": i, "text": t, "project": p} for i, t, p, s in conn.execute(
        "SELECT id, text, project, source FROM memories m WHERE state = 'proven'"
        " AND text IS NOT NULL AND NOT EXISTS (SELECT 1 FROM routes r WHERE r.memory = m.id)"
        " ORDER BY id") if not is_quarantined(t, s)]
