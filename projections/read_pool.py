"""Read connections to the SQLite projection (WAL readers), apart from the projector's.

In WAL mode a reader sees the last committed state while the projector writes, so reads
need neither the projections' lock nor the writer's connection. Two rules keep these
readers from getting in the way of what rewrites the file:

- A read runs in one read transaction (one snapshot for all its statements) that ends when
  it returns: its cursors are closed (an unfinished one keeps its snapshot even after
  ROLLBACK) and the transaction rolled back. No connection keeps a snapshot between reads,
  so an idle pool never pins WAL frames that forget needs truncated.
- :meth:`ReadPool.exclusive` waits for the reads in flight, closes every connection and holds
  new reads off until it is left: forget's TRUNCATE checkpoint runs with no reader in the
  WAL, and a rebuild swaps the file with no connection left on the old one (reads opened
  after it see the new file).
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from memlane.projections.sqlite_store import connect

IDLE = 8  # connections kept open between reads; more are opened while reads overlap


class ReadConnection(sqlite3.Connection):
    """A connection that remembers the cursors it made, so that they can all be closed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cursors: weakref.WeakSet[sqlite3.Cursor] = weakref.WeakSet()

    def cursor(self, factory: Any = sqlite3.Cursor) -> Any:
        cursor = super().cursor(factory)
        self._cursors.add(cursor)
        return cursor

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)  # type: ignore[no-any-return]

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        return self.cursor().executemany(sql, parameters)  # type: ignore[no-any-return]

    def close_cursors(self) -> None:
        """Close every cursor still open (a cursor kept past its read fails loudly)."""
        for cursor in list(self._cursors):
            cursor.close()


class ReadPool:
    """Read-only connections to one SQLite file, reused between reads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._changed = threading.Condition()
        self._idle: list[ReadConnection] = []
        self._busy = 0  # connections lent out
        self._held = 0  # exclusive sections waiting or running

    @contextmanager
    def connection(self) -> Iterator[ReadConnection]:
        """A connection inside a read transaction, for one read; a read that fails gives its
        connection up (it may have met a damaged or swapped file)."""
        conn = self._borrow()
        failed = True
        try:
            conn.execute("BEGIN")
            yield conn
            failed = False
        finally:
            self._give_back(conn, failed=failed)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """No read in flight or open until this is left (call it from a worker thread, never
        from inside a read: it would wait for itself)."""
        with self._changed:
            self._held += 1
            while self._busy:
                self._changed.wait()
            idle, self._idle = self._idle, []
        try:
            for conn in idle:
                conn.close()
            yield
        finally:
            with self._changed:
                self._held -= 1
                self._changed.notify_all()

    def close(self) -> None:
        """Close the idle connections (reads still open close theirs when they end)."""
        with self._changed:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _borrow(self) -> ReadConnection:
        with self._changed:
            while self._held:
                self._changed.wait()
            self._busy += 1
            if self._idle:
                return self._idle.pop()
        try:
            opened = connect(self.path, readonly=True, factory=ReadConnection)
        except BaseException:
            self._done()
            raise
        assert isinstance(opened, ReadConnection)
        return opened

    def _give_back(self, conn: ReadConnection, *, failed: bool) -> None:
        try:
            conn.close_cursors()
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            failed = True
        with self._changed:
            keep = not failed and not self._held and len(self._idle) < IDLE
            if keep:
                self._idle.append(conn)
        if not keep:
            conn.close()
        self._done()

    def _done(self) -> None:
        with self._changed:
            self._busy -= 1
            self._changed.notify_all()
