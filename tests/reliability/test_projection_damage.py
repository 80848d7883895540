"""Damaged projections are set aside and rebuilt from the log, at open and at run time, and a
rebuild that runs while commits arrive loses none of them."""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from pathlib import Path

import anyio
import numpy as np
import pytest

from memlane.daemon.runtime.projector import Projector
from memlane.events.log import EventLog
from memlane.events.model import Embedded, Event, Stored
from memlane.projections.catchup import Projections
from tests.projections.test_fold import dump

PAGE = 4096


def stored(n: int) -> Stored:
    return Stored(id=n, text=f"memory {n} about the build cache " * 8, project="p", kind="note",
                  content_hash=f"{n:032x}")


def embedded(n: int) -> Embedded:
    vector = np.random.default_rng(n).standard_normal(8).astype("<f4")
    return Embedded(memory=n, vector=vector.tobytes(), dims=8, model="t", pipeline="t:8")


def batch(first: int, size: int) -> list[Event]:
    """``size`` stores from id ``first``, each followed by its vector (seq = id for stores)."""
    events: list[Event] = []
    for n in range(first, first + 2 * size, 2):
        events += [stored(n), embedded(n)]
    return events


def filled_log(directory: Path, count: int) -> EventLog:
    log = EventLog.open(directory)
    for _ in range(0, count, 50):
        log.append(batch(log.last_seq + 1, 25))
    return log


def damage_middle_page(path: Path) -> None:
    """Overwrite one page in the middle of the file (not the header page)."""
    pages = path.stat().st_size // PAGE
    assert pages > 4
    with open(path, "r+b") as f:
        f.seek(pages // 2 * PAGE)
        f.write(b"\xde\xad\xbe\xef" * (PAGE // 4))


def damage_under(projections: Projections, *, whole: bool = False) -> None:
    """Damage a band of pages (``whole``: all but the header page) behind the open connection's back and drop its page cache (as
    if the pages had been evicted), so the next statement that needs them reads the damage."""
    path = projections.sqlite_path
    pages = path.stat().st_size // PAGE
    with open(path, "r+b") as f:
        for page in range(1, pages) if whole else range(pages // 3, 2 * pages // 3):
            f.seek(page * PAGE)
            f.write(b"\xde\xad\xbe\xef" * (PAGE // 4))
    projections.sqlite.conn.execute("PRAGMA shrink_memory")


def projected(tmp_path: Path, count: int = 400) -> tuple[EventLog, Path]:
    log = filled_log(tmp_path / "log", count)
    projections = Projections(tmp_path / "p" / "db.sqlite3", tmp_path / "p" / "v.usearch")
    projections.catch_up(tmp_path / "log", log.last_seq)
    projections.close()
    return log, tmp_path / "p" / "db.sqlite3"


def fresh_replay(tmp_path: Path, log: EventLog) -> dict[str, list[tuple[object, ...]]]:
    fresh = Projections(tmp_path / "fresh" / "db.sqlite3", tmp_path / "fresh" / "v.usearch")
    fresh.catch_up(log.directory, log.last_seq)
    fresh.close()
    return dump(tmp_path / "fresh" / "db.sqlite3")


def test_a_page_damaged_projection_is_set_aside_and_rebuilt_at_open(tmp_path: Path) -> None:
    """A projection with a damaged page in its middle fails the integrity check at open; it is
    moved to projections/damaged-*/ and the replay equals a fresh one."""
    log, db = projected(tmp_path)
    damage_middle_page(db)
    again = Projections(db, db.with_name("v.usearch"))
    assert again.damage.rebuilt_after_damage == 1 and again.damage.last_damage
    again.catch_up(log.directory, log.last_seq)
    again.close()
    aside = list(db.parent.glob("damaged-*/db.sqlite3"))
    assert len(aside) == 1
    assert dump(db) == fresh_replay(tmp_path, log)


@pytest.mark.parametrize("sidecar", ["[]", "null", "{garbage", '{"applied_seq": "x"}', "7"])
def test_a_damaged_sidecar_is_rebuilt_not_a_crash(tmp_path: Path, sidecar: str) -> None:
    """A vectors sidecar JSON of any shape that is not the expected object means a rebuild."""
    log, db = projected(tmp_path, 60)
    db.with_name("v.usearch.json").write_text(sidecar)
    again = Projections(db, db.with_name("v.usearch"))
    assert "vectors" in again.rebuilt and again.vectors.applied_seq == 0
    again.catch_up(log.directory, log.last_seq)
    assert again.applied_seq == log.last_seq
    again.close()


def test_damage_found_at_run_time_is_repaired_by_the_projector(tmp_path: Path) -> None:
    """A batch that meets a malformed page makes the projector set the file aside and rebuild
    it from the log, then carry on: no crash, nothing missing."""
    log, db = projected(tmp_path)
    projections = Projections(db, db.with_name("v.usearch"))
    damage_under(projections, whole=True)
    new = log.append(batch(log.last_seq + 1, 25))

    async def main() -> None:
        projector = Projector(projections, log_dir=log.directory)
        async with anyio.create_task_group() as tg:
            await tg.start(projector.run)
            await projector.push(new)
            await projector.wait_for(new[-1].seq)
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert projections.damage.rebuilt_after_damage == 1
    assert projections.sqlite.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    projections.close()
    assert dump(db) == fresh_replay(tmp_path, log)


def test_a_rebuild_while_commits_arrive_loses_none(tmp_path: Path) -> None:
    """Records applied to the live projections during a rebuild are in the swapped-in files:
    the result equals a fresh replay and applying continues without a gap."""
    log, db = projected(tmp_path, 4000)
    projections = Projections(db, db.with_name("v.usearch"))
    upto = log.last_seq
    done = threading.Event()

    def rebuild() -> None:
        projections.rebuild(log.directory, upto)
        done.set()

    worker = threading.Thread(target=rebuild)
    worker.start()
    n = upto
    while not done.is_set() or n < upto + 100:
        projections.apply(log.append(batch(log.last_seq + 1, 1)))
        n += 2
    worker.join()
    projections.apply(log.append(batch(log.last_seq + 1, 1)))
    assert projections.applied_seq == log.last_seq
    projections.close()
    assert dump(db) == fresh_replay(tmp_path, log)


def test_a_read_meeting_damage_repairs_and_answers(tmp_path: Path) -> None:
    """A read that hits a malformed page triggers the same repair, then answers."""
    from memlane.daemon.runtime.reader import Reader

    log, db = projected(tmp_path)
    projections = Projections(db, db.with_name("v.usearch"))
    damage_under(projections)

    def count(conn: sqlite3.Connection) -> int:
        return len(conn.execute("SELECT text FROM memories ORDER BY id").fetchall())

    async def main() -> int:
        projector = Projector(projections, log_dir=log.directory)
        async with anyio.create_task_group() as tg:
            await tg.start(projector.run)
            answer = await Reader(projections, projector, log).read(count)
            tg.cancel_scope.cancel()
        return answer

    assert anyio.run(main) == 200
    assert projections.damage.rebuilt_after_damage == 1
    projections.close()


def test_a_full_disk_under_the_growing_vectors_stalls_the_projector_until_it_has_room(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flat matrix reserves blocks as it grows: a full disk there is a storage error like
    SQLite's, so the projector stalls and retries (not a crash), and resumes with room."""
    log, db = projected(tmp_path, count=100)
    projections = Projections(db, db.with_name("v.usearch"))
    refusals = 0
    fallocate = os.posix_fallocate

    def full_twice(fd: int, offset: int, length: int) -> None:
        nonlocal refusals
        if refusals < 2:
            refusals += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fallocate(fd, offset, length)

    monkeypatch.setattr(os, "posix_fallocate", full_twice)
    new = log.append(batch(log.last_seq + 1, 1100))  # the matrix must grow

    async def main() -> list[str]:
        projector = Projector(projections, log_dir=log.directory)
        stalls = []
        async with anyio.create_task_group() as tg:
            await tg.start(projector.run)
            await projector.push(new)
            with anyio.fail_after(30):
                while projector.applied_seq < new[-1].seq:
                    if projector.stalled is not None:
                        stalls.append(projector.stalled)
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        return stalls

    stalls = anyio.run(main)
    assert refusals == 2 and stalls and "No space left" in stalls[0]
    assert len(projections.vectors) == 1150
    projections.close()
