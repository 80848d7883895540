"""The route job: proven memories into the project's instruction files (shell of :mod:`routing`).

Reads the targets, embeds their paragraphs with the warm model, decides per memory, writes
atomically (when the project opted in, or the user asked with ``--write``) and records a
``Routed`` event per decision. ``dry_run`` records and writes nothing and returns the diffs.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memlane.daemon.core import Core
from memlane.daemon.errors import ApiError
from memlane.daemon.files import write_atomic
from memlane.daemon.linker import threshold_for
from memlane.daemon.routing import (
    choose_target,
    decide_route,
    insert_memory,
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


@dataclass
class _Files:
    """The targets' texts during one run (writes update them)."""

    root: Path
    texts: dict[str, str] = field(default_factory=dict)


def targets_of(root: Path, docs: tuple[str, ...]) -> list[str]:
    rules = sorted(str(p.relative_to(root)) for p in (root / ".claude" / "rules").glob("*.md"))
    return [DEFAULT_TARGET, *rules, *(d for d in docs if (root / d).is_file())]


def _read(path: Path) -> str:
    if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
        return ""
    return path.read_text(encoding="utf-8", errors="replace")


async def route(core: Core, llm: Any, options: RouteOptions, *, dry_run: bool,
                write: bool) -> dict[str, Any]:
    embedder = core.engine.embedder
    if embedder is None:
        return {"routes": [], "note": "the embedding model is not loaded"}
    spec = embedder.spec
    pending, link, duplicate = await core.read(lambda conn: (
        _unrouted(conn), threshold_for(conn, spec, "link"), threshold_for(conn, spec, "duplicate")))
    results = []
    files: dict[str, _Files] = {}
    for memory in pending:
        root = Path(memory["project"])
        if not root.is_absolute() or not root.is_dir():
            continue
        state = files.setdefault(memory["project"], _Files(root, {
            t: _read(root / t) for t in targets_of(root, options.docs)}))
        result = await _route_one(core, llm, memory, state, link=link, duplicate=duplicate,
                                  may_write=write or memory["project"] in options.write_projects,
                                  dry_run=dry_run)
        results.append(result)
    return {"dry_run": dry_run, "routes": results}


async def _route_one(core: Core, llm: Any, memory: dict[str, Any], files: _Files, *, link: float,
                     duplicate: float, may_write: bool, dry_run: bool) -> dict[str, Any]:
    vector = (await core.engine.embed([memory["text"]]))[0]
    similarities = {}
    for target, text in files.texts.items():
        parts = paragraphs(text)
        vectors = await core.engine.embed(parts) if parts else np.zeros((0, len(vector)))
        similarities[target] = list(zip(parts, (vectors @ vector).tolist()))
    best = choose_target(score_targets(similarities), DEFAULT_TARGET)
    current = files.texts.get(best.target, "")
    conflict = await _conflicts(llm, memory["text"], best.nearest, best.similarity, link)
    decision = decide_route(memory["id"], memory["text"], best, current, duplicate=duplicate,
                            conflict=conflict, may_write=may_write)
    diff = ""
    if decision.action != "skipped":
        updated = insert_memory(current, memory["id"], memory["text"])
        diff = "".join(difflib.unified_diff(current.splitlines(True), updated.splitlines(True),
                                            f"a/{best.target}", f"b/{best.target}"))
        if decision.action == "written" and not dry_run:
            target = files.root / best.target
            # A new instruction file is 0644 like any project file (the daemon's umask is 077).
            write_atomic(target, updated.encode(), mode=None if target.exists() else 0o644)
            files.texts[best.target] = updated
    if not dry_run:
        await core.writer.append([Routed(memory=memory["id"], target=str(files.root / best.target),
                                         section="Proven knowledge (memlane)",
                                         action=decision.action, verdict=decision.verdict)])
    return {"memory": memory["id"], "target": str(files.root / best.target),
            "action": decision.action, "verdict": decision.verdict, "diff": diff}


async def _conflicts(llm: Any, text: str, nearest: str, similarity: float, link: float) -> bool:
    if not nearest or similarity < link:
        return False
    if llm is not None:
        try:
            return bool(await llm.conflicts(text, nearest))
        except ApiError:
            pass  # over budget or unreachable: the offline check decides
    return offline_conflict(text, nearest, similarity, threshold=link)


def _unrouted(conn: Any) -> list[dict[str, Any]]:
    return [{"id": i, "text": t, "project": p} for i, t, p in conn.execute(
        "SELECT id, text, project FROM memories m WHERE state = 'proven' AND text IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM routes r WHERE r.memory = m.id) ORDER BY id")]
