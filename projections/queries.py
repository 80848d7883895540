"""Read queries over the SQLite projection (plain functions of a connection)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from memlane.events.model import PROTECTED_ORDER

MEMORY_COLUMNS = ("id", "text", "project", "kind", "state", "created_at", "updated_at", "tags",
                  "source", "recalls", "expiry_reason", "embedded_by", "redactions")
_SELECT = f"SELECT {', '.join(MEMORY_COLUMNS)} FROM memories"
LIVE_STATES = ("active", "proven")
PLACEMENT_CHUNK = 10_000  # ids per query (SQLite's stock limit is 32,766 parameters)
_PROTECTED_SQL = "(" + ", ".join(f"'{kind}'" for kind in PROTECTED_ORDER) + ")"


def _row(row: Sequence[Any]) -> dict[str, Any]:
    memory = dict(zip(MEMORY_COLUMNS, row))
    memory["tags"] = json.loads(memory["tags"])
    return memory


def get_memory(conn: sqlite3.Connection, memory_id: int) -> dict[str, Any] | None:
    row = conn.execute(f"{_SELECT} WHERE id = ?", (memory_id,)).fetchone()
    return None if row is None else _row(row)


def get_memories(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return {row[0]: _row(row) for row in conn.execute(f"{_SELECT} WHERE id IN ({marks})", ids)}


def placement(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """(project, state) of each memory: what filtering candidates needs, without the text
    (asked in chunks: a link pass a crash cut may name 100k memories)."""
    placed = {}
    for start in range(0, len(ids), PLACEMENT_CHUNK):
        chunk = ids[start:start + PLACEMENT_CHUNK]
        marks = ",".join("?" * len(chunk))
        placed.update({row[0]: (row[1], row[2]) for row in conn.execute(
            f"SELECT id, project, state FROM memories WHERE id IN ({marks})", chunk)})
    return placed


def live_among(conn: sqlite3.Connection, ids: Sequence[int], project: str | None) -> set[int]:
    """The live memories among ``ids`` (of ``project`` when given). SQLite filters, so a
    search's hundreds of candidates come back as the few ids that pass, not as rows."""
    if not ids:
        return set()
    sql = (f"SELECT id FROM memories WHERE id IN ({','.join('?' * len(ids))})"
           " AND state IN ('active', 'proven')")
    params: list[object] = list(ids)
    if project is not None:
        sql += " AND project = ?"
        params.append(project)
    return {row[0] for row in conn.execute(sql, params)}


def first_live(conn: sqlite3.Connection, ids: Sequence[int], project: str | None,
               wanted: int) -> list[int]:
    """The first ``wanted`` live memories of ``ids`` (of ``project`` when given), in their
    order, asked of SQLite a slice at a time: most are live, so the first slice usually
    suffices."""
    found: list[int] = []
    start, step = 0, wanted + 16
    while start < len(ids) and len(found) < wanted:
        chosen = ids[start:start + step]
        live = live_among(conn, chosen, project)
        found += [memory for memory in chosen if memory in live]
        start, step = start + step, 2 * step
    return found[:wanted]


def live_count(conn: sqlite3.Connection, project: str) -> int:
    return int(conn.execute("SELECT count(*) FROM memories WHERE state IN ('active', 'proven')"
                            " AND project = ?", (project,)).fetchone()[0])


def indexed_count(conn: sqlite3.Connection) -> int:
    """Documents in the full-text index (the ``N`` of FTS5's idf), read in constant time from
    FTS5's averages record (row 1 of its data table: a varint row count first)."""
    return index_totals(conn)[0]


def index_totals(conn: sqlite3.Connection) -> tuple[int, int]:
    """(documents, tokens) in the full-text index, FTS5's averages record: a varint row count,
    then a varint token count per column (one column here)."""
    row = conn.execute("SELECT block FROM memories_fts_data WHERE id = 1").fetchone()
    if not row or not row[0]:
        return 0, 0
    documents, width = _varint_at(row[0], 0)
    return documents, _varint_at(row[0], width)[0]


def _varint_at(data: bytes, start: int) -> tuple[int, int]:
    """The varint at ``start`` and how many bytes it took."""
    value = 0
    for position, byte in enumerate(data[start:start + 9]):
        if position == 8:
            return (value << 8) | byte, 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, position + 1
    return value, len(data) - start


def live_ids(conn: sqlite3.Connection, project: str) -> list[int]:
    return [row[0] for row in conn.execute(
        "SELECT id FROM memories WHERE state IN ('active', 'proven') AND project = ?"
        " ORDER BY id", (project,))]


def count_by_state(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT state, count(*) FROM memories GROUP BY state ORDER BY state"))


def count_by_project(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for project, state, n in conn.execute(
            "SELECT project, state, count(*) FROM memories GROUP BY project, state"
            " ORDER BY project, state"):
        counts.setdefault(project, {})[state] = n
    return counts


def applied_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = 'applied_seq'").fetchone()[0])


def unknown_event_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM unknown_events").fetchone()[0])


def admission_rows(conn: sqlite3.Connection) -> Iterator[tuple[int, str, str, str, str | None]]:
    """(id, project, content_hash, state, idempotency_key) of every memory, oldest first."""
    yield from conn.execute(
        "SELECT id, project, content_hash, state, idempotency_key FROM memories ORDER BY id")


def unembedded_ids(conn: sqlite3.Connection, pipeline: str) -> list[int]:
    """Live memories without a vector from ``pipeline`` (the embedding backlog after a restart)."""
    return [row[0] for row in conn.execute(
        "SELECT id FROM memories WHERE state IN ('active', 'proven')"
        " AND (embedded_by IS NULL OR embedded_by != ?) ORDER BY id", (pipeline,))]


def texts_of(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, str]:
    marks = ",".join("?" * len(ids))
    return dict(conn.execute(
        f"SELECT id, text FROM memories WHERE id IN ({marks}) AND text IS NOT NULL", ids))


def export_rows(conn: sqlite3.Connection, *, project: str | None = None,
                include_expired: bool = False) -> Iterator[dict[str, Any]]:
    """Memories for export, oldest first (forgotten ones never)."""
    states = ("active", "proven", "expired") if include_expired else LIVE_STATES
    sql = (f"SELECT text, project, kind, tags, state FROM memories WHERE state IN"
           f" ({','.join('?' * len(states))})")
    params: list[object] = list(states)
    if project is not None:
        sql += " AND project = ?"
        params.append(project)
    for text, proj, kind, tags, state in conn.execute(sql + " ORDER BY id", params):
        yield {"text": text, "project": proj, "kind": kind, "tags": json.loads(tags),
               "state": state}


def threshold(conn: sqlite3.Connection, model: str, name: str) -> float | None:
    """A threshold chosen for ``model`` (``ThresholdSet``), if any."""
    row = conn.execute("SELECT value FROM thresholds WHERE model = ? AND name = ?",
                       (model, name)).fetchone()
    return None if row is None else float(row[0])


def links_of(conn: sqlite3.Connection, memory: int) -> list[tuple[int, float]]:
    """(other memory, similarity) for every link of ``memory``, strongest first."""
    return [(int(other), float(sim)) for other, sim in conn.execute(
        "SELECT CASE WHEN a = ? THEN b ELSE a END, similarity FROM links WHERE a = ? OR b = ?"
        " ORDER BY similarity DESC", (memory, memory, memory))]


_LIVE_LINKS = (
    "SELECT l.a, l.b, l.similarity FROM links l"
    " JOIN memories ma ON ma.id = l.a JOIN memories mb ON mb.id = l.b"
    " WHERE ma.state IN ('active', 'proven') AND mb.state IN ('active', 'proven')")


def live_links(conn: sqlite3.Connection) -> dict[tuple[int, int], float]:
    """Links whose two ends are both live."""
    return {(a, b): sim for a, b, sim in conn.execute(_LIVE_LINKS)}


def open_cluster_members(conn: sqlite3.Connection) -> set[int]:
    """Memories waiting in a cluster that has not been consolidated."""
    return {row[0] for row in conn.execute(
        "SELECT cm.memory FROM cluster_members cm JOIN clusters c ON c.id = cm.cluster"
        " WHERE c.consolidated_into IS NULL")}


def lineage_pairs(conn: sqlite3.Connection) -> list[tuple[int, int]]:
    """(child, ancestor) for every consolidation, transitively."""
    return [(c, p) for c, p in conn.execute(
        "WITH RECURSIVE up(child, parent) AS (SELECT child, parent FROM lineage"
        " UNION SELECT up.child, l.parent FROM up JOIN lineage l ON l.child = up.parent)"
        " SELECT child, parent FROM up")]


def sibling_pairs(conn: sqlite3.Connection) -> list[tuple[int, int]]:
    """Pairs of sources of one consolidation, or of members of a cluster whose merge the user
    rejected: once merged (maybe restored by an undo) or refused, never clustered together
    again."""
    return list(conn.execute(
        "SELECT a.parent, b.parent FROM lineage a JOIN lineage b"
        " ON a.child = b.child AND a.parent < b.parent UNION"
        " SELECT a.memory, b.memory FROM clusters c JOIN cluster_members a ON a.cluster = c.id"
        " JOIN cluster_members b ON b.cluster = c.id AND a.memory < b.memory"
        " WHERE c.consolidated_into = 0"))


def active_ids(conn: sqlite3.Connection) -> set[int]:
    return {row[0] for row in conn.execute("SELECT id FROM memories WHERE state = 'active'")}


def aging_rows(conn: sqlite3.Connection) -> Iterator[tuple[Any, ...]]:
    """(id, project, kind, text, live degree, reprieves, refreshed_seq) of active, unpinned
    memories."""
    yield from conn.execute(
        "SELECT m.id, m.project, m.kind, m.text, (SELECT count(*) FROM links l"
        "  JOIN memories o ON o.id = CASE WHEN l.a = m.id THEN l.b ELSE l.a END"
        "  WHERE (l.a = m.id OR l.b = m.id) AND o.state IN ('active', 'proven')),"
        " m.reprieves, m.refreshed_seq FROM memories m WHERE m.state = 'active'"
        " AND m.pinned = 0 ORDER BY m.id")  # a pinned memory never ages


def stored_ids_by_project(conn: sqlite3.Connection) -> dict[str, list[int]]:
    """Ids of memories stored (not consolidated) in each project, ascending."""
    return _ids_by_project(conn, "source != 'consolidation'")


def _ids_by_project(conn: sqlite3.Connection, where: str) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for memory_id, project in conn.execute(
            f"SELECT id, project FROM memories WHERE {where} ORDER BY id"):
        found.setdefault(project, []).append(memory_id)
    return found


def recall_counts(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, int]:
    marks = ",".join("?" * len(ids))
    return dict(conn.execute(f"SELECT id, recalls FROM memories WHERE id IN ({marks})", ids))


def clusters(conn: sqlite3.Connection, *, open_only: bool = False) -> list[dict[str, Any]]:
    """Clusters with their members, newest first."""
    sql = "SELECT id, cohesion, created_at, consolidated_into FROM clusters"
    if open_only:
        sql += " WHERE consolidated_into IS NULL"
    found = []
    for cluster_id, cohesion, created_at, into in conn.execute(sql + " ORDER BY id DESC"):
        members = [row[0] for row in conn.execute(
            "SELECT memory FROM cluster_members WHERE cluster = ? ORDER BY memory", (cluster_id,))]
        found.append({"id": cluster_id, "members": members, "cohesion": cohesion,
                      "created_at": created_at, "consolidated_into": into})
    return found


def lineage_of(conn: sqlite3.Connection, memory: int) -> dict[str, list[int]]:
    """Direct parents (sources) and children (consolidations) of a memory."""
    parents = [r[0] for r in conn.execute(
        "SELECT parent FROM lineage WHERE child = ? ORDER BY parent", (memory,))]
    children = [r[0] for r in conn.execute(
        "SELECT child FROM lineage WHERE parent = ? ORDER BY child", (memory,))]
    return {"parents": parents, "children": children}


def content_hash_of(conn: sqlite3.Connection, memory: int) -> str:
    row = conn.execute("SELECT content_hash FROM memories WHERE id = ?", (memory,)).fetchone()
    return str(row[0]) if row else ""


def briefing_rows(conn: sqlite3.Connection, project: str | None, *, limit: int = 30
                  ) -> dict[str, list[dict[str, Any]]]:
    """Proven, protected and recent live memories of a project (all projects when None)."""
    scope, params = ("", []) if project is None else (" AND project = ?", [project])

    def rows(where: str, order: str) -> list[dict[str, Any]]:
        return [_row(r) for r in conn.execute(
            f"{_SELECT} WHERE {where}{scope} ORDER BY {order} LIMIT ?", [*params, limit])]

    return {"proven": rows("state = 'proven'", "recalls DESC, id DESC"),
            "protected": rows(f"state = 'active' AND kind IN {_PROTECTED_SQL}", "id DESC"),
            "recent": rows("state = 'active' AND kind NOT IN ('auto-save')", "id DESC")}


def routes(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every routing decision, newest first, with the memory's text."""
    return [{"memory": m, "target": t, "action": a, "verdict": v, "seq": s, "text": text}
            for m, t, a, v, s, text in conn.execute(
                "SELECT r.memory, r.target, r.action, r.verdict, r.seq, m.text FROM routes r"
                " JOIN memories m ON m.id = r.memory ORDER BY r.seq DESC")]


def pending_work(conn: sqlite3.Connection) -> dict[str, int]:
    """Lifecycle work waiting: open clusters and proposed routes."""
    clusters = conn.execute("SELECT count(*) FROM clusters WHERE consolidated_into IS NULL")
    routes = conn.execute("SELECT count(*) FROM routes WHERE action = 'proposed'")
    return {"clusters_waiting": int(clusters.fetchone()[0]),
            "routes_proposed": int(routes.fetchone()[0])}


def recently_recalled(conn: sqlite3.Connection, limit: int,
                      offset: int = 0) -> list[tuple[int, str]]:
    """(id, project) of memories recalled or used, the most recently first."""
    return list(conn.execute(
        "SELECT id, project FROM memories WHERE recalls > 0 AND last_recalled_at IS NOT NULL"
        " ORDER BY last_recalled_at DESC, id DESC LIMIT ? OFFSET ?", (limit, offset)))


def live_ids_by_project(conn: sqlite3.Connection) -> dict[str, list[int]]:
    """Ids of live memories in each project, ascending."""
    return _ids_by_project(conn, "state IN ('active', 'proven')")


def shown_unused(conn: sqlite3.Connection, session: str) -> list[tuple[int, str, str, str]]:
    """(memory, text, state, prompt_hash) of the live memories ``session`` was shown and has not
    been seen using yet; a memory shown twice comes once, with its first prompt."""
    return [(m, t, s, h) for m, t, s, h in conn.execute(
        "SELECT m.id, m.text, m.state, min(s.prompt_hash) FROM shown_in s"
        " JOIN memories m ON m.id = s.memory"
        " WHERE s.session = ? AND m.state IN ('active', 'proven') AND m.text IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM used_in u WHERE u.session = s.session"
        "                 AND u.memory = s.memory)"
        " GROUP BY m.id ORDER BY m.id", (session,))]


def usage_counts(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(shown, used) counts of each memory."""
    marks = ",".join("?" * len(ids))
    return {i: (s, u) for i, s, u in conn.execute(
        f"SELECT id, shown, recalls FROM memories WHERE id IN ({marks})", ids)}


def sources_of(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, str]:
    marks = ",".join("?" * len(ids))
    return dict(conn.execute(f"SELECT id, source FROM memories WHERE id IN ({marks})", ids))


def related_pairs(conn: sqlite3.Connection, ids: Sequence[int]) -> list[tuple[int, int]]:
    """Pairs among ``ids`` that are linked or share a cluster (one subject, for the briefing)."""
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    linked = conn.execute(f"SELECT a, b FROM links WHERE a IN ({marks}) AND b IN ({marks})",
                          [*ids, *ids]).fetchall()
    clustered = conn.execute(
        f"SELECT x.memory, y.memory FROM cluster_members x JOIN cluster_members y"
        f" ON x.cluster = y.cluster AND x.memory < y.memory"
        f" WHERE x.memory IN ({marks}) AND y.memory IN ({marks})", [*ids, *ids]).fetchall()
    return [(int(a), int(b)) for a, b in (*linked, *clustered)]


def project_ids(conn: sqlite3.Connection, project: str) -> list[int]:
    """Ids of a project's memories that are not forgotten yet, ascending."""
    return [row[0] for row in conn.execute(
        "SELECT id FROM memories WHERE project = ? AND state != 'forgotten' ORDER BY id",
        (project,))]
