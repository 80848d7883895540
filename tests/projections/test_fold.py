"""Projections: incremental apply equals a rebuild, and damage is detected and repaired."""

from __future__ import annotations

import sqlite3
import struct
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memlane.events import model as m
from memlane.events.log import EventLog
from memlane.projections import catchup
from memlane.projections.catchup import Projections
from memlane.projections.sqlite_store import SqliteProjection
from memlane.projections.vector_store import VectorProjection

T0 = datetime(2026, 11, 24, tzinfo=UTC)


@st.composite
def histories(draw: st.DrawFn) -> list[m.Record]:
    """A plausible log holding every kind of event (stores first, so others have a target)."""
    records: list[m.Record] = []
    memories: list[int] = []
    for _ in range(draw(st.integers(1, 40))):
        seq = len(records) + 1
        choice = draw(st.sampled_from(["store", *KINDS_OF_EVENT]))
        event = _event(draw, choice, seq, memories)
        records.append(m.Record(seq=seq, at=T0 + timedelta(seconds=seq), event=event))
    return records


PIPELINES = ("t:4", "u:4")
# The event each choice of :func:`histories` draws ("store" draws Stored).
KINDS_OF_EVENT = {"embed": m.Embedded, "link": m.Linked, "cluster": m.Clustered,
                  "consolidate": m.Consolidated, "recall": m.Recalled, "expire": m.Expired,
                  "restore": m.Restored, "forget": m.Forgotten,
                  "request_forget": m.ForgetRequested, "promote": m.Promoted,
                  "route": m.Routed, "threshold": m.ThresholdSet, "model": m.ModelChanged,
                  "reprieve": m.Reprieved, "reinforce": m.Reinforced,
                  "show": m.Shown, "use": m.Used, "pin": m.Pinned,
                  "reject": m.ConsolidationRejected, "tally": m.Tallied,
                  "embeddings": m.Embeddings}


def test_histories_cover_every_event_kind() -> None:
    """A new event kind must join the fold's property test (or this fails)."""
    assert {m.Stored, *KINDS_OF_EVENT.values()} == set(m.EVENT_TYPES)


def _event(draw: st.DrawFn, choice: str, seq: int, memories: list[int]) -> m.Event:
    pick = st.sampled_from(memories) if memories else None
    if choice == "store" or pick is None:
        memories.append(seq)
        text = draw(st.text(min_size=1, max_size=40))
        return m.Stored(id=seq, text=text, project=draw(st.sampled_from(["a", "b"])),
                        kind="note", content_hash=f"{seq:032x}")
    target = draw(pick)
    if choice == "embed":  # by one of two pipelines; now and then a vector with no direction
        vec = np.asarray(draw(st.lists(st.floats(-1, 1, width=32), min_size=4, max_size=4)),
                         dtype="<f4") + 2.0
        zero = draw(st.integers(0, 3)) == 0
        return m.Embedded(memory=target, vector=(vec * 0 if zero else vec).tobytes(), dims=4,
                          model="t", pipeline=draw(st.sampled_from(PIPELINES)))
    if choice == "embeddings":  # as compaction writes them: int8 codes and their scales
        members = tuple(dict.fromkeys(draw(st.lists(pick, min_size=1, max_size=3))))
        codes = draw(st.binary(min_size=4 * len(members), max_size=4 * len(members)))
        return m.Embeddings(memories=members, codes=codes, scales=(0.01,) * len(members), dims=4,
                            model="t", pipeline="t:4")
    if choice == "link":
        return m.Linked(a=target, b=draw(pick), similarity=0.8)
    if choice == "cluster":
        return m.Clustered(cluster=seq, members=tuple(draw(st.lists(pick, min_size=1, max_size=3))),
                           cohesion=0.7)
    if choice == "consolidate":
        memories.append(seq)
        return m.Consolidated(id=seq, sources=(target,), text="merged", project="a", kind="proven",
                              content_hash=f"{seq:032x}", model="x", prompt_version="1")
    simple = {
        "recall": lambda: m.Recalled(memory=target, query="q", rank=0, score=0.5),
        "expire": lambda: m.Expired(memory=target, reason="aged"),
        "restore": lambda: m.Restored(memory=target),
        "forget": lambda: m.Forgotten(memory=target, content_hash="0" * 32,
                                      request=draw(st.integers(0, seq))),
        "request_forget": lambda: m.ForgetRequested(memories=(target,)),
        "promote": lambda: m.Promoted(memory=target, reason="recalled"),
        "route": lambda: m.Routed(memory=target, target="CLAUDE.md", section="memlane",
                                  action="proposed", verdict="ok"),
        "threshold": lambda: m.ThresholdSet(model="t", name="link", value=0.6),
        "model": lambda: m.ModelChanged(model="t", pipeline=draw(st.sampled_from(PIPELINES)),
                                        dims=4),
        "reprieve": lambda: m.Reprieved(memory=target, count=1, reason="substantive"),
        "reinforce": lambda: m.Reinforced(memory=target, source="api"),
        "show": lambda: m.Shown(memories=(target,), session="s", hook="UserPromptSubmit",
                                prompt_hash="ab"),
        "use": lambda: m.Used(memory=target, evidence="reply", score=0.5, session="s"),
        "pin": lambda: m.Pinned(memory=target, pinned=draw(st.booleans())),
        "reject": lambda: m.ConsolidationRejected(cluster=draw(st.integers(1, seq)),
                                                  members=(target,)),
        "tally": lambda: m.Tallied(memories=(target,), recalls=(2,), shown=(3,),
                                   last_recalled=(T0,), refreshed=(seq - 1,)),
    }
    return simple[choice]()


def dump(path: Path) -> list[str]:
    """Every row, as SQL; the full-text index as its documents (its b-tree layout depends on
    how many transactions built it, its content does not)."""
    projection = SqliteProjection(path)
    lines = [line for line in projection.conn.iterdump() if "memories_fts_" not in line]
    lines += [repr(row) for row in projection.conn.execute(
        "SELECT rowid, text FROM memories_fts ORDER BY rowid")]
    projection.close()
    return lines


def vectors_of(projections: Projections, ids: list[int]) -> dict[int, bytes]:
    found = {}
    for i in ids:
        vec = projections.vectors.vector(i)
        if vec is not None:
            found[i] = vec.tobytes()
    return found


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(), cuts=st.lists(st.integers(1, 40), max_size=5))
def test_incremental_apply_equals_rebuild(tmp_path_factory: object, history: list[m.Record],
                                          cuts: list[int]) -> None:
    """Applying records in any batches gives the same rows and vectors as one full replay."""
    base = tmp_path_factory.mktemp("p")  # type: ignore[attr-defined]
    one = Projections(base / "one.sqlite3", base / "one.usearch")
    bounds = sorted({0, len(history), *[c for c in cuts if c < len(history)]})
    for start, end in zip(bounds, bounds[1:]):
        one.apply(history[start:end])
    one.close()
    log = EventLog.open(base / "log")
    log.append_records(history)
    full = Projections(base / "full.sqlite3", base / "full.usearch")
    full.rebuild(base / "log", log.last_seq)
    full.close()
    log.close()
    assert dump(base / "one.sqlite3") == dump(base / "full.sqlite3")
    reopened = [Projections(base / f"{n}.sqlite3", base / f"{n}.usearch") for n in ("one", "full")]
    ids = [r.seq for r in history]
    assert vectors_of(reopened[0], ids) == vectors_of(reopened[1], ids)
    for p in reopened:
        p.close()


def _log_with_vectors(directory: Path) -> EventLog:
    log = EventLog.open(directory)
    rng = np.random.default_rng(7)
    for i in range(1, 31, 2):
        log.append([m.Stored(id=i, text=f"text {i}", project="a", kind="note",
                             content_hash=f"{i:032x}")])
        vec = rng.standard_normal(8).astype("<f4")
        log.append([m.Embedded(memory=i, vector=vec.tobytes(), dims=8, model="t", pipeline="t:8")])
    return log


def test_damaged_vector_index_is_detected_and_rebuilt(tmp_path: Path) -> None:
    """A vector file cut or altered within the rows it saved is not trusted: it is rebuilt to
    the same answers (the flat matrix's file runs on past them, zeros up to its capacity)."""
    log = _log_with_vectors(tmp_path / "log")
    first = Projections(tmp_path / "p.sqlite3", tmp_path / "v.usearch")
    first.catch_up(tmp_path / "log", log.last_seq)
    query = first.vectors.vector(5)
    assert query is not None
    expected = first.vectors.search(query, 5, exact=True)
    first.close()
    index = tmp_path / "v.usearch"
    for damage in (lambda b: b[:100], lambda b: struct.pack("<d", 1.5) + b[8:]):
        index.write_bytes(damage(index.read_bytes()))
        again = Projections(tmp_path / "p.sqlite3", tmp_path / "v.usearch")
        assert "vectors" in again.rebuilt and again.vectors.applied_seq == 0
        again.catch_up(tmp_path / "log", log.last_seq)
        assert again.vectors.search(query, 5, exact=True) == expected
        again.close()
    log.close()


def test_both_damaged_are_set_aside_sqlite_first(tmp_path: Path) -> None:
    """With both files damaged, each is set aside and rebuilt, the SQLite file first (the
    last damage reported is the vectors')."""
    log = _log_with_vectors(tmp_path / "log")
    first = Projections(tmp_path / "p.sqlite3", tmp_path / "v.usearch")
    first.catch_up(tmp_path / "log", log.last_seq)
    first.close()
    (tmp_path / "p.sqlite3").write_bytes(b"this is not a database" * 100)
    (tmp_path / "v.usearch.json").write_text("[]")  # JSON, but not the sidecar's object
    again = Projections(tmp_path / "p.sqlite3", tmp_path / "v.usearch")
    assert again.rebuilt == ["sqlite", "vectors"]
    assert again.damage.rebuilt_after_damage == 2
    assert again.damage.last_damage is not None and "v.usearch.json" in again.damage.last_damage
    again.catch_up(tmp_path / "log", log.last_seq)
    assert again.applied_seq == log.last_seq
    again.close()
    log.close()


def test_the_sqlite_check_runs_beside_the_vectors_load(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening checks the SQLite file in another thread while the vectors load (the check
    lets the GIL go, the load does not): each sees the other under way."""
    log = _log_with_vectors(tmp_path / "log")
    first = Projections(tmp_path / "p.sqlite3", tmp_path / "v.usearch")
    first.catch_up(tmp_path / "log", log.last_seq)
    first.close()
    checking, loading = threading.Event(), threading.Event()
    real_check, real_load = catchup.integrity_problem, VectorProjection.load

    def check(conn: sqlite3.Connection) -> str | None:
        checking.set()
        assert loading.wait(30), "the vectors did not load during the check"
        return real_check(conn)

    def load(self: VectorProjection) -> bool:
        loading.set()
        assert checking.wait(30), "the check did not run during the vectors' load"
        return real_load(self)

    monkeypatch.setattr(catchup, "integrity_problem", check)
    monkeypatch.setattr(VectorProjection, "load", load)
    again = Projections(tmp_path / "p.sqlite3", tmp_path / "v.usearch")
    assert again.rebuilt == [] and again.applied_seq == log.last_seq
    again.close()
    log.close()


def test_corrupt_sqlite_file_is_detected_and_rebuilt(tmp_path: Path) -> None:
    """A SQLite file that is not a database is replaced by a replay from the log."""
    log = _log_with_vectors(tmp_path / "log")
    first = Projections(tmp_path / "p.sqlite3", tmp_path / "v.usearch")
    first.catch_up(tmp_path / "log", log.last_seq)
    first.close()
    before = dump(tmp_path / "p.sqlite3")
    (tmp_path / "p.sqlite3").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp_path / 'p.sqlite3'}{suffix}").unlink(missing_ok=True)
    again = Projections(tmp_path / "p.sqlite3", tmp_path / "v.usearch")
    assert "sqlite" in again.rebuilt
    again.catch_up(tmp_path / "log", log.last_seq)
    again.close()
    assert dump(tmp_path / "p.sqlite3") == before
    log.close()
