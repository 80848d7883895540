"""Bounding a BM25 query to its rarest words: what it keeps, and that it still finds them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from memlane.projections import queries
from memlane.projections.sqlite_store import connect
from memlane.projections.catchup import Projections


def fill(tmp_path: Path) -> Path:
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "v.vectors")
    conn = projections.sqlite.conn
    conn.execute("BEGIN")
    for i in range(1, 201):
        text = "the build cache is running" + (" postgres" if i % 10 == 0 else "") + \
            (" PAY-4758 refunds" if i == 77 else "")
        conn.execute("INSERT INTO memories (id, project, kind, source, text, tags, content_hash,"
                     " state, proven, created_at, updated_at, refreshed_seq) VALUES"
                     " (?, 'p', 'note', 'cli', ?, '[]', ?, 'active', 0, 't', 't', ?)",
                     (i, text, f"{i:032x}", i))
        conn.execute("INSERT INTO memories_fts (rowid, text) VALUES (?, ?)", (i, text))
    conn.execute("COMMIT")
    projections.close()
    return tmp_path / "p.sqlite3"


def test_common_words_are_left_out_of_the_match_past_the_budget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the budget the rarest words select the documents; the whole query still ranks
    (on a read-only connection, as readers use)."""
    conn = connect(fill(tmp_path), readonly=True)
    monkeypatch.setattr(queries, "POSTINGS_BUDGET", 50)
    bounded = queries.rarest_terms(conn, '"cache" "running" "postgres" "pay-4758" "absent"')
    assert bounded.startswith('("pay-4758" OR "postgres") AND (')
    hits = queries.search_fts(conn, '"running" OR "pay-4758"', project="p", limit=5)
    assert hits[0][0] == 77


def test_a_query_within_the_budget_is_unchanged(tmp_path: Path) -> None:
    """Rare enough words, or a single word, are searched as given."""
    conn = sqlite3.connect(fill(tmp_path))
    assert queries.rarest_terms(conn, '"postgres" OR "refunds"') == '"postgres" OR "refunds"'
    assert queries.rarest_terms(conn, '"cache"') == '"cache"'
