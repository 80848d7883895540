"""Full-text (BM25) queries over the SQLite projection's FTS5 index, bounded so that a long
prompt over a large project costs what a short one does (bench/bench_lexical.py measures it)."""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from memlane.projections.postings import Postings, PostingsCache
from memlane.projections.queries import first_live, index_totals, indexed_count


def search_fts(conn: sqlite3.Connection, query: str, *, project: str | None, limit: int,
               counts: Mapping[str, int] | None = None,
               postings: PostingsCache | None = None) -> list[tuple[int, float]]:
    """Live memories matching an FTS5 ``query``, best BM25 first, with a positive score
    (``counts``: the words' :func:`document_counts`, when the caller has them), bounded by
    :func:`bound_query`. A project without live memories gets none without a search. With
    ``postings`` holding a copy of the index, FTS5 only finds the documents and numpy scores
    them (:mod:`memlane.projections.postings`: the same scores)."""
    if project is not None and not has_live(conn, project):
        return []
    bound = bound_query(conn, query, counts)
    if bound is None:
        return []
    copy = None if postings is None else postings.current(conn)
    found = _search(conn, bound.match, bound.among, project=project, limit=limit, copy=copy,
                    counts=counts)
    if bound.wider is not None and len(found) < limit:  # too few hold the rare words together
        found = _search(conn, bound.match, bound.wider, project=project, limit=limit, copy=copy,
                        counts=counts)
    return found


def _search(conn: sqlite3.Connection, match: str, among: str | None, *, project: str | None,
            limit: int, copy: Postings | None,
            counts: Mapping[str, int] | None) -> list[tuple[int, float]]:
    if copy is not None and (found := _scored(conn, copy, match, among, project=project,
                                              limit=limit, counts=counts)) is not None:
        return found
    return _search_fts(conn, match, among, project=project, limit=limit)


def _scored(conn: sqlite3.Connection, copy: Postings, match: str, among: str | None, *,
            project: str | None, limit: int,
            counts: Mapping[str, int] | None = None) -> list[tuple[int, float]] | None:
    """:func:`_search_fts`'s answer, the documents and scores taken from ``copy`` (those newer
    than the copy from FTS5); None when a word is a phrase of several tokens (FTS5 counts a
    phrase where its tokens stand together, which postings cannot tell)."""
    words = _QUOTED.findall(match)
    chosen = _QUOTED.findall(among) if among is not None else words
    terms = word_terms(conn, [*words, *chosen])
    if not words or match != _ored(words) or any(len(terms[w]) != 1 for w in terms):
        return None
    documents, tokens = index_totals(conn)
    if counts is None:
        counts = document_counts(conn, words)
    idf = [max(math.log((documents - n + 0.5) / (n + 0.5)), 1e-6)
           for n in (counts.get(w, 0) for w in words)]
    every = among is not None and among == " AND ".join(f'"{w}"' for w in chosen)
    candidates = copy.holding([terms[w][0] for w in chosen], every=every)
    ids, scores = copy.score(candidates, [terms[w][0] for w in words], idf,
                             average_length=tokens / max(documents, 1), project=project)
    found = _live_best(conn, ids, scores, project=project, limit=limit)
    if conn.execute("SELECT 1 FROM memories_fts_docsize WHERE id > ? LIMIT 1",
                    (copy.upto,)).fetchone():
        found += _search_fts(conn, match, among, project=project, limit=limit, after=copy.upto)
    return sorted(found, key=lambda hit: (-hit[1], hit[0]))[:limit]


def _live_best(conn: sqlite3.Connection, ids: np.ndarray, scores: np.ndarray, *,
               project: str | None, limit: int) -> list[tuple[int, float]]:
    """The ``limit`` best-scored live memories among ``ids`` (ties by id)."""
    order = np.lexsort((ids, -scores))
    score_of = dict(zip(ids.tolist(), scores.tolist(), strict=True))
    return [(memory, score_of[memory])
            for memory in first_live(conn, ids[order].tolist(), project, limit)]


def _search_fts(conn: sqlite3.Connection, match: str, among: str | None, *,
                project: str | None, limit: int, after: int | None = None
                ) -> list[tuple[int, float]]:
    sql = ("SELECT m.id, -bm25(memories_fts) AS score FROM memories_fts"
           " JOIN memories m ON m.id = memories_fts.rowid WHERE memories_fts MATCH ?")
    params: list[object] = [match]
    if after is not None:
        sql += " AND memories_fts.rowid > ?"
        params.append(after)
    if among is not None:
        # A filter, not a MATCH of the outer table: BM25 still sums each word of the query
        # once, and SQLite scores only the rows that pass it. The unary + keeps SQLite from
        # running the whole MATCH again for each rowid of the list.
        sql += (" AND +memories_fts.rowid IN"
                " (SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?)")
        params.append(among)
    sql += " AND m.state IN ('active', 'proven')"
    if project is not None:
        sql += " AND m.project = ?"
        params.append(project)
    sql += " ORDER BY bm25(memories_fts) LIMIT ?"
    params.append(limit)
    return [(row[0], float(row[1])) for row in conn.execute(sql, params)]


def has_live(conn: sqlite3.Connection, project: str) -> bool:
    return conn.execute("SELECT 1 FROM memories WHERE state IN ('active', 'proven')"
                        " AND project = ? LIMIT 1", (project,)).fetchone() is not None


def foreign_count(conn: sqlite3.Connection, words: Sequence[str], project: str,
                  counts: Mapping[str, int], *, least: int = 1) -> int:
    """How many documents hold the commonest of ``words`` that no live memory of ``project``
    holds (0 when each word held by at least ``least`` documents is found here): a query
    naming what other projects often speak of and this one never does is asked in the wrong
    place. ``counts``: the words' :func:`document_counts`. Words are tried commonest first, up
    to the first one missing here; a word the project holds is found at its first posting of
    the project."""
    for word in sorted((w for w in words if counts.get(w, 0) >= least),
                       key=lambda w: -counts[w]):
        if conn.execute(
                "SELECT 1 FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid"
                " WHERE memories_fts MATCH ? AND m.state IN ('active', 'proven')"
                " AND m.project = ? LIMIT 1", (f'"{word}"', project)).fetchone() is None:
            return counts[word]
    return 0


# BM25 in FTS5 scores every document a query matches, for every word of the query: the work
# grows with matches times words. Chosen on hooks-20k and zipf-100k (bench/bench_lexical.py,
# --budgets): 3,000 postings cut a 300-character prompt in the 8,000-memory project by about
# a third against the 12,000 before, with a top-10 overlap of 0.99 with unbounded BM25 and
# zipf-100k recall@10 0.964 (unbounded 0.977); 6,000 gives 0.977 at about the old speed.
POSTINGS_BUDGET = 3_000  # documents holding a chosen rare word, summed over those words
MAX_WORDS = 128  # words a query ranks by (a 2,000-character prompt has about 100)
_QUOTED = re.compile(r'"([^"]+)"')


@dataclass(frozen=True)
class Bound:
    """An FTS5 query as run: ``match`` ranks (BM25 over its words), and when set, only the
    documents matching ``among`` (the rarest words) are scored; when those are fewer than
    the search asks for, the documents matching ``wider`` are."""

    match: str
    among: str | None = None
    wider: str | None = None


def bound_query(conn: sqlite3.Connection, query: str,
                counts: Mapping[str, int] | None = None) -> Bound | None:
    """``query`` as FTS5 should run it (None when none of its words is in the index).

    A query of ORed quoted words (:func:`~memlane.daemon.domain.ranking.fts_query`) loses
    the words found in no document (they cannot match, and score nothing) and, past
    :data:`MAX_WORDS`, its commonest words. When the documents its words hold add up past
    :data:`POSTINGS_BUDGET`, only those holding one of its rarest words (within the budget;
    the rarest always) are scored: the common words left out of that choice carry little
    idf, and are what made a long prompt score most of the collection. Any other query is
    run as given."""
    words = _QUOTED.findall(query)
    if len(words) < 2 or query != _ored(words):
        return Bound(query)
    if counts is None:
        counts = document_counts(conn, words)
    found = sorted((w for w in words if counts.get(w)), key=lambda w: counts[w])[:MAX_WORDS]
    if not found:
        return None
    chosen: list[str] = []
    total = 0
    for word in found:
        if chosen and total + counts[word] > POSTINGS_BUDGET:
            break
        chosen.append(word)
        total += counts[word]
    among = None if len(chosen) == len(found) else _ored(chosen)
    if total > POSTINGS_BUDGET and len(found) > 1:
        return Bound(_ored(found), _together(found, counts, indexed_count(conn)), among)
    return Bound(_ored(found), among)


def _together(words: Sequence[str], counts: Mapping[str, int], documents: int) -> str:
    """The rarest words ANDed, as many as it takes for the documents expected to hold them
    all (as if words occurred independently) to fall within the budget. A document holding
    several of a query's words outscores one holding a single word, so the best ones are
    among these whenever there are enough of them."""
    expected = float(counts[words[0]])
    chosen = [words[0]]
    for word in words[1:]:
        if expected <= POSTINGS_BUDGET:
            break
        expected *= counts[word] / max(documents, 1)
        chosen.append(word)
    return " AND ".join(f'"{word}"' for word in chosen)


def _ored(words: Sequence[str]) -> str:
    return " OR ".join(f'"{word}"' for word in words)


# Per database file: the index version the counts were read at, and word -> documents (None:
# the word has no token). Bounded: a few databases, CACHED_WORDS words each.
COUNTS: dict[str, tuple[bytes, dict[str, int | None]]] = {}
CACHED_WORDS = 50_000


def document_counts(conn: sqlite3.Connection, words: Sequence[str]) -> dict[str, int]:
    """:func:`count_documents`, kept per database until its index changes: FTS5 rewrites its
    structure record (row 10 of its data table: a cookie and the segments) and its averages
    (row 1: documents and tokens) at every write to the index. A prompt's words recur, and
    counting them scans their postings."""
    where = conn.execute("PRAGMA database_list").fetchone()[2]
    if not where:  # an in-memory database has no name to keep counts under
        return count_documents(conn, words)
    version = b"".join(bytes(row[0]) for row in conn.execute(
        "SELECT block FROM memories_fts_data WHERE id IN (1, 10) ORDER BY id"))
    kept_at, known = COUNTS.get(where, (b"", {}))
    if kept_at != version or len(known) > CACHED_WORDS:
        if len(COUNTS) >= 8:
            COUNTS.clear()
        known = {}
        COUNTS[where] = (version, known)
    missing = [word for word in dict.fromkeys(words) if word not in known]
    if missing:
        fresh = count_documents(conn, missing)
        known.update({word: fresh.get(word) for word in missing})
    return {word: n for word in words if (n := known[word]) is not None}


# word -> its tokens as the index's tokenizer makes them (they depend on no document).
TERMS: dict[str, tuple[str, ...]] = {}


def word_terms(conn: sqlite3.Connection, words: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Each word's tokens, through the index's own tokenizer (kept for CACHED_WORDS words;
    read threads share the cache, so this call answers from its own copy of what it found)."""
    known = {word: TERMS.get(word) for word in words}
    missing = [word for word, terms in known.items() if terms is None]
    if missing:
        _tokenize(conn, missing)
        tokens: dict[str, list[str]] = {word: [] for word in missing}
        for position, term in conn.execute(
                "SELECT doc, term FROM temp.query_tokens ORDER BY doc, offset"):
            tokens[missing[position]].append(term)
        fresh = {word: tuple(found) for word, found in tokens.items()}
        if len(TERMS) + len(fresh) > CACHED_WORDS:
            TERMS.clear()
        TERMS.update(fresh)
        known.update(fresh)
    return {word: terms for word, terms in known.items() if terms is not None}


def _tokenize(conn: sqlite3.Connection, words: Sequence[str]) -> None:
    """Index ``words`` (rowid: position) in a temporary table read by ``temp.query_tokens``."""
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_words"
                 " USING fts5(text, tokenize = 'porter unicode61')")
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_tokens"
                 " USING fts5vocab(temp, query_words, instance)")
    conn.execute("DELETE FROM temp.query_words")
    conn.executemany("INSERT INTO temp.query_words (rowid, text) VALUES (?, ?)", enumerate(words))


def count_documents(conn: sqlite3.Connection, words: Sequence[str]) -> dict[str, int]:
    """How many documents hold each word (a phrase of several tokens: its rarest token's
    count), through the index's own tokenizer: the words are indexed in a temporary FTS5 table
    and its tokens looked up in the main index's vocabulary."""
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.memories_vocab"
                 " USING fts5vocab(main, memories_fts, row)")
    _tokenize(conn, words)
    counts: dict[str, int] = {}
    for position, documents in conn.execute(
            "SELECT q.doc, coalesce(v.doc, 0) FROM temp.query_tokens q"
            " LEFT JOIN temp.memories_vocab v ON v.term = q.term"):
        word = words[position]
        counts[word] = min(counts.get(word, documents), documents)
    return counts
