"""Bounding a BM25 query: which documents FTS5 scores, which words it ranks by, and that the
bound never changes a score."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from memlane.projections import fulltext
from memlane.projections.sqlite_store import connect
from memlane.projections.catchup import Projections


def fill(tmp_path: Path, *, extra: int = 0) -> Path:
    """200 memories of project p sharing common words, a tenth with "postgres", one with
    "PAY-4758 refunds"; ``extra`` more in project q."""
    projections = Projections(tmp_path / "p.sqlite3", tmp_path / "v.vectors")
    conn = projections.sqlite.conn
    conn.execute("BEGIN")
    for i in range(1, 201 + extra):
        text = "the build cache is running" + (" postgres" if i % 10 == 0 else "") + \
            (" PAY-4758 refunds" if i == 77 else "") + (" running late" if i % 7 == 0 else "")
        conn.execute("INSERT INTO memories (id, project, kind, source, text, tags, content_hash,"
                     " state, proven, created_at, updated_at, refreshed_seq) VALUES"
                     " (?, ?, 'note', 'cli', ?, '[]', ?, 'active', 0, 't', 't', ?)",
                     (i, "p" if i <= 200 else "q", text, f"{i:032x}", i))
        conn.execute("INSERT INTO memories_fts (rowid, text) VALUES (?, ?)", (i, text))
    conn.execute("COMMIT")
    projections.close()
    return tmp_path / "p.sqlite3"


def ored(*words: str) -> str:
    return " OR ".join(f'"{w}"' for w in words)


def unbounded(conn: sqlite3.Connection, query: str) -> dict[int, float]:
    return {i: -s for i, s in conn.execute(
        "SELECT rowid, bm25(memories_fts) FROM memories_fts WHERE memories_fts MATCH ?",
        (query,))}


def test_past_the_budget_only_documents_with_a_rare_word_are_scored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rarest words choose the documents, within the budget (on a read-only connection,
    as readers use)."""
    conn = connect(fill(tmp_path), readonly=True)
    monkeypatch.setattr(fulltext, "POSTINGS_BUDGET", 50)
    query = ored("cache", "running", "postgres", "pay-4758", "absent")
    bound = fulltext.bound_query(conn, query)
    assert bound is not None and bound.among == ored("pay-4758", "postgres")
    scored = conn.execute("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?",
                          (bound.among,)).fetchone()[0]
    assert scored <= 50
    hits = fulltext.search_fts(conn, query, project="p", limit=100)
    assert hits[0][0] == 77 and len(hits) == scored


def test_when_even_the_rarest_word_is_past_the_budget_its_company_narrows_the_documents(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only documents holding the rarest words together are scored, as many words as bring
    the expected documents within the budget; when those are fewer than asked for, the
    documents holding the rarest word are."""
    conn = connect(fill(tmp_path), readonly=True)
    monkeypatch.setattr(fulltext, "POSTINGS_BUDGET", 10)
    query = ored("cache", "late", "postgres")
    bound = fulltext.bound_query(conn, query)
    assert bound == fulltext.Bound(match=ored("postgres", "late", "cache"),
                                   among='"postgres" AND "late"', wider=ored("postgres"))
    whole = unbounded(conn, query)
    best = sorted(whole, key=lambda i: -whole[i])
    narrowed = fulltext.search_fts(conn, query, project="p", limit=2)
    assert [i for i, _ in narrowed] == best[:2] and {70, 140} == set(best[:2])
    assert all(score == pytest.approx(whole[i]) for i, score in narrowed)
    widened = fulltext.search_fts(conn, query, project="p", limit=5)
    assert [i for i, _ in widened] == [i for i in best if i % 10 == 0][:5]


def test_the_bound_never_changes_a_score(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each document scored keeps its BM25 over the whole query: every word counts once,
    a rare word is not counted again for choosing the documents."""
    conn = connect(fill(tmp_path), readonly=True)
    monkeypatch.setattr(fulltext, "POSTINGS_BUDGET", 50)
    query = ored("cache", "running", "late", "postgres", "pay-4758")
    whole = unbounded(conn, query)
    hits = fulltext.search_fts(conn, query, project="p", limit=100)
    assert hits and all(score == pytest.approx(whole[i]) for i, score in hits)


def test_words_in_no_document_are_dropped(tmp_path: Path) -> None:
    """A word no memory holds cannot match: it is left out of the query FTS5 runs."""
    conn = sqlite3.connect(fill(tmp_path))
    bound = fulltext.bound_query(conn, ored("postgres", "absent", "refunds"))
    assert bound == fulltext.Bound(match=ored("refunds", "postgres"), among=None)
    assert fulltext.bound_query(conn, ored("absent", "nowhere")) is None
    assert fulltext.search_fts(conn, ored("absent", "nowhere"), project="p", limit=5) == []


def test_a_long_query_ranks_by_its_rarest_words_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past :data:`MAX_WORDS` the commonest words are left out, so a pasted log costs what
    a prompt does."""
    conn = sqlite3.connect(fill(tmp_path))
    monkeypatch.setattr(fulltext, "MAX_WORDS", 3)
    bound = fulltext.bound_query(conn, ored("cache", "running", "late", "postgres", "pay-4758"))
    assert bound is not None and bound.match == ored("pay-4758", "postgres", "late")


def test_a_query_within_the_budget_is_searched_as_given(tmp_path: Path) -> None:
    """Rare enough words, a single word, or a query that is not a list of ORed words."""
    conn = sqlite3.connect(fill(tmp_path))
    assert fulltext.bound_query(conn, ored("postgres", "refunds")) == fulltext.Bound(
        match=ored("refunds", "postgres"), among=None)
    assert fulltext.bound_query(conn, '"cache"') == fulltext.Bound(match='"cache"', among=None)
    assert fulltext.bound_query(conn, '"cache" AND "postgres"') == fulltext.Bound(
        match='"cache" AND "postgres"', among=None)


def test_hits_stay_in_the_project_and_an_empty_project_gets_none(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounded or not, only the asked project's memories come back."""
    conn = sqlite3.connect(fill(tmp_path, extra=100))
    for budget in (50, 100_000):
        monkeypatch.setattr(fulltext, "POSTINGS_BUDGET", budget)
        hits = fulltext.search_fts(conn, ored("cache", "postgres", "refunds"), project="q",
                                  limit=100)
        assert hits and all(i > 200 for i, _ in hits)
    assert fulltext.search_fts(conn, ored("cache"), project="nowhere", limit=5) == []


def test_document_counts_follow_every_change_of_the_index(tmp_path: Path) -> None:
    """Counts kept from one query are not reused once a memory is stored or deleted, also
    when another connection (the writer) made the change."""
    path = fill(tmp_path)
    reader = connect(path, readonly=True)
    assert fulltext.document_counts(reader, ["zebra", "postgres"]) == {"zebra": 0, "postgres": 20}
    writer = sqlite3.connect(path)
    writer.execute("INSERT INTO memories_fts (rowid, text) VALUES (500, 'a zebra crossing')")
    writer.commit()
    assert fulltext.document_counts(reader, ["zebra", "postgres"]) == {"zebra": 1, "postgres": 20}
    writer.execute("DELETE FROM memories_fts WHERE rowid IN (10, 20)")
    writer.commit()
    assert fulltext.document_counts(reader, ["postgres", "zebra"]) == {"postgres": 18, "zebra": 1}
    assert fulltext.document_counts(reader, ["_"]) == fulltext.count_documents(reader, ["_"])
