"""Both projections together: open (detecting damage), catch up from the log, rebuild."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from operator import attrgetter
from pathlib import Path

from memlane.events.log import read_log
from memlane.events.model import ForgetRequested, Forgotten, Record
from memlane.projections import memory_events, sqlite_store, vector_store
from memlane.projections.damage import DamageReport, integrity_problem, set_aside
from memlane.projections.flat_vectors import keys_path
from memlane.projections.postings import PostingsCache
from memlane.projections.read_pool import ReadPool
from memlane.projections.sqlite_store import ProjectionDamaged, SqliteProjection
from memlane.projections.vector_store import VectorProjection

CATCH_UP_BATCH = 20000
Progress = Callable[[int, int], None]  # seqs replayed, seqs to replay
_FORGETS = frozenset({ForgetRequested, Forgotten})
_seq_of = attrgetter("seq")


class Projections:
    """The SQLite and vector projections of one log, applied together under one lock.

    Reads do not take the lock: they borrow a connection from :attr:`reads` (WAL readers,
    see :mod:`memlane.projections.read_pool`) and the vector projection guards itself. What
    replaces the SQLite file or must empty its WAL holds the readers off meanwhile. The vector
    files change only under :attr:`saving` (one save at a time, taken before :attr:`lock`),
    which a save holds to its end but the lock only while it starts.
    """

    def __init__(self, sqlite_path: Path, vectors_path: Path) -> None:
        self.sqlite_path, self.vectors_path = sqlite_path, vectors_path
        for path in (sqlite_path, vectors_path):
            sqlite_store.remove_files(_staging(path))
            vector_store.remove_files(_staging(path))
        self.lock = threading.Lock()
        self.saving = threading.Lock()
        self.reads = ReadPool(sqlite_path)
        self.postings = PostingsCache(self.reads)
        self.rebuilt: list[str] = []
        self.damage = DamageReport()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="memlane-sqlite-check") as pool:
            # SQLite's check lets the GIL go and the vectors' load does not: side by side, the
            # check takes a start no time when a second core is free
            checked = pool.submit(_open_checked, sqlite_path)
            vectors = VectorProjection(vectors_path)
            try:
                loaded: bool | str = vectors.load()
            except (TypeError, AttributeError) as exc:  # a sidecar that is JSON but not the object
                loaded = f"{vectors.meta_path}: {exc}"
            self.sqlite = self._keep_sqlite(checked.result())
        self.vectors = self._keep_vectors(vectors, loaded)

    def _keep_sqlite(self, opened: SqliteProjection | str) -> SqliteProjection:
        """The opened SQLite projection; one that failed to open or its integrity check (the
        reason given instead) is set aside and started afresh (the catch-up replays it)."""
        if isinstance(opened, SqliteProjection):
            return opened
        self.rebuilt.append("sqlite")
        set_aside(_sqlite_files(self.sqlite_path), self.damage, opened)
        return SqliteProjection(self.sqlite_path)

    def _keep_vectors(self, vectors: VectorProjection, loaded: bool | str) -> VectorProjection:
        """The loaded index; a missing, stale or damaged one (index or sidecar of any shape,
        the reason given instead) starts empty and is replayed."""
        if loaded is True:
            return vectors
        if isinstance(loaded, str):
            set_aside(_vector_files(self.vectors_path), self.damage, loaded)
            self.rebuilt.append("vectors")
        if any(path.exists() for path in _vector_files(self.vectors_path)):
            self.rebuilt.append("vectors")
            vector_store.remove_files(self.vectors_path)
        return VectorProjection(self.vectors_path)

    @property
    def applied_seq(self) -> int:
        return min(self.sqlite.applied_seq, self.vectors.applied_seq)

    def catch_up(self, log_dir: Path, last_seq: int, progress: Progress | None = None) -> int:
        """Apply every record after each projection's position up to ``last_seq``; returns count.
        ``progress(seqs done, seqs to do)`` after each batch. A database folded before the
        per-memory index existed is indexed first. A flat matrix stays flat until the end (or
        :data:`~memlane.projections.vector_store.DEFERRED_UP_TO` vectors), then becomes a graph
        at once (none grown batch by batch past the flat threshold); a failed catch-up builds
        none on its way out."""
        if self.sqlite.applied_seq > last_seq:
            self._reset_sqlite()
        if self.vectors.applied_seq > last_seq:
            self._reset_vectors()
        if through := memory_events.unindexed_through(self.sqlite.conn):
            memory_events.index_earlier(self.sqlite.conn, read_log(log_dir, 1, upto=through))
        first = self.applied_seq
        if first >= last_seq:
            return 0
        records = read_log(log_dir, first + 1, upto=last_seq)
        self.vectors.deferred = True  # a graph, if one is due, is built once at the end
        try:
            count = self._replay(records, first, last_seq, progress)
        except BaseException:
            self.vectors.deferred = False  # no graph built on the way out: the next add settles
            raise
        with self.lock:
            self.vectors.settle()
        return count

    def _replay(self, records: Iterator[Record], first: int, last_seq: int,
                progress: Progress | None) -> int:
        """Apply ``records`` in batches. A catch-up runs alone (at start, at stop, into a
        rebuild's new files), so the projections go side by side: a batch's SQLite statements
        commit in a thread while this one applies its vectors and reads and folds the next
        (bound as JSON, they let the GIL go: :mod:`memlane.projections.bulk_sql`)."""
        count, forgets, sqlite_from = 0, False, self.sqlite.applied_seq
        committing: Future[None] | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="memlane-replay") as commits:
            try:
                while batch := list(islice(records, CATCH_UP_BATCH)):
                    fresh = _after(batch, sqlite_from)
                    prepared = sqlite_store.prepare(fresh) if fresh else None
                    if committing is not None:
                        committing.result()
                    if prepared is not None:
                        committing = commits.submit(self.sqlite.commit, prepared)
                    with self.lock:
                        self.vectors.apply(_after(batch, self.vectors.applied_seq))
                    forgets = forgets or _names_a_forget(batch)
                    count += len(batch)
                    if progress is not None:
                        progress(batch[-1].seq - first, last_seq - first)
            except BaseException:
                if committing is not None:
                    committing.exception()  # waits: the failure met first is the one raised
                raise
            if committing is not None:
                committing.result()
        if forgets:
            self.postings.drop()
        return count

    def apply(self, records: Sequence[Record]) -> None:
        """Apply committed records; each projection skips what it already has."""
        with self.lock:
            self.sqlite.apply(_after(records, self.sqlite.applied_seq))
            self.vectors.apply(_after(records, self.vectors.applied_seq))
        if _names_a_forget(records):
            self.postings.drop()  # a forgotten memory's words leave memory too

    def save_vectors(self, then: Callable[[], None] | None = None) -> None:
        """Save the vectors if they changed (applies go on while a graph's file is written).
        ``then`` runs on the files as saved, before any apply changes them: under the lock for
        a flat matrix (every apply writes into its files), after the save for a graph (its
        files change only when saved, which :attr:`saving` holds off)."""
        with self.saving:
            with self.lock:
                finish = self.vectors.begin_save() if self.vectors.dirty else None
                if then is not None and self.vectors.mode == "flat":
                    then()
                    return
            if finish is not None:
                finish()
            if then is not None:
                then()

    def scrub_sqlite(self) -> None:
        """Purge forgotten text from the database files (call under :attr:`lock`; idempotent):
        merge the full-text index (dropping deleted entries), rewrite the database without
        free pages and empty the WAL (secure_delete zeroes what is deleted)."""
        conn = self.sqlite.conn
        conn.execute("INSERT INTO memories_fts (memories_fts) VALUES ('optimize')")
        conn.execute("VACUUM")
        with self.reads.exclusive():  # a reader's snapshot would keep frames in the WAL
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise sqlite3.OperationalError("the WAL could not be emptied: a reader holds it")

    def scrub_vectors(self) -> None:
        """Overwrite removed vectors in the index and save it (call without :attr:`lock`)."""
        with self.saving:
            with self.lock:
                self.vectors.compact()
                finish = self.vectors.begin_save()
            finish()

    def rebuild(self, log_dir: Path, last_seq: int, *, damaged: str | None = None,
                progress: Progress | None = None) -> int:
        """Replay the log up to ``last_seq`` into new files, then swap them in.

        Commits may go on being applied meanwhile: under the lock, before the swap, the new
        files catch up to whatever the live ones hold, so the swap loses none of them. Readers
        keep the old projections until then; a crash mid-rebuild leaves only a temporary file,
        removed at the next start. ``damaged`` (a reason) sets the old SQLite file aside
        instead of deleting it.
        """
        staging = Projections(_staging(self.sqlite_path), _staging(self.vectors_path))
        staging.sqlite.bulk_mode()
        count = staging.catch_up(log_dir, last_seq, progress)
        with self.saving, self.lock:
            held = max(self.sqlite.applied_seq, self.vectors.applied_seq, last_seq)
            if held > staging.applied_seq:  # reading from a seq scans its segment from the top
                count += staging.catch_up(log_dir, held)
            staging.sqlite.close()
            with self.reads.exclusive():  # no reader is left on the old file
                self.sqlite.close()
                if damaged is None:
                    sqlite_store.remove_files(self.sqlite_path)
                else:
                    set_aside(_sqlite_files(self.sqlite_path), self.damage, damaged)
                os.replace(staging.sqlite_path, self.sqlite_path)
                self.sqlite = SqliteProjection(self.sqlite_path)
                self.postings.drop()
            self.vectors = staging.vectors
            self.vectors.move_to(self.vectors_path)
            self.vectors.save()
        return count

    def repair(self, log_dir: Path, last_seq: int, reason: str) -> int:
        """Set a SQLite file found damaged at run time aside and rebuild it from the log."""
        return self.rebuild(log_dir, last_seq, damaged=reason)

    def _reset_sqlite(self) -> None:
        with self.reads.exclusive():
            self.sqlite.close()
            sqlite_store.remove_files(self.sqlite_path)
            self.sqlite = SqliteProjection(self.sqlite_path)
            self.postings.drop()

    def _reset_vectors(self) -> None:
        vector_store.remove_files(self.vectors_path)
        self.vectors = VectorProjection(self.vectors_path)

    def close(self) -> None:
        self.save_vectors()
        self.reads.close()
        self.sqlite.close()



def _open_checked(path: Path) -> SqliteProjection | str:
    """The SQLite projection if it opens and passes its integrity check, else what is wrong."""
    try:
        projection = SqliteProjection(path)
    except ProjectionDamaged as exc:
        return str(exc)
    if (problem := integrity_problem(projection.conn)) is None:
        return projection
    projection.close()
    return f"{path}: {problem}"


def _after(records: Sequence[Record], seq: int) -> Sequence[Record]:
    """The records past ``seq`` (records come in log order: a search, not a scan)."""
    return records[bisect_right(records, seq, key=_seq_of):]


def _names_a_forget(records: Sequence[Record]) -> bool:
    return not _FORGETS.isdisjoint(type(r.event) for r in records)


def _sqlite_files(path: Path) -> list[Path]:
    return [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm")]


def _vector_files(path: Path) -> list[Path]:
    return [path, keys_path(path), path.with_name(path.name + ".json")]


def _staging(path: Path) -> Path:
    return path.with_name(path.name + ".rebuild")


def committed_seq(sqlite_path: Path, vectors_path: Path) -> int:
    """The newest seq either projection has committed, read without opening them for writing
    (0 when neither can tell): the log must hold at least this much, or ids would be reused."""
    seqs = [0]
    try:
        conn = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
        try:
            seqs.append(int(conn.execute(
                "SELECT value FROM meta WHERE key = 'applied_seq'").fetchone()[0]))
        finally:
            conn.close()
    except (sqlite3.Error, TypeError, ValueError):
        pass
    try:
        meta = json.loads(vectors_path.with_name(vectors_path.name + ".json").read_text())
        seqs.append(int(meta["applied_seq"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return max(seqs)
