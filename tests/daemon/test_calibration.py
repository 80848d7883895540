"""Calibration explains every threshold and moves the relevance floor only on the user's own
recorded queries, under its rule."""

from __future__ import annotations

import numpy as np

from memlane.daemon.domain.calibration import (
    MIN_PROBES, Probes, choose_relevance, explain, pair_scores, probe_queries, probe_report,
    suggest, wrong_projects)
from memlane.daemon.domain.models import BUILT_IN

NO_PROBES = Probes(own=[], negative=[], projects=0)


def test_every_shipped_threshold_is_explained_and_the_floor_is_kept_without_probes() -> None:
    """Each threshold of each model gets a why; without recorded queries calibration keeps the
    whole relevance floor and says why."""
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(40, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    _, pairs = pair_scores(vectors)
    for spec in BUILT_IN.values():
        relevance = choose_relevance(NO_PROBES, spec.thresholds["relevance"])
        suggested = {**suggest(pairs, spec.thresholds), "relevance": relevance.value}
        why = explain(pairs, suggested, spec.thresholds_source, relevance=relevance.why)
        assert set(why) == set(spec.thresholds) and all(why.values())
        for name in ("relevance", "relevance_bm25", "relevance_foreign", "context"):
            assert suggested[name] == spec.thresholds[name]
        for name in ("relevance_bm25", "relevance_foreign", "context"):
            assert spec.thresholds_source in why[name]
        assert why["relevance"].endswith(relevance.why) and relevance.why.startswith("kept")


def test_the_floor_is_ordered_and_qwen3_says_it_is_provisional() -> None:
    """context <= relevance, BM25 and foreign weights >= 0; Qwen3's values are marked
    unmeasured."""
    for spec in BUILT_IN.values():
        t = spec.thresholds
        assert t["context"] <= t["relevance"] and t["relevance_bm25"] >= 0
        assert t["relevance_foreign"] >= 0
        assert spec.thresholds_source
    assert BUILT_IN["qwen3-embedding-0.6b-int8"].thresholds_source.startswith("provisional")


def test_the_floor_rises_to_the_lowest_value_answering_nine_in_ten_negatives_with_nothing(
        ) -> None:
    """When it costs the user's own queries nothing, relevance rises to the lowest value (3
    decimals) below which 90% of the cross-project probes fall."""
    probes = Probes(own=np.linspace(0.6, 1.0, 50), negative=np.linspace(0.0, 0.5, 100),
                    projects=3)
    choice = choose_relevance(probes, 0.3)
    assert choice.value == 0.45  # the 90th of 100 negatives is 0.4495
    assert "90%" in choice.why and "not reachable" not in choice.why
    report = probe_report(probes, current=0.3, suggested=choice.value)
    assert report["own"] == 50 and report["negative"] == 100 and report["projects"] == 3
    assert report["current"] == {"value": 0.3, "negatives_empty": 0.6, "own_held_back": 0.0}
    assert report["suggested"] == {"value": 0.45, "negatives_empty": 0.9, "own_held_back": 0.0}
    assert "90.0%" in choice.why and "0.0%" in choice.why and "60.0%" in choice.why


def test_the_floor_is_never_lowered_by_the_users_own_queries() -> None:
    """A floor that already answers 90% of the probes with nothing stays: the user's queries
    were recorded only when they passed it, so they cannot show what lowering would gain."""
    probes = Probes(own=np.linspace(0.6, 1.0, 50), negative=np.linspace(0.0, 0.5, 100),
                    projects=3)
    choice = choose_relevance(probes, 0.545)
    assert choice.value == 0.545
    assert "kept" in choice.why and "never recorded" in choice.why and "100.0%" in choice.why


def test_the_cost_to_the_users_own_queries_caps_the_floor() -> None:
    """When reaching 90% would hold back more than one point more of the user's own queries
    than the current value does, relevance is the highest value within that point, and the
    explanation says the target is out of reach and what share it reaches."""
    own = 0.4005 + 0.01 * np.arange(100)  # 10 below the current 0.5
    negative = 0.3005 + 0.006 * np.arange(100)  # 90% of them only below 0.835
    choice = choose_relevance(Probes(own=own, negative=negative, projects=2), 0.5)
    assert choice.value == 0.51  # 11 held back: one point more than at 0.5
    assert "not reachable" in choice.why and "35.0%" in choice.why
    report = probe_report(Probes(own=own, negative=negative, projects=2), current=0.5,
                          suggested=choice.value)
    assert report["current"]["own_held_back"] == 0.1
    assert report["suggested"] == {"value": 0.51, "negatives_empty": 0.35, "own_held_back": 0.11}


def test_too_few_probes_keep_the_floor_and_say_why() -> None:
    """Fewer than 30 own or 30 cross-project probes, or fewer than two projects big enough to
    be asked in by mistake, keep the current value, with the count and what to do."""
    many = np.linspace(0.0, 0.3, 60)
    few_own = choose_relevance(Probes(own=np.full(12, 0.8), negative=many, projects=3), 0.545)
    assert few_own.value == 0.545
    assert few_own.why.startswith(f"kept: 12 recorded queries, needs {MIN_PROBES}")
    assert "memlane search --recall" in few_own.why
    few_negative = choose_relevance(Probes(own=np.full(40, 0.8), negative=many[:20],
                                           projects=2), 0.545)
    assert few_negative.value == 0.545 and "20 cross-project probes" in few_negative.why
    one_project = choose_relevance(Probes(own=np.full(40, 0.8), negative=[], projects=1), 0.5)
    assert one_project.value == 0.5 and "1 project" in one_project.why
    assert probe_report(NO_PROBES, current=0.5, suggested=0.5)["current"] == {
        "value": 0.5, "negatives_empty": None, "own_held_back": None}


def test_probe_queries_are_distinct_per_project_newest_first_and_capped() -> None:
    """Recalls of one search (one query, many memories) make one probe; the same question in
    another project is another probe; the newest come first; a forgotten (blanked) query is
    none."""
    recalls = [(5, "q1", "a"), (6, "q1", "a"), (7, "q2", "a"), (9, "q1", "b"), (8, "q3", "a"),
               (10, "", "a")]
    assert probe_queries(recalls, 10) == [("q1", "b"), ("q3", "a"), ("q2", "a"), ("q1", "a")]
    assert probe_queries(recalls, 2) == [("q1", "b"), ("q3", "a")]


def test_wrong_projects_are_other_big_enough_projects_chosen_the_same_each_time() -> None:
    """Up to three projects other than the query's own, each with 20+ live memories; the
    choice depends only on the query, and differs between queries."""
    sizes = {"own": 50, "small": 19, **{f"p{i}": 20 + i for i in range(6)}}
    picked = {q: wrong_projects(q, "own", sizes) for q in (f"question {i}" for i in range(20))}
    for query, projects in picked.items():
        assert len(projects) == 3 == len(set(projects))
        assert not {"own", "small"} & set(projects)
        assert wrong_projects(query, "own", sizes) == projects
    assert len({tuple(p) for p in picked.values()}) > 1
    assert wrong_projects("q", "own", {"own": 50, "other": 30}) == ["other"]


def test_a_current_value_off_the_grid_is_not_lowered_by_the_cost_cap() -> None:
    """With a current value finer than the 3-decimal grid, the cost cap's highest affordable
    grid value may sit below it: the current value is kept."""
    probes = Probes(own=np.r_[np.full(50, 0.5407), np.full(50, 0.9)],
                    negative=np.full(100, 0.8), projects=2)
    assert choose_relevance(probes, 0.5405).value >= 0.5405
