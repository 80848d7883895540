"""The viewer's per-memory lookups use an index, not a scan of the table (a 100k-memory
project's graph took ~440 ms in its cluster lookups before the index)."""

from __future__ import annotations

from pathlib import Path

from memlane.projections.sqlite_store import SqliteProjection
from memlane.projections.viewer_queries import NODE_CLUSTER


def test_a_memory_s_cluster_is_found_through_an_index(tmp_path: Path) -> None:
    projection = SqliteProjection(tmp_path / "p.sqlite")
    plan = " ".join(row[3] for row in projection.conn.execute(
        f"EXPLAIN QUERY PLAN {NODE_CLUSTER}", (1,)))
    projection.close()
    # The primary key (cluster, memory) is no help: SQLite walks it from the largest cluster.
    assert "INDEX cluster_members_by_memory" in plan, plan
