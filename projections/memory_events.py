"""The per-memory index of the log: which seqs hold an event naming each memory, so a
memory's history decodes those records only instead of scanning the log.

It holds ids and seqs only (forget leaves nothing to purge here). Filled by the fold like every
table; a database that predates it is indexed once from the log at start
(:func:`index_earlier`). Compaction may drop a seq it points at (a ``Recalled`` folded into a
``Tallied``): readers skip such a seq and look for the tally standing in for it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from memlane.events.mentions import referenced
from memlane.events.model import Record

INSERT = "INSERT OR IGNORE INTO memory_events (memory, seq) VALUES (?, ?)"
PENDING = "memory_events_through"  # meta key: seqs up to here were folded before the index


def rows_of(record: Record) -> list[tuple[int, int]]:
    """A memory named twice gives a row twice: the index ignores the second."""
    seq = record.seq
    return [(memory, seq) for memory in referenced(record.event)]


def seqs_of(conn: sqlite3.Connection, memory: int) -> list[int]:
    """The seqs of the events that named ``memory``, in log order."""
    return [seq for (seq,) in conn.execute(
        "SELECT seq FROM memory_events WHERE memory = ? ORDER BY seq", (memory,))]


def newest_seqs_of(conn: sqlite3.Connection, memory: int, limit: int) -> list[int]:
    """The seqs of the newest ``limit`` events that named ``memory``, newest first."""
    return [seq for (seq,) in conn.execute(
        "SELECT seq FROM memory_events WHERE memory = ? ORDER BY seq DESC LIMIT ?",
        (memory, limit))]


def unindexed_through(conn: sqlite3.Connection) -> int:
    """The last seq folded before the index existed (0: nothing to index)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (PENDING,)).fetchone()
    return 0 if row is None else int(row[0])


def index_earlier(conn: sqlite3.Connection, records: Iterable[Record]) -> None:
    """Index the records folded before the index existed, in one transaction."""
    conn.execute("BEGIN")
    try:
        conn.executemany(INSERT, (row for record in records for row in rows_of(record)))
        conn.execute("DELETE FROM meta WHERE key = ?", (PENDING,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
