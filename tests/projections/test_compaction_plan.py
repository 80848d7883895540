"""Compaction's plan on any history: each segment planned alone, the whole replays the same."""

from __future__ import annotations

import gc
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memlane.events import model as m
from memlane.events import compaction
from memlane.events.compaction import plan_segment, survey
from memlane.projections.catchup import Projections
from tests.projections.test_compaction import rows
from tests.projections.test_fold import T0, histories, vectors_of


def compacted(history: list[m.Record], cuts: list[int]) -> tuple[list[m.Record], int]:
    """The history with every segment but the last compacted; and where the last starts.
    Compacting the compacted segments again (a later compaction) changes none of them."""
    bounds = sorted({0, len(history), *[c for c in cuts if 0 < c < len(history)]})
    found = survey(history)
    out: list[m.Record] = []
    segments = []
    for start, end in zip(bounds[:-2], bounds[1:-1]):
        segment = history[start:end]
        plan = plan_segment(segment, found)
        segments.append(sorted([segment[i] for i in plan.keep] + plan.added, key=lambda r: r.seq))
        out += segments[-1]
    tail = history[bounds[-2]:] if len(bounds) > 1 else []
    again = survey(out + tail)
    assert not any(plan_segment(segment, again).changes(len(segment)) for segment in segments)
    return out + tail, (tail[0].seq if tail else history[-1].seq + 1)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(), cuts=st.lists(st.integers(1, 40), max_size=4))
def test_any_history_compacted_segment_by_segment_replays_the_same(
        tmp_path_factory: object, monkeypatch: pytest.MonkeyPatch, history: list[m.Record],
        cuts: list[int]) -> None:
    """Rows (but sessions' exposure below the compacted part) and vectors are the same (runs of
    vectors cut short: three a record)."""
    monkeypatch.setattr(compaction, "RUN_BYTES", 12)
    base = tmp_path_factory.mktemp("plan")  # type: ignore[attr-defined]
    shorter, horizon = compacted(history, cuts)
    seqs = [r.seq for r in shorter]
    assert seqs == sorted(set(seqs)) and seqs[-1] == history[-1].seq
    replays = []
    for name, records in (("full", history), ("compacted", shorter)):
        projections = Projections(base / f"{name}.sqlite3", base / f"{name}.usearch")
        projections.apply(records)
        replays.append((rows(projections, horizon),
                        vectors_of(projections, [r.seq for r in history])))
        projections.close()
    assert replays[0] == replays[1]


def test_a_kept_event_after_a_dropped_recall_keeps_the_last_word(tmp_path_factory: object) -> None:
    """A link, a use, a reprieve or a repeat after a memory's last dropped recall sets its
    ageing and recall time; the tally, placed after them, must not undo that."""
    at = T0
    events: list[m.Event] = [
        m.Stored(id=1, text="one", project="a", kind="note", content_hash="1" * 32),
        m.Stored(id=2, text="two", project="a", kind="note", content_hash="2" * 32),
        m.Stored(id=3, text="three", project="a", kind="note", content_hash="3" * 32),
        m.Stored(id=4, text="four", project="a", kind="note", content_hash="4" * 32),
        m.Recalled(memory=1, query="q", rank=0, score=0.5),
        m.Recalled(memory=2, query="q", rank=1, score=0.5),
        m.Recalled(memory=3, query="q", rank=2, score=0.5),
        m.Recalled(memory=4, query="q", rank=3, score=0.5),
        m.Linked(a=1, b=2, similarity=0.8),
        m.Used(memory=3, evidence="reply", score=0.7, session="s"),
        m.Reprieved(memory=4, count=2, reason="substantive"),
        m.Shown(memories=(1, 2, 3, 4), session="s", hook="UserPromptSubmit"),
        m.Restored(memory=1),
    ]
    history = [m.Record(seq=i, at=at + timedelta(minutes=i), event=e)
               for i, e in enumerate(events, start=1)]
    base = tmp_path_factory.mktemp("last-word")  # type: ignore[attr-defined]
    shorter, horizon = compacted(history, [len(history) - 1])
    assert any(isinstance(r.event, m.Tallied) for r in shorter)
    replays = []
    for name, records in (("full", history), ("compacted", shorter)):
        projections = Projections(base / f"{name}.sqlite3", base / f"{name}.usearch")
        projections.apply(records)
        replays.append(rows(projections, horizon))
        projections.close()
    assert replays[0]["memories"] == replays[1]["memories"]


def test_planning_many_recalls_sets_off_no_garbage_collection() -> None:
    """What a segment's recalls and showings are tallied in is invisible to the cycle
    collector: planning 20k of them makes no collection (each would walk the segment's
    record lists with the GIL held)."""
    events: list[m.Event] = [m.Recalled(memory=n, query="q", rank=0, score=0.5)
                             for n in range(1, 10_001)]
    events.append(m.Shown(memories=tuple(range(10_001, 20_001)), session="s", hook="h"))
    history = [m.Record(seq=i, at=T0 + timedelta(seconds=i), event=e)
               for i, e in enumerate(events, start=1)]
    found = survey(history)
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.collect()
    gc.callbacks.append(count)
    try:
        plan = plan_segment(history, found)
    finally:
        gc.callbacks.remove(count)
    assert sum(len(r.event.memories) for r in plan.added  # type: ignore[attr-defined]
               ) == 20_000
    assert len(collections) <= 1  # none from the plan (one may come from elsewhere)
