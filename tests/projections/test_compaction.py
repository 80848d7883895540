"""Compaction: the compacted log replays to the same projections as the log it replaced."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from memlane.cli.logcmd import verify
from memlane.cli.offline import compact_offline, replay_until
from memlane.daemon.adapters.paths import resolve_paths
from memlane.events.compactor import compacted_through
from memlane.daemon.domain.history import history
from memlane.events import model as m
from memlane.events.log import EventLog, read_log
from memlane.events.mentions import referenced
from memlane.events import seek
from memlane.events.seek import Seeker
from memlane.events.retention import compact
from memlane.projections import catchup, memory_events
from memlane.projections.catchup import Projections
from tests.history import History, generate

DAYS = 60
SEGMENT = 96 * 1024


def build(tmp_path: Path) -> tuple[EventLog, History]:
    log = EventLog.open(tmp_path / "log", segment_bytes=SEGMENT)
    history = generate(log, days=DAYS, stores=6, prompts=25, switch_at=30, forgets=3,
                       dims=(16, 32))
    return log, history


def project(tmp_path: Path, name: str, log: EventLog) -> Projections:
    projections = Projections(tmp_path / f"{name}.sqlite", tmp_path / f"{name}.usearch")
    projections.catch_up(log.directory, log.last_seq)
    return projections


def rows(projections: Projections, horizon: int) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, sorted; but the sessions' exposure rows compaction drops
    and the per-memory index of seqs (it points at dropped records; history follows them to
    their tallies) below the horizon, and the applied seq (a compacted log may end on a dropped record)."""
    conn = projections.sqlite.conn
    tables = [name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'memories_fts%'")]
    where = {"shown_in": f"WHERE seq >= {horizon}", "meta": "WHERE key != 'applied_seq'",
             "memory_events": f"WHERE seq >= {horizon}"}
    found = {t: sorted(conn.execute(f"SELECT * FROM {t} {where.get(t, '')}").fetchall(), key=repr)
             for t in tables}
    found["memories_fts"] = conn.execute(
        "SELECT rowid, text FROM memories_fts ORDER BY rowid").fetchall()
    return found


def vectors(projections: Projections, ids: range) -> tuple[str | None, dict[int, bytes]]:
    found = {}
    for i in ids:
        vec = projections.vectors.vector(i)
        if vec is not None:
            found[i] = vec.tobytes()
    return projections.vectors.pipeline, found


def log_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.seg"))


@pytest.fixture(scope="module")
def compacted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("compaction")
    log, history = build(tmp)
    before = project(tmp, "before", log)
    expected_vectors = vectors(before, range(1, log.last_seq + 1))
    size_before = log_bytes(log.directory)
    prepared = compact(log, cutoff=history.now - timedelta(days=5),
                       floors=[before.applied_seq])
    after = project(tmp, "after", log)
    answer = {"tmp": tmp, "log": log, "history": history, "before": before, "after": after,
              "prepared": prepared, "size_before": size_before,
              "expected_vectors": expected_vectors}
    yield answer
    before.close()
    after.close()
    log.close()


def test_replay_of_the_compacted_log_gives_the_same_projections(compacted: dict) -> None:
    """Every row of every table, and every vector, is the same after replaying the compacted
    log (except which session saw which memory, below the horizon)."""
    horizon = compacted["prepared"].horizon
    before, after, log = compacted["before"], compacted["after"], compacted["log"]
    assert compacted["prepared"].staged.segments, "nothing was compacted"
    assert vectors(after, range(1, log.last_seq + 1)) == compacted["expected_vectors"]
    assert rows(after, horizon) == rows(before, horizon)


def test_the_compacted_log_is_smaller_and_verifies(compacted: dict) -> None:
    """Recalls, exposures and superseded vectors go; `log verify` finds nothing wrong."""
    log = compacted["log"]
    staged = compacted["prepared"].staged
    assert log_bytes(log.directory) < compacted["size_before"] * 0.7
    assert "recalled" not in staged.after_by_kind and "shown" not in staged.after_by_kind
    assert staged.after_by_kind["tallied"] > 0
    assert staged.after_by_kind["embedded"] < staged.before_by_kind["embedded"]
    report = verify(log.directory)
    assert report["ok"] and report["sealed"]["problems"] == [], report
    assert not (log.directory / "compact-staging").exists()
    assert not (log.directory / "compact-commit").exists()


def test_seqs_keep_rising_and_records_inside_the_window_are_untouched(compacted: dict) -> None:
    """Kept records keep their seqs; every record at or above the horizon is still there."""
    log, horizon = compacted["log"], compacted["prepared"].horizon
    seqs = [r.seq for r in read_log(log.directory)]
    assert seqs == sorted(set(seqs))
    assert seqs[-1] == log.last_seq
    assert [s for s in seqs if s >= horizon] == list(range(horizon, log.last_seq + 1))


def test_compacting_again_changes_nothing(compacted: dict) -> None:
    """A compacted segment compacts to itself."""
    log, history = compacted["log"], compacted["history"]
    again = compact(log, cutoff=history.now - timedelta(days=5),
                    floors=[compacted["after"].applied_seq])
    assert again.staged.segments == []


def test_projections_kept_live_across_compaction_match_a_rebuild(compacted: dict) -> None:
    """A projection fed before compaction and after it equals one replayed from scratch,
    and a forget after compaction rewrites compacted segments like any other."""
    tmp, log, history = compacted["tmp"], compacted["log"], compacted["history"]
    live = compacted["before"]
    history.day(stores=3, prompts=5)
    victim = history.live[0]
    assert any(victim in getattr(r.event, "memories", ()) or getattr(r.event, "memory", 0) == victim
               for r in read_log(log.directory) if isinstance(r.event, m.Tallied | m.Embedded))
    history.forget_memory(victim)
    live.catch_up(log.directory, log.last_seq)
    fresh = project(tmp, "fresh", log)
    horizon = compacted["prepared"].horizon
    assert vectors(fresh, range(1, log.last_seq + 1)) == vectors(live, range(1, log.last_seq + 1))
    assert rows(fresh, horizon) == rows(live, horizon)
    text = f"memory {victim} about".encode()
    assert not any(text in p.read_bytes() for p in log.directory.glob("*.seg"))
    fresh.close()


def test_replay_until_keeps_full_detail_inside_the_window_and_says_so_outside(
        tmp_path: Path) -> None:
    """`replay --until` after compaction: a point after the compacted part replays as the
    uncompacted log did; a point inside it is refused with the first seq still whole."""
    home = resolve_paths({"MEMLANE_HOME": str(tmp_path / "home")})
    log = EventLog.open(home.log_dir, segment_bytes=SEGMENT)
    generate(log, days=20, stores=4, prompts=10, switch_at=10, forgets=1, dims=(8, 16))
    last = log.last_seq
    log.close()
    uncompacted = resolve_paths({"MEMLANE_HOME": str(tmp_path / "copy")})
    shutil.copytree(home.home, uncompacted.home)
    compact_offline(home, retention_days=30)
    through = compacted_through(home.log_dir)
    assert 0 < through < last
    with pytest.raises(ValueError, match=f"compacted away: the log keeps every event only "
                                         f"from seq {through + 1} "):
        replay_until(home, str(through - 3), tmp_path / "too-early")
    point = str((through + last) // 2)
    replayed = replay_until(home, point, tmp_path / "now")
    expected = replay_until(uncompacted, point, tmp_path / "then")
    assert replayed["memories"] == expected["memories"] and replayed["until_seq"] == int(point)


def test_a_rebuild_in_small_batches_crosses_the_gaps(compacted: dict,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Catch-up batches that start after a dropped record still apply (seqs rise, with gaps)."""
    tmp, log = compacted["tmp"], compacted["log"]
    big = project(tmp, "one-batch", log)
    monkeypatch.setattr(catchup, "CATCH_UP_BATCH", 7)
    small = project(tmp, "small-batches", log)
    horizon = compacted["prepared"].horizon
    assert rows(small, horizon) == rows(big, horizon)
    small.close()
    big.close()


def test_a_memory_s_history_shows_its_own_tally(compacted: dict) -> None:
    """`memlane history` after compaction: the tally row carries that memory's counts only."""
    log, before = compacted["log"], compacted["before"]
    memory, recalls = before.sqlite.conn.execute(
        "SELECT id, recalls FROM memories WHERE recalls > 0 ORDER BY id LIMIT 1").fetchone()
    rows = history(read_log(log.directory), memory)
    tallies = [r for r in rows if r["type"] == "tallied"]
    assert tallies and set(tallies[0]) == {"seq", "at", "type", "recalls", "shown",
                                           "last_recalled", "refreshed"}
    kept = sum(1 for r in rows if r["type"] in ("recalled", "used"))
    assert sum(t["recalls"] for t in tallies) + kept == recalls


def test_every_history_through_the_index_is_the_history_the_log_holds(compacted: dict) -> None:
    """Each memory's history, read at the seqs its index holds (filled before compaction, or
    replayed from the compacted log), equals a scan of the whole log."""
    log, before, after = compacted["log"], compacted["before"], compacted["after"]
    seeker = Seeker(log.directory)
    for projections in (before, after):
        scanned: dict[int, list[m.Record]] = {}
        for record in read_log(log.directory, upto=projections.applied_seq):
            for memory in set(referenced(record.event)):
                scanned.setdefault(memory, []).append(record)
        conn = projections.sqlite.conn
        assert any(r.seq < compacted["prepared"].horizon and isinstance(r.event, m.Tallied)
                   for records in scanned.values() for r in records)
        for memory, records in scanned.items():
            found = seeker.records_of(memory, memory_events.seqs_of(conn, memory))
            assert history(found, memory) == history(records, memory), memory


def test_histories_after_the_first_decode_only_the_frames_they_need(
        compacted: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compacted segment's stand-ins are mapped by memory at the first history that needs
    them; the next memories' histories read no more of the segment than their own frames."""
    log, before = compacted["log"], compacted["before"]
    conn = before.sqlite.conn
    tallied = [memory for (memory,) in conn.execute(
        "SELECT id FROM memories WHERE recalls > 0 ORDER BY id")]
    assert len(tallied) > 3
    expected = {memory: history(
        [r for r in read_log(log.directory) if memory in set(referenced(r.event))], memory)
        for memory in tallied}
    seeker = Seeker(log.directory)

    def history_of(memory: int) -> list[dict]:
        return history(seeker.records_of(memory, memory_events.seqs_of(conn, memory)), memory)

    assert history_of(tallied[0]) == expected[tallied[0]]
    monkeypatch.setattr(seek, "_iter_from", lambda *a: pytest.fail("the segment scanned again"))
    for memory in tallied[1:]:
        assert history_of(memory) == expected[memory], memory


def test_a_rebuild_reports_its_progress_up_to_the_last_seq(compacted: dict,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """`memlane rebuild`'s bar: (seqs replayed, seqs to replay) after each batch, rising to
    the whole log, across the compacted part's gaps."""
    tmp, log = compacted["tmp"], compacted["log"]
    monkeypatch.setattr(catchup, "CATCH_UP_BATCH", 50)
    projections = Projections(tmp / "progress.sqlite", tmp / "progress.usearch")
    seen: list[tuple[int, int]] = []
    projections.rebuild(log.directory, log.last_seq, progress=lambda d, t: seen.append((d, t)))
    projections.close()
    assert len(seen) > 2 and seen[-1] == (log.last_seq, log.last_seq)
    assert [d for d, _ in seen] == sorted({d for d, _ in seen})
    assert {t for _, t in seen} == {log.last_seq}
