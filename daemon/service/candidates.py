"""Hybrid search over the projections: dense candidates from the vector index, BM25 candidates
from FTS5, fused and lifted by their neighbours (:mod:`memlane.daemon.domain.ranking`). Synchronous; the daemon runs it in a worker
thread under the projections' lock, the CLI's offline fallback calls it directly."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from memlane.daemon.domain.ranking import (
    CANDIDATES, FOREIGN_MIN, Floor, bm25_strength, fts_query, fuse, with_neighbours)
from memlane.projections import fulltext, queries
from memlane.projections import vector_store
from memlane.projections.postings import Postings, PostingsCache
from memlane.projections.vector_store import VectorProjection


# How many more hits than the project's share promises the first scan asks for. A graph's
# search costs more than linearly in the hits asked (zipf-100k, a fifth of the memories per
# project: the dense stage's p50 3.6-3.9 ms with 1.5, 2.5-3.0 ms with 1.25, for 4 widened
# scans in 200 queries instead of 3).
SCAN_MARGIN = 1.25


def dense_candidates(vectors: VectorProjection, conn: sqlite3.Connection, vector: np.ndarray,
                     project: str | None, *,
                     postings: PostingsCache | None = None) -> list[tuple[int, float]]:
    """The best live memories of ``project`` by cosine, widening the scan until enough pass
    the filter or the whole index was seen (exact below ``vector_store.EXACT_BELOW`` vectors).

    The first scan is sized by the project's share of the index, so that a project holding a
    fifth of the memories needs one scan, not several widening ones. With ``postings``
    holding a copy of the full-text index, the share is its count of the project's documents
    and the hits it places in another project are dropped before their vectors are read
    (a graph's candidates) and before SQLite is asked.
    """
    total = len(vectors)
    copy = None if postings is None or project is None else postings.current(conn)
    live = None if project is None else _live_estimate(conn, project, copy)
    if live == 0:
        return []  # a new project: nothing of another project may come back
    share = 1.0 if live is None else live / max(total, 1)
    wanted = min(total, max(CANDIDATES * 2, int(CANDIDATES * SCAN_MARGIN / max(share, 1e-6))))
    if project is not None and total >= vector_store.EXACT_BELOW and wanted > total // 4:
        return _scan_project(vectors, conn, vector, project)
    placed = None if copy is None or project is None else partial(copy.placed_in,
                                                                   project=project)
    while True:
        hits = vectors.search(vector, wanted, exact=total < vector_store.EXACT_BELOW,
                              among=placed)
        live = set(queries.first_live(conn, [i for i, _ in hits], project, CANDIDATES))
        kept = [hit for hit in hits if hit[0] in live]
        if len(kept) >= CANDIDATES or wanted >= total:
            return kept
        wanted = min(total, wanted * 4)


def _live_estimate(conn: sqlite3.Connection, project: str, copy: Postings | None) -> int:
    """The project's live memories: counted, or the copy's documents of it (0 only when it
    has no live memory)."""
    if copy is None:
        return queries.live_count(conn, project)
    return copy.documents_of(project) or int(fulltext.has_live(conn, project))


def _scan_project(vectors: VectorProjection, conn: sqlite3.Connection, vector: np.ndarray,
                  project: str) -> list[tuple[int, float]]:
    """An exact scan of a small project's own vectors, cheaper than a wide index search."""
    keys, rows = vectors.vectors(queries.live_ids(conn, project))
    if not keys:
        return []
    scores = rows @ vector
    best = np.argsort(-scores, kind="stable")[:CANDIDATES]
    return [(keys[i], float(scores[i])) for i in best]


@dataclass(frozen=True)
class Ranking:
    """Search hits, best first, with the evidence behind them."""

    hits: list[dict[str, Any]]
    similarity: dict[int, float]  # cosine to the query of each dense candidate and each hit
    lexical: frozenset[int]  # candidates the full-text index matched
    strength: float = 0.0  # the query's BM25 strength (:func:`lexical_evidence`)
    foreign: int = 0  # documents elsewhere behind its foreign word (:func:`lexical_evidence`)
    sources: dict[int, str] = field(default_factory=dict)  # where each hit came from

    def evidence(self, floor: Floor) -> float | None:
        """The query's :meth:`~memlane.daemon.domain.ranking.Floor.evidence`, from its closest
        candidate; None without a hit or a cosine (no model): nothing to judge by."""
        if not self.similarity or not self.hits:
            return None
        return floor.evidence(max(self.similarity.values()), strength=self.strength,
                              foreign=self.foreign)

    def floored(self, floor: Floor, *, keep_below: bool = False) -> Ranking:
        """The hits that pass the relevance floor (none when the query is not answered);
        with ``keep_below`` every hit, those below marked ``below_floor``. Without any cosine
        (no model) nothing can be judged and every hit stays."""
        evidence = self.evidence(floor)
        if evidence is None:
            return self
        answered = floor.reached(evidence)
        hits = []
        for hit in self.hits:
            cosine = self.similarity.get(hit["id"], 0.0)
            if answered and floor.passes(cosine, lexical=hit["id"] in self.lexical):
                hits.append(hit)
            elif keep_below:
                hits.append({**hit, "below_floor": True})
        return replace(self, hits=hits)


def lexical_candidates(conn: sqlite3.Connection, query: str,
                       project: str | None) -> list[tuple[int, float]]:
    """The best live memories of ``project`` by BM25 (none when the query has no words)."""
    match = fts_query(query)
    return [] if match is None else fulltext.search_fts(conn, match, project=project,
                                                       limit=CANDIDATES)


class LexicalEvidence(NamedTuple):
    """What the full-text index says about a query in a project."""

    found: list[tuple[int, float]]  # :func:`lexical_candidates`
    strength: float  # :func:`~memlane.daemon.domain.ranking.bm25_strength` of the best
    foreign: int  # :func:`~memlane.projections.fulltext.foreign_count` (0 without a project)


def lexical_evidence(conn: sqlite3.Connection, query: str, project: str | None, *,
                     postings: PostingsCache | None = None) -> LexicalEvidence:
    """:func:`lexical_candidates`, the query's BM25 strength (the best score over the summed
    idf of its words in the whole index; 0 without a match) and how strongly its words point
    to other projects, the words' document counts looked up once for all three (``postings``:
    see :func:`~memlane.projections.fulltext.search_fts`)."""
    match = fts_query(query)
    if match is None or (project is not None and not fulltext.has_live(conn, project)):
        return LexicalEvidence([], 0.0, 0)  # nothing to match, or a new project
    words = re.findall(r'"([^"]+)"', match)
    counts = fulltext.document_counts(conn, words)
    foreign = 0 if project is None else fulltext.foreign_count(conn, words, project, counts,
                                                              least=FOREIGN_MIN)
    found = fulltext.search_fts(conn, match, project=project, limit=CANDIDATES, counts=counts,
                                postings=postings)
    if not found:
        return LexicalEvidence([], 0.0, foreign)
    return LexicalEvidence(found, bm25_strength(found[0][1], counts.values(),
                                                queries.indexed_count(conn)), foreign)


CosineOf = Callable[[Sequence[int]], dict[int, float]]


def rank(conn: sqlite3.Connection, dense: list[tuple[int, float]], lexical: LexicalEvidence,
         k: int, *, cosine_of: CosineOf | None = None, project: str | None = None) -> Ranking:
    """The top ``k`` memories by fused dense and BM25 score (``lexical``: the query's
    :func:`lexical_evidence`, its strength and foreign evidence kept for the floor);
    ``cosine_of`` gives the cosine of hits the dense list did not reach (BM25-only hits), so
    the floor can judge them; ``project``, when given, is the one both lists were searched in
    (their projects need no look-up)."""
    fused = fuse(dense, lexical.found)
    fused = with_neighbours(fused, _projects(conn, [i for i, _ in fused], project))[:k]
    rows = queries.get_memories(conn, [i for i, _ in fused])
    similarity = dict(dense)
    missing = [i for i, _ in fused if i not in similarity]
    if cosine_of is not None and missing:
        similarity.update(cosine_of(missing))
    return Ranking([_hit(rows[i], score) for i, score in fused if i in rows], similarity,
                   frozenset(i for i, _ in lexical.found), lexical.strength, lexical.foreign,
                   {i: rows[i]["source"] for i, _ in fused if i in rows})


def rank_embedded(vectors: VectorProjection, conn: sqlite3.Connection, vector: np.ndarray,
                  lexical: LexicalEvidence, k: int, *, project: str | None,
                  postings: PostingsCache | None = None) -> Ranking:
    """:func:`rank` of the query embedded as ``vector``: its dense candidates in ``project``
    and its ``lexical`` evidence there, every hit with its cosine."""
    dense = dense_candidates(vectors, conn, vector, project, postings=postings)
    return rank(conn, dense, lexical, k, cosine_of=cosines(vectors, vector), project=project)


def _projects(conn: sqlite3.Connection, ids: list[int], project: str | None) -> dict[int, str]:
    if project is not None:
        return dict.fromkeys(ids, project)
    return {i: p for i, (p, _) in queries.placement(conn, ids).items()}


def cosines(vectors: VectorProjection, vector: np.ndarray) -> CosineOf:
    """The cosine to ``vector`` of stored memories (those without a vector are left out)."""
    def cosine_of(ids: Sequence[int]) -> dict[int, float]:
        keys, rows = vectors.vectors(list(ids))
        return {} if not keys else dict(zip(keys, (rows @ vector).tolist(), strict=True))
    return cosine_of


def hybrid_hits(conn: sqlite3.Connection, dense: list[tuple[int, float]], query: str,
                project: str | None, k: int) -> list[dict[str, Any]]:
    """The top ``k`` memories by fused dense and BM25 score, as search hits."""
    lexical = LexicalEvidence(lexical_candidates(conn, query, project), 0.0, 0)
    return rank(conn, dense, lexical, k, project=project).hits


def _hit(row: dict[str, Any], score: float) -> dict[str, Any]:
    return {"id": row["id"], "text": row["text"], "score": round(score, 6),
            "project": row["project"], "kind": row["kind"], "state": row["state"]}
