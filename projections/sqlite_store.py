"""The SQLite projection: rows folded from the log, with the last applied seq in the same
transaction, so a crash leaves it at some whole prefix of the log."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from memlane.events.model import Record
from memlane.projections.damage import is_storage_error
from memlane.projections import bulk_sql
from memlane.projections.batching import Plan
from memlane.projections.bulk_sql import Bound
from memlane.projections.schema import migrate


class ProjectionDamaged(Exception):
    """The projection file cannot be used; it is rebuilt from the log."""

    code = "projection_damaged"


def connect(path: Path, *, readonly: bool = False,
            factory: type[sqlite3.Connection] = sqlite3.Connection) -> sqlite3.Connection:
    """A connection with the pragmas every projection connection uses."""
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None,
                           factory=factory)
    conn.execute("PRAGMA busy_timeout = 5000")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA secure_delete = ON")
    return conn


BULK_CACHE_KIB = 256 * 1024


class SqliteProjection:
    """Writer side of the SQLite projection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self.conn = connect(path)
            migrate(self.conn)
            self.applied_seq = int(self.conn.execute(
                "SELECT value FROM meta WHERE key = 'applied_seq'").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise_if_disk_refused(exc)
            raise ProjectionDamaged(f"{path}: {exc}") from exc

    def apply(self, records: Sequence[Record]) -> None:
        """Apply records that continue from :attr:`applied_seq`, in one transaction."""
        if records:
            self.commit(prepare(records))

    def commit(self, batch: PreparedBatch) -> None:
        """Run a prepared batch and record its last seq, in one transaction. Seqs rise
        strictly; a compacted log has gaps (the log checks where they may be)."""
        if batch.first_seq <= self.applied_seq:
            raise ProjectionDamaged(
                f"record {batch.first_seq} does not follow applied seq {self.applied_seq}")
        conn = self.conn
        conn.execute("BEGIN")
        try:
            for bound in batch.statements:
                bulk_sql.run(conn, bound)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'applied_seq'", (batch.last_seq,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.applied_seq = batch.last_seq

    def bulk_mode(self) -> None:
        """Trade crash safety for speed while replaying into a new file (a crash means the
        file is rebuilt again, as it is disposable)."""
        self.conn.execute("PRAGMA journal_mode = OFF")
        self.conn.execute("PRAGMA synchronous = OFF")
        # pages as needed up to 256 MiB (the default 2 MiB cache re-reads the B-trees it
        # writes: a replay of 100k memories, an 86 MB file, ran ~8% slower), freed on close
        self.conn.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")

    def close(self) -> None:
        self.conn.close()


class PreparedBatch(NamedTuple):
    """Statements for a run of records, bound and ready to execute, in a safe order."""

    first_seq: int
    last_seq: int
    statements: list[Bound]


def prepare(records: Sequence[Record]) -> PreparedBatch:
    """Fold records into statements, grouped and bound (pure; any thread; see
    :mod:`memlane.projections.batching` for why the grouping keeps what the ops do)."""
    plan = Plan()
    for record in records:
        plan.add_record(record)
    return PreparedBatch(records[0].seq, records[-1].seq, plan.statements())


def raise_if_disk_refused(exc: sqlite3.DatabaseError) -> None:
    """Re-raise an error of the disk under the file (full, read-only, I/O, cannot open): the
    file is not damaged, and setting it aside would not help."""
    if is_storage_error(exc):
        raise exc


def remove_files(path: Path) -> None:
    """Delete a projection database with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
