"""BM25 from an in-memory copy of the postings: FTS5's own scores, the newest documents
scored by FTS5, a copy built in the background and dropped when a memory is forgotten."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from memlane.events.model import Forgotten, Record
from memlane.projections import fulltext
from memlane.projections.catchup import Projections
from memlane.projections.fold import _forget_ops
from memlane.projections import postings
from memlane.projections.postings import PostingsCache
from memlane.projections.read_pool import ReadPool
from memlane.projections.sqlite_store import connect

WORDS = ("cache build running runs postgres deploy retry timeout refunds ledger worker queue "
         "the a of café naïve max_tokens PAY-4758 x1 42").split()


def insert(conn: sqlite3.Connection, first: int, count: int, rng: random.Random) -> None:
    conn.execute("BEGIN")
    for i in range(first, first + count):
        text = " ".join(rng.choice(WORDS[: rng.randint(3, len(WORDS))])
                        for _ in range(rng.randint(1, 40)))
        state = "expired" if i % 13 == 0 else "active"
        conn.execute("INSERT INTO memories (id, project, kind, source, text, tags, content_hash,"
                     " state, proven, created_at, updated_at, refreshed_seq) VALUES"
                     " (?, ?, 'note', 'cli', ?, '[]', ?, ?, 0, 't', 't', ?)",
                     (i, "pq"[i % 3 == 0], text, f"{i:032x}", state, i))
        conn.execute("INSERT INTO memories_fts (rowid, text) VALUES (?, ?)", (i, text))
    conn.execute("COMMIT")


def queries(rng: random.Random, count: int) -> list[str]:
    return [" OR ".join(f'"{w.lower()}"' for w in dict.fromkeys(
        rng.choice(WORDS) for _ in range(rng.randint(1, 8)))) for _ in range(count)]


def assert_same_ranking(found: list[tuple[int, float]],
                        expected: list[tuple[int, float]]) -> None:
    """The same scores in the same order, and the same memories but for ties at the cut."""
    assert [s for _, s in found] == pytest.approx([s for _, s in expected], rel=1e-12)
    got, wanted = dict(found), dict(expected)
    for memory in got.keys() & wanted.keys():
        assert got[memory] == pytest.approx(wanted[memory], rel=1e-12)
    cut = expected[-1][1] if expected else 0.0
    for memory in got.keys() ^ wanted.keys():
        assert got.get(memory, wanted.get(memory)) == pytest.approx(cut, rel=1e-12)


def filled(tmp_path: Path, count: int, rng: random.Random) -> tuple[Projections, Path]:
    """Projections in ``tmp_path`` holding ``count`` memories (ids from 1); their SQLite file."""
    path = tmp_path / "p.sqlite3"
    projections = Projections(path, tmp_path / "v.vectors")
    insert(projections.sqlite.conn, 1, count, rng)
    return projections, path


def copy_of(path: Path) -> PostingsCache:
    cache = PostingsCache(ReadPool(path), least=0)
    with connect(path, readonly=True) as conn:
        assert cache.current(conn) is None  # the first ask starts the build; FTS5 scores
    assert cache.wait_built(30)
    return cache


@pytest.mark.parametrize("budget", [3_000, 40])
def test_scores_from_the_copy_are_fts5s_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            budget: int) -> None:
    """Every query gets the same memories with the same scores as FTS5 gives, bounded or not,
    per project and over all, for documents in the copy, newer than it and forgotten since."""
    monkeypatch.setattr(fulltext, "POSTINGS_BUDGET", budget)
    rng = random.Random(7)
    path = tmp_path / "p.sqlite3"
    projections = Projections(path, tmp_path / "v.vectors")
    writer = projections.sqlite.conn
    insert(writer, 1, 600, rng)
    cache = copy_of(path)
    insert(writer, 601, 80, rng)  # newer than the copy
    for memory in (5, 50, 500):  # forgotten, as the fold forgets, before the copy is dropped
        for sql, params in _forget_ops(memory, "t"):
            writer.execute(sql, params)
    reader = connect(path, readonly=True)
    scored_by_copy = 0
    for query in queries(rng, 120):
        for project in ("p", "q", None):
            expected = fulltext.search_fts(reader, query, project=project, limit=25)
            found = fulltext.search_fts(reader, query, project=project, limit=25,
                                        postings=cache)
            assert_same_ranking(found, expected)
            scored_by_copy += "max_tokens" not in query
    assert scored_by_copy > 200
    projections.close()


def test_a_phrase_word_is_left_to_fts5(tmp_path: Path) -> None:
    """A word the tokenizer splits (max_tokens: two tokens) is scored by FTS5, which counts
    where they stand together; single-token words are scored from the copy."""
    rng = random.Random(3)
    projections, path = filled(tmp_path, 300, rng)
    cache = copy_of(path)
    reader = connect(path, readonly=True)
    copy = cache.current(reader)
    assert copy is not None
    assert fulltext._scored(reader, copy, '"max_tokens" OR "cache"', None, project="p",
                            limit=10) is None
    assert fulltext._scored(reader, copy, '"tokens" OR "cache"', None, project="p",
                            limit=10)
    projections.close()


def test_the_copy_is_rebuilt_when_the_index_outgrows_it(tmp_path: Path) -> None:
    """Past an eighth more documents (and LAG), the next ask builds a new copy."""
    rng = random.Random(5)
    projections, path = filled(tmp_path, 100, rng)
    cache = copy_of(path)
    reader = connect(path, readonly=True)
    first = cache.current(reader)
    assert first is not None and first.documents == 100 and first.upto == 100
    assert cache.describe() == {"scored_by": "postings", "documents": 100, "building": False}
    insert(projections.sqlite.conn, 101, PostingsCache.LAG, rng)
    assert cache.current(reader) is first and cache.wait_built(30)  # within the lag: kept
    assert cache.current(reader) is first
    insert(projections.sqlite.conn, 101 + PostingsCache.LAG, 1, rng)
    assert cache.current(reader) is first  # past it: rebuilt in the background
    assert cache.wait_built(30)
    newer = cache.current(reader)
    assert newer is not None and newer is not first and newer.upto == 101 + PostingsCache.LAG
    projections.close()


def test_a_forget_drops_the_copy(tmp_path: Path) -> None:
    """Applying a Forgotten drops the copy, so no forgotten word stays in memory; the next
    search builds it again without the memory."""
    rng = random.Random(9)
    projections, path = filled(tmp_path, 50, rng)
    projections.postings = PostingsCache(projections.reads, least=0)
    reader = connect(path, readonly=True)
    projections.postings.current(reader)
    assert projections.postings.wait_built(30)
    held = projections.postings.current(reader)
    assert held is not None and 7 in held.rowids
    forgotten = Forgotten(memory=7, content_hash=f"{7:032x}", request=0)
    projections.apply([Record(seq=1, at=datetime.now(UTC), event=forgotten)])
    assert projections.postings.current(reader) is None
    assert projections.postings.wait_built(30)
    assert projections.postings.describe()["documents"] == 49
    rebuilt = projections.postings.current(reader)
    assert rebuilt is not None and 7 not in rebuilt.rowids and rebuilt.documents == 49
    projections.close()


def test_the_copy_places_memories_in_their_projects(tmp_path: Path) -> None:
    """Per project document counts; ids it places elsewhere are dropped, those it does not
    know (newer, or without a word) kept."""
    rng = random.Random(11)
    projections, path = filled(tmp_path, 90, rng)
    copy = copy_of(path).current(connect(path, readonly=True))
    assert copy is not None
    assert copy.documents_of("q") == 30 and copy.documents_of("p") == 60
    assert copy.documents_of("new") == 0
    assert copy.placed_in([3, 4, 5, 6, 91, 1000], "q") == [3, 6, 91, 1000]
    assert copy.placed_in([3, 4, 91], "new") == [91]
    projections.close()


def test_a_copy_of_an_empty_index_holds_nothing(tmp_path: Path) -> None:
    """An empty index gives an empty copy: no documents, every id left for SQLite to judge."""
    path = tmp_path / "p.sqlite3"
    projections = Projections(path, tmp_path / "v.vectors")
    copy = copy_of(path).current(connect(path, readonly=True))
    assert copy is not None and copy.documents == 0 and copy.upto == 0
    assert copy.placed_in([1, 2], "p") == [1, 2]
    assert len(copy.holding(["cache"], every=False)) == 0
    ids, scores = copy.score(np.array([1], dtype=np.int64), ["cache"], [1.0],
                             average_length=1.0, project="p")
    assert len(ids) == len(scores) == 0
    projections.close()


def test_a_failed_build_leaves_fts5_scoring_and_is_tried_again_later(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that fails holds no copy and blocks nothing; the next ask within RETRY_AFTER
    starts none, the next one after it does."""
    rng = random.Random(13)
    projections, path = filled(tmp_path, 30, rng)
    cache = PostingsCache(projections.reads, least=0)
    reader = connect(path, readonly=True)
    def unreadable(cls: type, conn: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    failing = pytest.MonkeyPatch()
    failing.setattr(postings.Postings, "read", classmethod(unreadable))
    assert cache.current(reader) is None and cache.wait_built(30) is False
    failing.undo()
    assert cache.current(reader) is None and cache.wait_built(30) is False  # not yet retried
    monkeypatch.setattr(postings, "RETRY_AFTER", 0.0)
    assert cache.current(reader) is None and cache.wait_built(30) is True
    projections.close()


def test_word_terms_answers_every_word_when_the_cache_overflows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past CACHED_WORDS the shared cache is emptied, yet the call answers every word (from
    what it found itself), as the index's tokenizer splits and stems them."""
    path = tmp_path / "p.sqlite3"
    projections = Projections(path, tmp_path / "v.vectors")
    monkeypatch.setattr(fulltext, "CACHED_WORDS", 2)
    fulltext.TERMS.clear()
    reader = connect(path, readonly=True)
    assert fulltext.word_terms(reader, ["running", "max_tokens", "café", "x1", "running"]) == {
        "running": ("run",), "max_tokens": ("max", "token"), "café": ("cafe",), "x1": ("x1",)}
    assert len(fulltext.TERMS) <= 4
    projections.close()


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 300), max_size=60), st.sets(st.integers(0, 300), max_size=60),
       st.booleans())
def test_occurrences_are_found_from_either_list(docs: set[int], candidates: set[int],
                                                from_docs: bool) -> None:
    """Each candidate holding the term, with its count, whichever list is looked up in the
    other."""
    held = np.array(sorted(docs), dtype=np.int64)
    counts = (held % 7 + 1).astype(np.float32)
    among = np.array(sorted(candidates), dtype=np.int64)
    if not len(held) or not len(among):
        return
    where, freq = postings.occurrences(held, counts, among, from_docs=from_docs)
    expected = {i: float(d % 7 + 1) for i, d in enumerate(among.tolist()) if d in docs}
    assert dict(zip(where.tolist(), freq.tolist(), strict=True)) == expected
