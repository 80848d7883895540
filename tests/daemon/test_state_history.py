"""Memories by state over time, from the log (pure): the same counts as the projection, a
bounded number of points, and the same series from a compacted log, with its horizon said."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from memlane.daemon.api.ui.chart import state_chart
from memlane.daemon.domain.state_history import MAX_POINTS, STATES, StateHistory, sample
from memlane.daemon.service.viewer import horizon_of
from memlane.events import model as m
from memlane.events.compactor import compacted_through
from memlane.events.log import EventLog, read_log
from memlane.events.retention import compact
from memlane.projections import queries
from memlane.projections.sqlite_store import SqliteProjection
from tests.history import generate
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


@pytest.fixture(scope="module")
def compacted_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StateHistory, int]:
    """Two months of generated history, folded before it is compacted, then compacted up to
    five days ago: (the log, the fold of the log before, the horizon)."""
    log = EventLog.open(tmp_path_factory.mktemp("states") / "log", segment_bytes=96 * 1024)
    history = generate(log, days=60, stores=6, prompts=25, switch_at=30, forgets=3,
                       dims=(16, 32))
    before = StateHistory()
    before.observe(read_log(log.directory, 1, upto=log.last_seq))
    compact(log, cutoff=history.now - timedelta(days=5), floors=[log.last_seq])
    horizon = compacted_through(log.directory)
    assert 0 < horizon < log.last_seq
    return log.directory, before, horizon


def test_a_compacted_log_charts_the_same_counts(
        compacted_log: tuple[Path, StateHistory, int]) -> None:
    """Folded from the compacted log, the chart's series equals the one folded before
    compaction, after the horizon and before it (every change of state is kept whole)."""
    directory, before, horizon = compacted_log
    after = StateHistory()
    after.observe(read_log(directory, 1))
    at = horizon_of(directory, horizon)
    assert at is not None and at.seq <= horizon
    assert [p for p in after.points() if p[0] > at.at] == [
        p for p in before.points() if p[0] > at.at]
    assert after.points() == before.points()
    now = before.points()[-1][0] + timedelta(days=1)
    assert sample(after.points(), 60, until=now) == sample(before.points(), 60, until=now)


def test_the_chart_says_where_the_log_was_compacted(
        compacted_log: tuple[Path, StateHistory, int]) -> None:
    """A compacted log: the chart marks the horizon and says in words what was compacted
    before it; an uncompacted one says nothing of the kind."""
    directory, before, horizon = compacted_log
    at = horizon_of(directory, horizon)
    assert at is not None
    series = sample(before.points(), 60, until=before.points()[-1][0])
    drawn = str(state_chart(series, compacted=at))
    assert 'class="horizon"' in drawn and 'id="states-compacted"' in drawn
    assert f"before {at.at:%Y-%m-%d %H:%M}" in drawn and f"seq {at.seq}" in drawn
    assert "compacted" not in str(state_chart(series))
    assert horizon_of(directory, 0) is None
