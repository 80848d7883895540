"""Rows bound as one JSON array leave what executemany leaves, or go through executemany."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest

from memlane.projections import bulk_sql
from memlane.projections.bulk_sql import bind, run

TABLE = "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL NOT NULL, n INTEGER)"
INSERT = "INSERT OR REPLACE INTO t (id, name, score, n) VALUES (?, ?, ?, ?)"
UPDATE = "UPDATE t SET name = ?, n = n + ? WHERE id = ? AND score > 0"


def table(*statements: tuple[str, list[tuple[object, ...]]], json: bool) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(":memory:")
    conn.execute(TABLE)
    for sql, rows in statements:
        if json:
            for bound in bind(sql, rows, distinct_ids=True):
                run(conn, bound)
        else:
            conn.executemany(sql, rows)
    return conn.execute("SELECT id, name, typeof(name), score, n, typeof(n) FROM t").fetchall()


ROWS = [(1, "plain", 0.1 + 0.2, 2**62), (2, None, -1.5e-300, None), (3, "é 😀 \u2028 \"q\"", 7.0, 0),
        (1, "replaced later in the array", 5e-324, -3), (4, "7", 1e308, 1)]


def test_plain_rows_go_as_json_and_give_the_same_rows() -> None:
    """Inserts (a later row replacing an earlier one) and updates by id, bound as JSON."""
    updates = [("renamed", 5, 3), ("also", 1, 1), ("nobody", 1, 99)]
    # as text: SQLite 3.45.0 reads a BLOB given to a JSON function as JSONB
    assert [type(b.params[0]) for b in bind(INSERT, ROWS)] == [str]
    assert [type(b.params[0]) for b in bind(UPDATE, updates, distinct_ids=True)] == [str]
    expected = table((INSERT, ROWS), (UPDATE, updates), json=False)
    assert table((INSERT, ROWS), (UPDATE, updates), json=True) == expected


@pytest.mark.parametrize("row", [(9, "a\x00b", 1.0, 1), (9, "x", math.inf, 1),
                                 (9, "x", -math.inf, 1)], ids=["NUL", "inf", "-inf"])
def test_what_json_would_change_goes_through_executemany(row: tuple[object, ...]) -> None:
    """A NUL inside a string (SQLite's JSON cuts it) or a non-finite float (JSON writes null)."""
    rows = [*ROWS, row]
    assert bind(INSERT, rows) == [(INSERT, rows)]
    assert table((INSERT, rows), json=True) == table((INSERT, rows), json=False)


def test_updates_that_may_name_one_row_twice_are_not_formed() -> None:
    """Two rows for one target would update it once as JSON: without distinct ids, no JSON."""
    twice = [("first", 1, 1), ("second", 1, 1)]
    assert bind(UPDATE, twice) == [(UPDATE, twice)]
    assert table((INSERT, ROWS), (UPDATE, twice), json=False)[0][1] == "second"


def test_an_sqlite_without_json_rows_runs_each_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before SQLite 3.33 (no UPDATE ... FROM) or without its JSON functions: executemany."""
    monkeypatch.setattr(bulk_sql, "JSON_ROWS", False)
    assert bind(INSERT, ROWS) == [(INSERT, ROWS)]
    assert table((INSERT, ROWS), json=True) == table((INSERT, ROWS), json=False)


def test_a_run_of_rows_past_the_size_of_one_value_is_bound_in_parts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite refuses one value past 1 GB; a long run of long texts is bound in parts, in
    order (a later row still replaces an earlier one)."""
    monkeypatch.setattr(bulk_sql, "MAX_JSON_BYTES", 100)
    bound = bind(INSERT, ROWS)
    assert len(bound) > 1 and all(len(b.params[0]) <= 100 or len(json.loads(b.params[0])) == 1
                                  for b in bound)
    assert table((INSERT, ROWS), json=True) == table((INSERT, ROWS), json=False)


def test_a_column_every_row_shares_is_bound_once_outside_the_json() -> None:
    """Bound as itself, it is exact even where JSON would not be (NUL, inf); equal values of
    different types (1, 1.0, True: stored apart where a column has no type) are not shared."""
    insert = "INSERT INTO u (id, a, b, c) VALUES (?, ?, ?, ?)"
    rows: list[tuple[object, ...]] = [(1, "x\x00y", math.inf, 1), (2, "x\x00y", math.inf, 1.0),
                                      (3, "x\x00y", math.inf, True)]
    [bound] = bind(insert, rows)
    assert json.loads(bound.params[0]) == [[1, 1], [2, 1.0], [3, True]]
    assert bound.params[1:] == ("x\x00y", math.inf)
    stored = []
    for statements in ([bound], [bulk_sql.Bound(insert, rows)]):
        conn = sqlite3.connect(":memory:")
        conn.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, a, b, c)")
        for each in statements:
            run(conn, each)
        stored.append(conn.execute("SELECT id, a, b, c, typeof(c) FROM u").fetchall())
    assert stored[0] == stored[1]
    assert [row[-1] for row in stored[0]] == ["integer", "real", "integer"]
