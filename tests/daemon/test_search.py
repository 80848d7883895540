"""Pure ranking functions of hybrid search."""

from __future__ import annotations

import math
import sqlite3

import pytest

from memlane.daemon.domain.ranking import Floor, bm25_strength, fts_query, fuse, with_neighbours
from memlane.daemon.service.candidates import Ranking


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
    scores = dict(fuse(dense, lexical, dense_weight=0.5))
    assert scores[1] > scores[2] + 0.4


def test_fuse_with_one_empty_list_keeps_the_other_order() -> None:
    """Without lexical hits the dense order stands (and the other way round)."""
    dense = [(5, 0.9), (6, 0.7), (7, 0.5)]
    assert [i for i, _ in fuse(dense, [])] == [5, 6, 7]
    assert [i for i, _ in fuse([], dense)] == [5, 6, 7]


FLOOR = Floor(relevance=0.5, bm25_weight=0.25, context=0.25)


def test_floor_answers_when_cosine_and_bm25_strength_together_are_enough() -> None:
    """A query is answered when its closest cosine plus the weighted BM25 strength reaches the
    floor (strength makes up for a lower cosine); an answered query's hits need the context
    cosine or shared words."""
    assert FLOOR.answers(0.5, strength=0.0)
    assert not FLOOR.answers(0.49, strength=0.0)
    assert FLOOR.answers(0.4, strength=0.4) and not FLOOR.answers(0.4, strength=0.39)
    assert FLOOR.passes(0.25, lexical=False) and not FLOOR.passes(0.24, lexical=False)
    assert FLOOR.passes(0.0, lexical=True)


def test_a_query_pointing_to_other_projects_needs_a_closer_memory() -> None:
    """Foreign evidence (log of 1 + the memories elsewhere holding the query's commonest word
    this project never holds, from 20 of them) counts against the floor: a name another
    project speaks of a hundred times outweighs a near miss; without the weight it changes
    nothing."""
    floor = Floor(relevance=0.5, bm25_weight=0.25, context=0.25, foreign_weight=0.05)
    assert floor.answers(0.5, strength=0.0, foreign=0)
    assert not floor.answers(0.6, strength=0.0, foreign=100)
    assert floor.answers(0.5 + 0.05 * math.log(101), strength=0.0, foreign=100)
    assert floor.answers(0.5, strength=0.0, foreign=19)  # held by too few memories elsewhere
    assert FLOOR.answers(0.5, strength=0.0, foreign=100)
    ranking = Ranking([{"id": 1, "score": 1.0}], similarity={1: 0.6}, lexical=frozenset(),
                      foreign=100)
    assert ranking.floored(floor).hits == [] and ranking.floored(FLOOR).hits == ranking.hits


def test_the_floor_compares_one_evidence_figure_with_relevance() -> None:
    """A query's evidence is its closest cosine plus the weighted BM25 strength minus the
    weighted foreign evidence; it is answered when that reaches relevance. A ranking's evidence
    is that of its closest candidate (none without a cosine to judge by)."""
    floor = Floor(relevance=0.5, bm25_weight=0.25, context=0.25, foreign_weight=0.05)
    evidence = floor.evidence(0.45, strength=0.4, foreign=100)
    assert evidence == pytest.approx(0.45 + 0.25 * 0.4 - 0.05 * math.log(101))
    assert floor.answers(0.45, strength=0.4, foreign=100) == (evidence >= 0.5)
    ranking = Ranking([{"id": 1, "score": 1.0}], similarity={1: 0.3, 2: 0.45},
                      lexical=frozenset({1}), strength=0.4, foreign=100)
    assert ranking.evidence(floor) == evidence
    assert Ranking([], similarity={}, lexical=frozenset()).evidence(floor) is None


def test_bm25_strength_is_the_best_score_over_the_words_idf() -> None:
    """FTS5's idf summed over the query's words; a word in most memories weighs almost nothing,
    and without any match the strength is 0."""
    rare, common = math.log((1000 - 1 + 0.5) / 1.5), 1e-6
    assert bm25_strength(3.0, [1, 900], 1000) == pytest.approx(3.0 / (rare + common))
    assert bm25_strength(3.0, [1], 1000) > bm25_strength(3.0, [1, 5], 1000)
    assert bm25_strength(0.0, [1], 1000) == 0.0 and bm25_strength(2.0, [], 1000) == 0.0


def test_in_a_small_index_any_bm25_match_is_full_strength() -> None:
    """Below a hundred memories idf says little: a match counts as 1, no match as 0."""
    assert bm25_strength(1e-6, [2, 0], 3) == 1.0
    assert bm25_strength(0.0, [0], 3) == 0.0
    assert bm25_strength(1e-6, [2, 0], 100) < 0.01


def test_floored_drops_or_marks_hits_below_the_floor() -> None:
    """Hits below the floor are left out, or kept and marked; the ranking is unchanged."""
    hits = [{"id": i, "score": 1.0 - i / 10} for i in (1, 2, 3, 4)]
    ranking = Ranking(hits, similarity={1: 0.6, 2: 0.1, 3: 0.1, 4: 0.3}, lexical=frozenset({2}))
    assert [h["id"] for h in ranking.floored(FLOOR).hits] == [1, 2, 4]
    marked = ranking.floored(FLOOR, keep_below=True).hits
    assert [(h["id"], h.get("below_floor", False)) for h in marked] == [
        (1, False), (2, False), (3, True), (4, False)]
    assert ranking.hits == hits


def test_a_query_far_from_every_memory_gets_nothing_unless_its_words_match_well() -> None:
    """Below the floor no hit passes, not even one sharing words; a strong BM25 match lifts
    the same query over it."""
    ranking = Ranking([{"id": 1, "score": 1.0}], similarity={1: 0.3}, lexical=frozenset({1}),
                      strength=0.5)
    assert ranking.floored(FLOOR).hits == []
    assert ranking.floored(FLOOR, keep_below=True).hits == [
        {"id": 1, "score": 1.0, "below_floor": True}]
    stronger = Ranking(ranking.hits, ranking.similarity, ranking.lexical, strength=0.9)
    assert stronger.floored(FLOOR).hits == ranking.hits


def test_without_any_cosine_every_hit_stays() -> None:
    """With no model loaded nothing can be judged: the hits are returned as they are."""
    ranking = Ranking([{"id": 1, "score": 1.0}], similarity={}, lexical=frozenset({1}))
    assert ranking.floored(FLOOR).hits == ranking.hits


def test_neighbours_lift_a_candidate_next_to_a_strong_one() -> None:
    """A weak candidate beside a strong one (same project, ids close) overtakes a lone one."""
    fused = [(10, 1.0), (30, 0.5), (12, 0.4), (50, 0.4)]
    project = {10: "p", 12: "p", 30: "p", 50: "q"}
    ranked = with_neighbours(fused, project)
    assert [i for i, _ in ranked][:2] == [10, 12]
    assert dict(ranked)[50] == 0.4  # no neighbour: unchanged


def test_neighbours_never_cross_projects() -> None:
    """Adjacent ids in different projects do not lift each other."""
    ranked = dict(with_neighbours([(1, 1.0), (2, 0.1)], {1: "p", 2: "q"}))
    assert ranked[2] == 0.1
