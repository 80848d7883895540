"""The per-memory index of seqs: filled by the fold, and once from the log for a database
folded before it existed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from memlane.events.log import EventLog
from memlane.events.model import Linked, Recalled, Stored
from memlane.projections import memory_events
from memlane.projections.catchup import Projections

AT = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)


def stored(i: int) -> Stored:
    return Stored(id=i, text=f"memory number {i}", project="p", kind="note",
                  content_hash=f"{i:032x}")


def test_a_database_folded_before_the_index_is_indexed_from_the_log_at_start(
        tmp_path: Path) -> None:
    """Seqs folded before the index existed are indexed at the next catch-up; later ones by
    the fold."""
    log = EventLog.open(tmp_path / "log")
    log.append([stored(1), stored(2)], at=AT)
    log.append([Linked(a=1, b=2, similarity=0.9), Recalled(memory=2, query="q", rank=1,
                                                           score=0.5)], at=AT)
    projections = Projections(tmp_path / "p.sqlite", tmp_path / "p.usearch")
    projections.catch_up(log.directory, log.last_seq)
    conn = projections.sqlite.conn
    conn.execute("DELETE FROM memory_events")  # as the migration leaves an older database
    conn.execute("INSERT INTO meta (key, value) VALUES (?, 4)", (memory_events.PENDING,))
    projections.close()
    log.append([stored(5)], at=AT)
    again = Projections(tmp_path / "p.sqlite", tmp_path / "p.usearch")
    again.catch_up(log.directory, log.last_seq)
    conn = again.sqlite.conn
    assert [memory_events.seqs_of(conn, m) for m in (1, 2, 5)] == [[1, 3], [2, 3, 4], [5]]
    assert memory_events.unindexed_through(conn) == 0
    again.close()
    log.close()
