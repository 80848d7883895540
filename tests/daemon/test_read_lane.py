"""Reads have their own lane: their own SQLite connections (WAL readers) and threads, so a
search or a hook answers from committed state while the projector writes, and nothing they
leave behind keeps forget from emptying the WAL or a rebuild from swapping the file."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import anyio
import numpy as np

from memlane.daemon.runtime.projector import Projector
from memlane.daemon.runtime.reader import Reader
from memlane.events.log import EventLog
from memlane.events.model import Forgotten
from memlane.events.vector_codes import held
from memlane.projections.catchup import Projections
from tests.reliability.test_projection_damage import batch, embedded, projected

HELD = 3.0  # how long the "projector" keeps its write open
PATIENCE = 1.0  # a read that takes this long waited for it


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM memories").fetchone()[0])


def opened(tmp_path: Path, memories: int = 200) -> tuple[EventLog, Projections]:
    log, db = projected(tmp_path, 2 * memories)
    return log, Projections(db, db.with_name("v.usearch"))


async def timed_read(reader: Reader) -> tuple[int, float]:
    started = time.monotonic()
    answer = await reader.read(count)
    return answer, time.monotonic() - started


def hold_a_write(projections: Projections, holding: threading.Event,
                 release: threading.Event) -> None:
    """What a long projector apply does: the projections' lock and an open write
    transaction on the projection's connection, with a row not yet committed."""
    with projections.lock:
        conn = projections.sqlite.conn
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO memories (id, project, kind, source, text, tags, "
                     "content_hash, state, created_at, updated_at) VALUES (999999, 'p', "
                     "'note', 'cli', 'uncommitted', '[]', 'x', 'active', '', '')")
        holding.set()
        release.wait(HELD)
        conn.execute("ROLLBACK")


def test_a_read_answers_while_the_projector_holds_a_long_write(tmp_path: Path) -> None:
    """A read does not queue behind a projector apply in progress: it answers at once, from
    what was committed (the row the apply has not committed is not seen)."""
    log, projections = opened(tmp_path)
    holding, release = threading.Event(), threading.Event()

    async def main() -> tuple[int, float]:
        projector = Projector(projections, log_dir=log.directory)
        reader = Reader(projections, projector, log)
        async with anyio.create_task_group() as tg:
            await tg.start(projector.run)
            writer = threading.Thread(target=hold_a_write, args=(projections, holding, release))
            writer.start()
            holding.wait()
            try:
                answer = await timed_read(reader)
            finally:
                release.set()
                writer.join()
            tg.cancel_scope.cancel()
        return answer

    rows, seconds = anyio.run(main)
    projections.close()
    assert rows == 200
    assert seconds < PATIENCE, f"the read waited {seconds:.1f} s behind the projector's write"


def test_a_read_keeps_no_snapshot_after_it_answers(tmp_path: Path) -> None:
    """A read that leaves a cursor unfinished still ends its read transaction: the WAL can be
    emptied (TRUNCATE checkpoint) right after."""
    log, projections = opened(tmp_path)
    projections.apply(log.append(batch(log.last_seq + 1, 5)))  # frames in the WAL

    def unfinished(conn: sqlite3.Connection) -> sqlite3.Cursor:
        cursor = conn.execute("SELECT text FROM memories")
        cursor.fetchone()
        return cursor  # kept, not exhausted

    async def main() -> sqlite3.Cursor:
        projector = Projector(projections, log_dir=log.directory)
        async with anyio.create_task_group() as tg:
            await tg.start(projector.run)
            kept = await Reader(projections, projector, log).read(unfinished)
            tg.cancel_scope.cancel()
        return kept

    kept = anyio.run(main)
    with projections.lock:
        busy, _, _ = projections.sqlite.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0 and kept is not None
    assert Path(f"{projections.sqlite_path}-wal").stat().st_size == 0
    projections.close()


def test_forget_scrub_empties_the_wal_while_reads_are_in_flight(tmp_path: Path) -> None:
    """Forget's scrub (VACUUM, then a TRUNCATE checkpoint that must leave the WAL empty)
    waits for a read in the middle of its snapshot instead of failing, and empties the WAL."""
    log, projections = opened(tmp_path)
    inside, release = threading.Event(), threading.Event()

    def slow(conn: sqlite3.Connection) -> int:
        rows = count(conn)  # the snapshot is open from here
        inside.set()
        release.wait(HELD)
        return rows

    async def main() -> float:
        projector = Projector(projections, log_dir=log.directory)
        reader = Reader(projections, projector, log)
        async with anyio.create_task_group() as tg:
            await tg.start(projector.run)
            records = log.append(batch(log.last_seq + 1, 5))  # frames in the WAL
            await projector.push(records)
            await projector.wait_for(records[-1].seq)
            tg.start_soon(reader.read, slow)
            for _ in range(20):  # and others, coming and going
                tg.start_soon(reader.read, count)
            assert await anyio.to_thread.run_sync(inside.wait, HELD)
            threading.Timer(0.5, release.set).start()

            def scrub() -> float:
                started = time.monotonic()
                with projections.lock:
                    projections.scrub_sqlite()
                return time.monotonic() - started

            seconds = await anyio.to_thread.run_sync(scrub)
            tg.cancel_scope.cancel()
        return seconds

    seconds = anyio.run(main)
    assert Path(f"{projections.sqlite_path}-wal").stat().st_size == 0
    assert seconds < HELD
    projections.close()


def test_a_read_after_a_rebuild_sees_the_new_file(tmp_path: Path) -> None:
    """Reads opened on the old file are not reused after a rebuild swaps it: the next read
    sees what the rebuilt file holds."""
    log, projections = opened(tmp_path)

    async def main() -> tuple[int, int]:
        projector = Projector(projections, log_dir=log.directory)
        reader = Reader(projections, projector, log)
        async with anyio.create_task_group() as tg:
            await tg.start(projector.run)
            before = await reader.read(count)
            log.append(batch(log.last_seq + 1, 30))  # in the log, not yet projected
            await anyio.to_thread.run_sync(projections.rebuild, log.directory, log.last_seq)
            projector.applied_seq = projections.applied_seq
            after = await reader.read(count)
            tg.cancel_scope.cancel()
        return before, after

    assert anyio.run(main) == (200, 230)
    projections.close()


def test_reads_have_their_own_threads(tmp_path: Path) -> None:
    """A read is not queued behind bulk work holding anyio's default thread limiter."""
    log, projections = opened(tmp_path)
    release = threading.Event()

    async def main() -> float:
        projector = Projector(projections, log_dir=log.directory)
        reader = Reader(projections, projector, log)
        default = anyio.to_thread.current_default_thread_limiter()
        async with anyio.create_task_group() as tg:
            await tg.start(projector.run)
            for _ in range(int(default.total_tokens)):
                tg.start_soon(anyio.to_thread.run_sync, release.wait, HELD)
            await anyio.wait_all_tasks_blocked()
            try:
                _, seconds = await timed_read(reader)
            finally:
                release.set()
            tg.cancel_scope.cancel()
        return seconds

    seconds = anyio.run(main)
    projections.close()
    assert seconds < PATIENCE, f"the read waited {seconds:.1f} s for a thread"


def test_a_read_still_sees_every_write_acknowledged_before_it(tmp_path: Path) -> None:
    """Read-your-writes holds on the read lane: a read started while acknowledged records are
    not yet applied waits for them, then sees them."""
    log, projections = opened(tmp_path)

    async def main() -> int:
        projector = Projector(projections, log_dir=log.directory)
        reader = Reader(projections, projector, log)
        answer: list[int] = []
        async with anyio.create_task_group() as tg:
            await tg.start(projector.run)
            records = log.append(batch(log.last_seq + 1, 10))  # acknowledged, not applied

            async def read() -> None:
                answer.append(await reader.read(count))

            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            assert not answer
            await projector.push(records)
            await projector.wait_for(records[-1].seq)
            while not answer:
                await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        return answer[0]

    assert anyio.run(main) == 210
    projections.close()


def test_vector_searches_run_safely_beside_applies(tmp_path: Path) -> None:
    """Searches from read threads, without the projections' lock, meet applies that add and
    remove vectors: every hit is a stored memory with its own vector's cosine (no torn row),
    and no search fails."""
    log, projections = opened(tmp_path, 100)
    done = threading.Event()
    errors: list[BaseException] = []
    query = np.random.default_rng(0).standard_normal(8).astype(np.float32)

    def cosine(key: int) -> float:
        vector = held(np.frombuffer(embedded(key).vector, dtype="<f4").reshape(1, -1))[0]
        return float(vector @ query / np.linalg.norm(vector) / np.linalg.norm(query))

    def search() -> None:
        try:
            while not done.is_set():
                for key, score in projections.vectors.search(query, 20):
                    assert abs(score - cosine(key)) < 1e-4, (key, score)
                keys, rows = projections.vectors.vectors(list(range(1, 1000)))
                assert len(keys) == len(rows)
        except BaseException as exc:  # noqa: BLE001  reported below
            errors.append(exc)

    readers = [threading.Thread(target=search) for _ in range(3)]
    for thread in readers:
        thread.start()
    for _ in range(50):
        records = log.append(batch(log.last_seq + 1, 5))
        projections.apply(records)
        projections.apply(log.append([Forgotten(memory=records[0].seq, content_hash="",
                                                request=records[0].seq)]))
    done.set()
    for thread in readers:
        thread.join()
    projections.close()
    assert not errors, errors
