"""A pinned memory never ages: the fold records the pin, and ageing never sees the memory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from memlane.events import model as m
from memlane.projections import queries, viewer_queries
from memlane.projections.catchup import Projections

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def apply(projections: Projections, *events: m.Event) -> None:
    first = projections.applied_seq + 1
    projections.apply([m.Record(seq=first + i, at=T0, event=e) for i, e in enumerate(events)])


def aging_ids(projections: Projections) -> list[int]:
    return [row[0] for row in queries.aging_rows(projections.sqlite.conn)]


def test_a_pinned_memory_leaves_the_ageing_rows_until_unpinned(tmp_path: Path) -> None:
    """Pinned: out of the rows ageing decides over; unpinned: back in."""
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "v.usearch")
    apply(projections, *[m.Stored(id=i, text=f"note {i}", project="p", kind="note",
                                  content_hash=f"{i:032x}") for i in (1, 2)])
    apply(projections, m.Pinned(memory=1))
    assert aging_ids(projections) == [2]
    assert viewer_queries.is_pinned(projections.sqlite.conn, 1)
    apply(projections, m.Pinned(memory=1, pinned=False))
    assert aging_ids(projections) == [1, 2]
    assert not viewer_queries.is_pinned(projections.sqlite.conn, 1)
    projections.close()
