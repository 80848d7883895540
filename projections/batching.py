"""Grouping a batch's SQLite ops into few statements without changing what they do.

No statement of the fold reads a table other than the one it writes, so ops on different tables
commute, and every op on the ``memories`` table reads and writes one row, named by its id, so
ops on different memories commute too. A plan therefore keeps log order only where it matters:

- the per-memory index only gains rows that are a set (``INSERT OR IGNORE``): one call a batch;
- each other table but ``memories`` keeps its ops in log order, and a run of equal statements
  is one call (the links take one call a batch);
- each memory keeps its own ops in log order: its n-th op goes to level n, and a level holds
  one op per memory at most, so the ops of a level commute and equal statements are one call.
- an op that sets a column of the row its memory's previous op inserted or set alike is folded
  into that op's row (:data:`_FOLDED`): a refresh after a refresh keeps the later seq, and a
  memory stored, embedded and linked in one batch is one insert instead of an insert and
  two updates (each update rewrites the whole row, text and all).

Without the levels, a batch of links and recalls interleaves its updates so that each run of
equal statements holds ~9 rows: a replay made ~12k calls per 100k events, ~70 with them. Each
statement is then bound to its rows (:mod:`memlane.projections.bulk_sql`).
"""

from __future__ import annotations

import re
from functools import cache
from itertools import groupby
from operator import itemgetter

from memlane.events.model import Linked, Record
from memlane.projections import memory_events
from memlane.projections.bulk_sql import Bound, Row, bind
from memlane.projections.fold import (EMBED, INSERT_LINK, INSERT_MEMORY, INSERTED_COLUMNS, REFRESH,
                                      Op, event_ops, link_ops)

_TABLE = re.compile(r"^(?:INSERT(?: OR \w+)? INTO|UPDATE|DELETE FROM)\s+(\w+)")
_BY_ID = re.compile(r"\bWHERE id = \?[^?]*$")  # the id is the statement's last parameter

# (a memory's previous op, its next op): (where in the previous op's row, what in the next's).
# The insert leaves ``reprieves`` at 0, as a refresh sets it.
_FOLDED: dict[tuple[str, str], tuple[int, int]] = {
    (REFRESH, REFRESH): (0, 0),
    (INSERT_MEMORY, REFRESH): (INSERTED_COLUMNS.index("refreshed_seq"), 0),
    (INSERT_MEMORY, EMBED): (INSERTED_COLUMNS.index("embedded_by"), 0),
}


class Plan:
    """The statements of one batch, fed its records in log order (pure; any thread)."""

    def __init__(self) -> None:
        self._tables: dict[str, list[Op]] = {}
        self._levels: list[dict[str, list[Row]]] = []
        self._last: dict[object, tuple[int, str, int]] = {}  # memory: (level, sql, row index)
        self._indexed: list[Row] = []  # per-memory index rows: a set, any order
        self._links = self._tables.setdefault(_route(INSERT_LINK)[0], [])

    def add_record(self, record: Record) -> None:
        event = record.event
        if type(event) is Linked:  # most of a log: its ops go straight where add would put them
            self._add_link(event, record.seq)
        else:
            for op in event_ops(record):
                self.add(op)
        self._indexed += memory_events.rows_of(record)

    def _add_link(self, event: Linked, seq: int) -> None:
        link, (_, refresh_a), (_, refresh_b) = link_ops(event, seq)
        self._links.append(link)
        self._add_memory_op(REFRESH, refresh_a, refresh_a[1])
        self._add_memory_op(REFRESH, refresh_b, refresh_b[1])

    def add(self, op: Op) -> None:
        sql, params = op
        table, id_at = _route(sql)
        if id_at is None:
            self._tables.setdefault(table, []).append(op)
        else:
            self._add_memory_op(sql, params, params[id_at])

    def _add_memory_op(self, sql: str, params: Row, memory: object) -> None:
        last = self._last.get(memory)
        if last is not None and (folded := _FOLDED.get((last[1], sql))) is not None:
            rows = self._levels[last[0]][last[1]]
            row = list(rows[last[2]])
            row[folded[0]] = params[folded[1]]
            rows[last[2]] = tuple(row)
            return
        level = 0 if last is None else last[0] + 1
        if level == len(self._levels):
            self._levels.append({})
        rows = self._levels[level].setdefault(sql, [])
        self._last[memory] = (level, sql, len(rows))
        rows.append(params)

    def statements(self) -> list[Bound]:
        """The statements bound to their rows, in an order that gives the rows log order
        would."""
        found = [bound for ops in self._tables.values()
                 for sql, run in groupby(ops, key=itemgetter(0))
                 for bound in bind(sql, [params for _, params in run])]
        found += [bound for level in self._levels for sql, rows in level.items()
                  for bound in bind(sql, sorted(rows, key=_ids_of(sql)), distinct_ids=True)]
        if self._indexed:
            found += bind(memory_events.INSERT, sorted(self._indexed))
        return found


@cache
def _route(sql: str) -> tuple[str, int | None]:
    """The table a statement writes and, on ``memories``, where its row id sits among its
    parameters; a statement there that does not name one row by id would make the levels
    unsafe, so it is refused."""
    match = _TABLE.match(sql)
    if match is None:
        raise ValueError(f"cannot tell which table this statement writes: {sql}")
    table = match.group(1)
    if table != "memories":
        return table, None
    if sql == INSERT_MEMORY:
        return table, 0
    if _BY_ID.search(sql) is None:
        raise ValueError(f"a statement on memories must name one row by id, last: {sql}")
    return table, -1


@cache
def _ids_of(sql: str) -> itemgetter[object]:
    return itemgetter(_route(sql)[1])
