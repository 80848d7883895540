"""Read queries of the viewer's review: recent consolidations with their sources, routing
decisions, and the facts an undo or a verdict is decided on (plain functions of a connection)."""

from __future__ import annotations

import sqlite3
from typing import Any


def recent_consolidations(conn: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    """Memories made by a consolidation, newest first, each with its sources."""
    found = []
    for memory_id, state, text, reason, created in conn.execute(
            "SELECT id, state, text, expiry_reason, created_at FROM memories"
            " WHERE source = 'consolidation' ORDER BY id DESC LIMIT ?", (limit,)):
        sources = [{"id": i, "state": s, "text": t} for i, s, t in conn.execute(
            "SELECT m.id, m.state, m.text FROM lineage l JOIN memories m ON m.id = l.parent"
            " WHERE l.child = ? ORDER BY m.id", (memory_id,))]
        found.append({"id": memory_id, "state": state, "text": text, "expiry_reason": reason,
                      "created_at": created, "sources": sources})
    return found


def recent_routes(conn: sqlite3.Connection, limit: int = 50) -> list[dict[str, Any]]:
    """Routing decisions newest first, with the memory's text and state."""
    return [{"memory": m, "target": t, "section": sec, "action": a, "verdict": v, "seq": s,
             "text": text, "state": state}
            for m, t, sec, a, v, s, text, state in conn.execute(
                "SELECT r.memory, r.target, r.section, r.action, r.verdict, r.seq, m.text,"
                " m.state FROM routes r JOIN memories m ON m.id = r.memory"
                " ORDER BY r.seq DESC LIMIT ?", (limit,))]


def route_of(conn: sqlite3.Connection, memory: int) -> dict[str, Any] | None:
    """The memory's latest routing decision, with its text and state."""
    row = conn.execute(
        "SELECT r.memory, r.target, r.section, r.action, m.text, m.state, m.project, m.kind,"
        " m.tags FROM routes r JOIN memories m ON m.id = r.memory WHERE r.memory = ?"
        " ORDER BY r.seq DESC LIMIT 1", (memory,)).fetchone()
    if row is None:
        return None
    keys = ("memory", "target", "section", "action", "text", "state", "project", "kind", "tags")
    return dict(zip(keys, row))


def cluster_of(conn: sqlite3.Connection, cluster: int) -> dict[str, Any] | None:
    """A cluster's outcome (None: waiting; 0: rejected; else the proven memory) and members."""
    row = conn.execute("SELECT consolidated_into FROM clusters WHERE id = ?",
                       (cluster,)).fetchone()
    if row is None:
        return None
    members = [r[0] for r in conn.execute(
        "SELECT memory FROM cluster_members WHERE cluster = ? ORDER BY memory", (cluster,))]
    return {"id": cluster, "consolidated_into": row[0], "members": members}


def undo_facts(conn: sqlite3.Connection, memory: int
               ) -> tuple[tuple[Any, ...] | None, list[tuple[Any, ...]]]:
    """(id, state, source, expiry reason) of a memory and of each of its sources."""
    columns = "m.id, m.state, m.source, m.expiry_reason"
    proven = conn.execute(f"SELECT {columns} FROM memories m WHERE m.id = ?",
                          (memory,)).fetchone()
    sources = conn.execute(f"SELECT {columns} FROM lineage l JOIN memories m ON m.id = l.parent"
                           " WHERE l.child = ? ORDER BY m.id", (memory,)).fetchall()
    return proven, sources
