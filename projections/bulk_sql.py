"""A run of rows for one statement bound as one JSON array: SQLite then runs the whole run in
one step, with Python's GIL let go, so a replay folds its next batch meanwhile.

``executemany`` takes the GIL back for every row, and a thread that wants it back waits for
the one that holds it: a commit in a thread beside the fold ran no faster than both in turn.
Bound as JSON, ``INSERT … SELECT … FROM json_each(?)`` and ``UPDATE … FROM json_each(?)`` give
the rows ``executemany`` would (a property test holds it), because:

- rows are inserted in array order (``ORDER BY key``);
- an ``UPDATE … FROM`` is only formed for rows that name distinct rows by id (the levels of
  :mod:`memlane.projections.batching`): with two json rows for one target it would apply one;
- JSON gives back every finite float, integer and string exactly, except a string holding NUL,
  which SQLite cuts there, and a non-finite float, which JSON writes as ``null``: rows with
  either run through ``executemany``.

An SQLite without ``UPDATE … FROM`` (before 3.33) or its JSON functions (built in from 3.38, a
build option before) runs every statement through ``executemany``.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from functools import cache
from typing import NamedTuple

import msgspec

Row = tuple[object, ...]

_INSERT = re.compile(r"^(INSERT(?: OR \w+)? INTO \w+ \([^)]*\)) VALUES \(([?, ]+)\)$")
_BY_ID = re.compile(r"^UPDATE (\w+) SET (.*) WHERE id = \?([^?]*)$")
_encode = msgspec.json.Encoder().encode


def _json_rows_supported() -> bool:
    if sqlite3.sqlite_version_info < (3, 33, 0):
        return False
    with closing(sqlite3.connect(":memory:")) as conn:
        try:
            conn.execute("SELECT json_extract('[1]', '$[0]') FROM json_each('[1]')")
        except sqlite3.OperationalError:
            return False
    return True


JSON_ROWS = _json_rows_supported()


# One bound value at most (SQLite refuses one past 1 GB by default: a replay's batch of 20k
# long memories can come near); a run of rows over it is bound in parts.
MAX_JSON_BYTES = 64 * 2**20


class Bound(NamedTuple):
    """One statement of a batch and what it binds: one execute's parameters (the rows as a
    JSON array in text, as a BLOB would be read as JSONB by SQLite 3.45.0, then the values
    every row shares), or the rows (``executemany``)."""

    sql: str
    params: tuple[object, ...] | list[Row]


def bind(sql: str, rows: list[Row], *, distinct_ids: bool = False) -> list[Bound]:
    """``rows`` bound for ``sql`` as one statement or, in order, several;
    ``distinct_ids``: each row names another row by id. A column that holds one value in
    every row is bound once, outside the JSON (SQLite 3.40 parses a row's JSON again for
    each column it extracts: a replay's inserts ran twice as long with every column in it)."""
    if not JSON_ROWS or json_form(sql, distinct_ids=distinct_ids, shared=()) is None:
        return [Bound(sql, rows)]
    shared = _shared_columns(rows)
    kept = [i for i in range(len(rows[0])) if i not in shared]
    varying = [[row[i] for i in kept] for row in rows] if shared else rows
    if not _json_exact(varying):
        return [Bound(sql, rows)]
    payload = _encode(varying)
    if b"\\u0000" in payload:
        return [Bound(sql, rows)]
    if len(payload) <= MAX_JSON_BYTES or len(rows) == 1:
        form = json_form(sql, distinct_ids=distinct_ids, shared=shared)
        return [Bound(form, (payload.decode(), *[rows[0][i] for i in shared]))]  # type: ignore[arg-type]
    half = len(rows) // 2
    return (bind(sql, rows[:half], distinct_ids=distinct_ids)
            + bind(sql, rows[half:], distinct_ids=distinct_ids))


def run(conn: sqlite3.Connection, bound: Bound) -> None:
    if isinstance(bound.params, tuple):
        conn.execute(bound.sql, bound.params)
    else:
        conn.executemany(bound.sql, bound.params)


@cache
def json_form(sql: str, *, distinct_ids: bool, shared: tuple[int, ...]) -> str | None:
    """The statement that runs ``sql`` over a JSON array of its rows (``?1``), if it has one;
    the parameters at the positions ``shared`` are bound after it (``?2`` on), once."""
    if insert := _INSERT.match(sql):
        values = ", ".join(_value(i, "value", shared)
                           for i in range(insert.group(2).count("?")))
        return f"{insert.group(1)} SELECT {values} FROM json_each(?1) ORDER BY key"
    if (update := _BY_ID.match(sql)) and distinct_ids:
        table, assignments, rest = update.groups()
        parts = assignments.split("?")
        columns = "".join(f"{part}{_value(i, 'row.value', shared)}"
                          for i, part in enumerate(parts[:-1])) + parts[-1]
        return (f"UPDATE {table} SET {columns} FROM json_each(?1) AS row"
                f" WHERE {table}.id = {_value(len(parts) - 1, 'row.value', shared)}{rest}")
    return None


def _value(position: int, row: str, shared: tuple[int, ...]) -> str:
    """Parameter ``position`` of a row: a bound parameter if shared, else its JSON element."""
    if position in shared:
        return f"?{2 + shared.index(position)}"
    return f"json_extract({row}, '$[{position - sum(i < position for i in shared)}]')"


def _shared_columns(rows: list[Row]) -> tuple[int, ...]:
    """The positions where the rows (two or more) hold one value of one type."""
    if len(rows) < 2:
        return ()
    return tuple(i for i, value in enumerate(rows[0])
                 if all(row[i] == value and type(row[i]) is type(value) for row in rows))


def _json_exact(rows: Sequence[Sequence[object]]) -> bool:
    """Whether JSON carries every float of ``rows`` (the fold's float columns hold a float in
    every row, so the first row tells where they are)."""
    floats = [i for i, value in enumerate(rows[0]) if type(value) is float]
    return not floats or all(math.isfinite(row[i]) for row in rows for i in floats)  # type: ignore[arg-type]
