"""Read queries of the viewer over the SQLite projection: timeline pages, filter choices, the
link graph of a project, pins (plain functions of a connection, like ``queries``)."""

from __future__ import annotations

import sqlite3
from typing import Any

# The memory row's columns and the live-links join are the core queries' own.
from memlane.projections.queries import _LIVE_LINKS, _SELECT, _row

TIMELINE_FILTERS = ("project", "kind", "state", "source")


def timeline(conn: sqlite3.Connection, filters: dict[str, str], *, before: int | None = None,
             after: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Memories newest first, keyset-paged on id (``before``: older than; ``after``: newer
    than), filtered by exact project/kind/state/source and by ``since``/``until`` dates."""
    where: list[str] = []
    params: list[object] = []
    for name in TIMELINE_FILTERS:
        if filters.get(name):
            where.append(f"{name} = ?")
            params.append(filters[name])
    if filters.get("since"):
        where.append("created_at >= ?")
        params.append(filters["since"])
    if filters.get("until"):
        where.append("created_at < date(?, '+1 day')")
        params.append(filters["until"])
    if before is not None:
        where.append("id < ?")
        params.append(before)
    if after is not None:
        where.append("id > ?")
        params.append(after)
    sql = f"{_SELECT}{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id DESC LIMIT ?"
    return [_row(r) for r in conn.execute(sql, [*params, limit])]


def facets(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """The projects, kinds and sources present (the viewer's filter choices)."""
    return {name: [r[0] for r in conn.execute(
        f"SELECT DISTINCT {name} FROM memories ORDER BY {name}")]
        for name in ("project", "kind", "source")}


NODE_CLUSTER = "SELECT max(cluster) FROM cluster_members WHERE memory = ?"  # its latest cluster


def project_graph(conn: sqlite3.Connection, project: str
                  ) -> tuple[dict[int, dict[str, Any]], list[tuple[int, int, float]]]:
    """The live memories of a project that have a link (id -> kind, state, text, cluster)
    and the links between them."""
    edges = [(a, b, sim) for a, b, sim in conn.execute(
        _LIVE_LINKS + " AND ma.project = ? AND mb.project = ?", (project, project))]
    ids = sorted({i for a, b, _ in edges for i in (a, b)})
    nodes: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for memory_id, kind, state, text, cluster in conn.execute(
                f"SELECT m.id, m.kind, m.state, substr(m.text, 1, 80),"
                f" ({NODE_CLUSTER.replace('?', 'm.id')}) FROM memories m"
                f" WHERE m.id IN ({marks})", chunk):
            nodes[memory_id] = {"kind": kind, "state": state, "text": text, "cluster": cluster}
    return nodes, edges


def is_pinned(conn: sqlite3.Connection, memory: int) -> bool:
    row = conn.execute("SELECT pinned FROM memories WHERE id = ?", (memory,)).fetchone()
    return bool(row and row[0])
