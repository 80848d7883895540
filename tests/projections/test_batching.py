"""Grouping a batch's ops for executemany: the rows come out as if each op ran in log order."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from memlane.events import model as m
from memlane.projections.batching import Plan
from memlane.projections import bulk_sql, memory_events
from memlane.projections.fold import event_ops
from memlane.projections.sqlite_store import SqliteProjection, prepare
from tests.projections.test_fold import dump, histories

AT = datetime(2026, 12, 4, tzinfo=UTC)


def one_op_at_a_time(path: Path, records: list[m.Record]) -> None:
    projection = SqliteProjection(path)
    for record in records:
        for sql, params in event_ops(record):
            projection.conn.execute(sql, params)
        for row in memory_events.rows_of(record):
            projection.conn.execute(memory_events.INSERT, row)
    projection.conn.execute("UPDATE meta SET value = ? WHERE key = 'applied_seq'",
                            (records[-1].seq,))
    projection.close()


@pytest.mark.parametrize("json_rows", [True, False], ids=["json", "executemany"])
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_a_planned_batch_gives_the_rows_of_its_ops_run_one_by_one(
        tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
        json_rows: bool, history: list[m.Record]) -> None:
    """Any history, planned as one batch, leaves the rows its ops leave run in log order,
    bound as JSON or (an SQLite without what that needs) row by row."""
    monkeypatch.setattr(bulk_sql, "JSON_ROWS", json_rows)
    base = tmp_path_factory.mktemp("plan")
    one_op_at_a_time(base / "serial.sqlite3", history)
    planned = SqliteProjection(base / "planned.sqlite3")
    planned.commit(prepare(history))
    planned.close()
    assert dump(base / "planned.sqlite3") == dump(base / "serial.sqlite3")


def record(seq: int, event: m.Event) -> m.Record:
    return m.Record(seq=seq, at=AT, event=event)


def test_a_replay_shaped_batch_runs_as_a_few_statements(tmp_path: Path) -> None:
    """Stores, embeds, links and recalls of many memories interleave in the log; planned, each
    statement runs about once per batch, a memory's embed and refreshes go into its insert,
    and only the refreshes after a recall are left as updates, one row per memory."""
    events: list[m.Event] = []
    for i in range(1, 301):
        events.append(m.Stored(id=i, text=f"note {i}", project="p", kind="note",
                               content_hash=f"{i:032x}"))
        events.append(m.Embedded(memory=i, vector=b"\0" * 16, dims=4, model="t",
                                 pipeline="t:4"))
        events += [m.Linked(a=j, b=i, similarity=0.8) for j in range(max(1, i - 3), i)]
        if i % 4 == 0:
            events.append(m.Recalled(memory=i - 1, query="q", rank=1, score=0.5))
    batch = prepare([record(n, e) for n, e in enumerate(events, start=1)])
    statements = batch.statements
    assert len(statements) <= 15
    refreshes = [json.loads(params[0]) for sql, params in statements
                 if sql.startswith("UPDATE memories SET reprieves = 0, ")]
    assert 0 < sum(map(len, refreshes)) <= 75  # the recalled memories'
    assert not [sql for sql, _ in statements if sql.startswith("UPDATE memories SET embedded_by")]
    projection = SqliteProjection(tmp_path / "p.sqlite3")
    projection.commit(batch)
    assert projection.conn.execute(  # each embedded, and refreshed later than its store
        "SELECT count(*) FROM memories WHERE embedded_by = 't:4' AND refreshed_seq > id"
    ).fetchone() == (300,)
    projection.close()


def test_a_statement_on_memories_that_names_no_row_by_id_is_refused() -> None:
    """Reordering by memory is only safe for one-row statements: others are refused."""
    with pytest.raises(ValueError, match="name one row by id"):
        Plan().add(("UPDATE memories SET shown = 0 WHERE project = ?", ("p",)))
