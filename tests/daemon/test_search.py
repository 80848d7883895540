"""Pure ranking functions of hybrid search."""

from __future__ import annotations

import sqlite3

from memlane.daemon.domain.ranking import fts_query, fuse


def test_fts_query_quotes_words_and_drops_stopwords() -> None:
    """User text never becomes FTS syntax; function words are left out."""
    assert fts_query('When did "Caroline" go to NEAR(x) the group?') == (
        '"caroline" OR "go" OR "near" OR "group"')


def test_fts_query_keeps_stopwords_when_nothing_else_remains() -> None:
    """A query made only of function words still searches for them."""
    assert fts_query("what was it") == '"what" OR "was" OR "it"'
    assert fts_query("?!") is None


def test_fts_query_is_valid_fts5_for_hostile_text() -> None:
    """Quotes, operators and unicode in the text give a query FTS5 accepts."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE f USING fts5(text)")
    conn.execute("INSERT INTO f VALUES ('naïve cache AND stuff')")
    for text in ['a"b OR', "NOT * ^ :", "naïve cache", "x' OR 1=1 --"]:
        query = fts_query(text)
        if query is not None:
            conn.execute("SELECT rowid FROM f WHERE f MATCH ?", (query,)).fetchall()


def test_fuse_rewards_agreement_and_keeps_single_list_hits() -> None:
    """A memory high in both lists wins; a memory in one list only still appears."""
    dense = [(1, 0.9), (2, 0.8), (3, 0.1)]
    lexical = [(2, 12.0), (4, 11.0), (1, 1.0)]
    ranked = [i for i, _ in fuse(dense, lexical)]
    assert ranked[0] == 2
    assert set(ranked) == {1, 2, 3, 4}


def test_fuse_uses_score_gaps_not_only_ranks() -> None:
    """Swapped ranks tie under rank fusion; here the list with the wider gap decides."""
    dense = [(1, 0.95), (2, 0.30), (3, 0.29)]
    lexical = [(2, 10.0), (1, 9.9), (3, 0.0)]
    scores = dict(fuse(dense, lexical))
    assert scores[1] > scores[2] + 0.4


def test_fuse_with_one_empty_list_keeps_the_other_order() -> None:
    """Without lexical hits the dense order stands (and the other way round)."""
    dense = [(5, 0.9), (6, 0.7), (7, 0.5)]
    assert [i for i, _ in fuse(dense, [])] == [5, 6, 7]
    assert [i for i, _ in fuse([], dense)] == [5, 6, 7]
