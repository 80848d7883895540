"""Memories by state over time, from the log (pure): the same counts as the projection, and a
bounded number of points."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from memlane.daemon.domain.state_history import MAX_POINTS, STATES, StateHistory, sample
from memlane.events import model as m
from memlane.projections import queries
from memlane.projections.sqlite_store import SqliteProjection
from tests.projections.test_fold import T0, histories


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_the_last_point_counts_what_the_projection_counts(tmp_path_factory: object,
                                                          history: list[m.Record]) -> None:
    """Folding any history gives, at its end, the projection's count of memories by state."""
    path = tmp_path_factory.mktemp("s") / "p.sqlite3"  # type: ignore[attr-defined]
    projection = SqliteProjection(path)
    projection.apply(history)
    expected = queries.count_by_state(projection.conn)
    projection.close()
    folded = StateHistory()
    folded.observe(history[:len(history) // 2])
    folded.observe(history)  # incremental: records already seen are skipped
    last = dict(zip(STATES, folded.points()[-1][1])) if folded.points() else {}
    assert {s: n for s, n in last.items() if n} == {s: n for s, n in expected.items() if n}


def stored(seq: int, seconds: int) -> m.Record:
    return m.Record(seq=seq, at=T0 + timedelta(seconds=seconds), event=m.Stored(
        id=seq, text="t", project="p", kind="note", content_hash=f"{seq:032x}"))


def test_points_stay_bounded_and_keep_the_newest(tmp_path: Path) -> None:
    """A history longer than the bound is thinned; the newest point survives."""
    folded = StateHistory()
    folded.observe(stored(i, i) for i in range(1, 3 * MAX_POINTS))
    points = folded.points()
    assert len(points) <= MAX_POINTS
    assert points[-1] == (T0 + timedelta(seconds=3 * MAX_POINTS - 1), (3 * MAX_POINTS - 1, 0, 0, 0))


def test_a_sample_is_evenly_spaced_and_steps() -> None:
    """Each sampled instant carries the counts of the latest point at or before it; a single
    point reaches until now."""
    points = [(T0, (1, 0, 0, 0)), (T0 + timedelta(seconds=10), (2, 0, 0, 0))]
    assert sample(points[:1], 2, until=T0 + timedelta(seconds=4)) == [
        (T0, (1, 0, 0, 0)), (T0 + timedelta(seconds=4), (1, 0, 0, 0))]
    assert sample(points, 3, until=T0) == [(T0, (1, 0, 0, 0)), (T0 + timedelta(seconds=5), (1, 0, 0, 0)),
                                 (T0 + timedelta(seconds=10), (2, 0, 0, 0))]
