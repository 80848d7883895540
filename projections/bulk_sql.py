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
    """One statement of a batch and what it binds: a JSON array of the rows as text (one
    execute: a BLOB would be read as JSONB by SQLite 3.45.0), or the rows (``executemany``)."""

    sql: str
    params: str | list[Row]


def bind(sql: str, rows: list[Row], *, distinct_ids: bool = False) -> list[Bound]:
    """``rows`` bound for ``sql`` as one statement or, in order, several;
    ``distinct_ids``: each row names another row by id."""
    form = json_form(sql, distinct_ids=distinct_ids) if JSON_ROWS else None
    if form is None or not _json_exact(rows):
        return [Bound(sql, rows)]
    payload = _encode(rows)
    if b"\\u0000" in payload:
        return [Bound(sql, rows)]
    if len(payload) <= MAX_JSON_BYTES or len(rows) == 1:
        return [Bound(form, payload.decode())]
    half = len(rows) // 2
    return (bind(sql, rows[:half], distinct_ids=distinct_ids)
            + bind(sql, rows[half:], distinct_ids=distinct_ids))


def run(conn: sqlite3.Connection, bound: Bound) -> None:
    if isinstance(bound.params, str):
        conn.execute(bound.sql, (bound.params,))
    else:
        conn.executemany(bound.sql, bound.params)


@cache
def json_form(sql: str, *, distinct_ids: bool) -> str | None:
    """The statement that runs ``sql`` over a JSON array of its rows, if it has one."""
    if insert := _INSERT.match(sql):
        values = ", ".join(f"json_extract(value, '$[{i}]')"
                           for i in range(insert.group(2).count("?")))
        return f"{insert.group(1)} SELECT {values} FROM json_each(?) ORDER BY key"
    if (update := _BY_ID.match(sql)) and distinct_ids:
        table, assignments, rest = update.groups()
        parts = assignments.split("?")
        columns = "".join(f"{part}json_extract(row.value, '$[{i}]')"
                          for i, part in enumerate(parts[:-1])) + parts[-1]
        return (f"UPDATE {table} SET {columns} FROM json_each(?) AS row"
                f" WHERE {table}.id = json_extract(row.value, '$[{len(parts) - 1}]'){rest}")
    return None


def _json_exact(rows: list[Row]) -> bool:
    """Whether JSON carries every float of ``rows`` (the fold's float columns hold a float in
    every row, so the first row tells where they are)."""
    floats = [i for i, value in enumerate(rows[0]) if type(value) is float]
    return not floats or all(math.isfinite(row[i]) for row in rows for i in floats)  # type: ignore[arg-type]
