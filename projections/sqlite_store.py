"""The SQLite projection: rows folded from the log, with the last applied seq in the same
transaction, so a crash leaves it at some whole prefix of the log."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from itertools import groupby
from pathlib import Path

from memlane.events.model import Record
from memlane.projections.fold import ops_for
from memlane.projections.schema import migrate


class ProjectionDamaged(Exception):
    """The projection file cannot be used; it is rebuilt from the log."""

    code = "projection_damaged"


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the pragmas every projection connection uses."""
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA secure_delete = ON")
    return conn


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
            raise ProjectionDamaged(f"{path}: {exc}") from exc

    def apply(self, records: Sequence[Record]) -> None:
        """Apply records that continue from :attr:`applied_seq`, in one transaction."""
        if not records:
            return
        if records[0].seq != self.applied_seq + 1:
            raise ProjectionDamaged(
                f"record {records[0].seq} does not follow applied seq {self.applied_seq}")
        conn = self.conn
        conn.execute("BEGIN")
        try:
            for sql, group in groupby(_ops(records), key=lambda op: op[0]):
                conn.executemany(sql, [params for _, params in group])
            conn.execute("UPDATE meta SET value = ? WHERE key = 'applied_seq'", (records[-1].seq,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.applied_seq = records[-1].seq

    def close(self) -> None:
        self.conn.close()


def _ops(records: Iterable[Record]) -> Iterable[tuple[str, tuple[object, ...]]]:
    for record in records:
        yield from ops_for(record)


def remove_files(path: Path) -> None:
    """Delete a projection database with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
