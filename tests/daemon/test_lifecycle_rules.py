"""The pure lifecycle rules: linking, clustering, ageing, recalls."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from memlane.daemon.domain.aging import (
    AgePolicy,
    MemoryFacts,
    age_of,
    aging_events,
    decide_aging,
    looks_substantive,
)
from memlane.daemon.domain.clustering import MAX_SIZE, find_clusters
from memlane.daemon.domain.linking import MAX_LINKS, Neighbour, decide_links
from memlane.daemon.domain.recall import RecallHit, decide_recalls
from memlane.events.model import Expired, Linked, Promoted, Recalled, Reprieved


def test_links_stay_inside_the_project_and_above_the_threshold() -> None:
    neighbours = [Neighbour(1, "p", 0.9), Neighbour(2, "q", 0.95), Neighbour(3, "p", 0.5),
                  Neighbour(9, "p", 1.0), Neighbour(4, "p", 0.7)]
    links = decide_links(9, "p", neighbours, threshold=0.6, linked=frozenset())
    assert links == [Linked(a=1, b=9, similarity=0.9), Linked(a=4, b=9, similarity=0.7)]


def test_existing_links_are_not_repeated_and_links_are_capped() -> None:
    neighbours = [Neighbour(i, "p", 0.99 - i / 1000) for i in range(1, 40)]
    links = decide_links(100, "p", neighbours, threshold=0.6, linked={1, 2})
    assert len(links) == MAX_LINKS and {1, 2}.isdisjoint({link.a for link in links})


def clique(members: list[int], similarity: float) -> dict[tuple[int, int], float]:
    return {(a, b): similarity for i, a in enumerate(members) for b in members[i + 1:]}


def test_a_clique_is_a_cluster_but_a_chain_is_not() -> None:
    links = {**clique([1, 2, 3, 4], 0.8), (10, 11): 0.9, (11, 12): 0.9, (12, 13): 0.9}
    clusters = find_clusters(links, set(range(20)), threshold=0.7)
    assert [c.members for c in clusters] == [(1, 2, 3, 4)]
    assert clusters[0].cohesion == 0.8


def test_ineligible_memories_and_weak_pairs_break_clusters() -> None:
    links = {**clique([1, 2, 3], 0.8), (1, 3): 0.65}
    assert find_clusters(links, {1, 2, 3}, threshold=0.7) == []
    assert find_clusters(clique([1, 2, 3], 0.8), {1, 2}, threshold=0.7) == []


def test_a_proven_memory_never_clusters_with_its_sources() -> None:
    links = clique([1, 2, 3, 50], 0.9)
    clusters = find_clusters(links, {1, 2, 3, 50}, threshold=0.7, forbidden=[(50, 1)])
    assert all(not {1, 50} <= set(c.members) for c in clusters)


@given(st.dictionaries(st.tuples(st.integers(0, 25), st.integers(0, 25)),
                       st.floats(0, 1), max_size=120), st.floats(0.3, 0.9))
def test_clusters_are_disjoint_complete_and_bounded(links: dict[tuple[int, int], float],
                                                    threshold: float) -> None:
    links = {(a, b): s for (a, b), s in links.items() if a < b}
    clusters = find_clusters(links, set(range(26)), threshold=threshold)
    seen: set[int] = set()
    for cluster in clusters:
        assert 3 <= len(cluster.members) <= MAX_SIZE and seen.isdisjoint(cluster.members)
        seen.update(cluster.members)
        for i, a in enumerate(cluster.members):
            for b in cluster.members[i + 1:]:
                assert links.get((a, b), 0) >= threshold


def facts(memory: int, **overrides: object) -> MemoryFacts:
    values: dict[str, object] = {"id": memory, "project": "p", "kind": "note", "text": "ok",
                                 "degree": 0, "reprieves": 0, "refreshed_seq": memory}
    return MemoryFacts(**{**values, **overrides})  # type: ignore[arg-type]


STORED = {"p": list(range(1, 101)), "q": [500]}
POLICY = AgePolicy(limit=40, max_reprieves=3)


def test_age_counts_stores_in_the_same_project_since_the_last_sign_of_life() -> None:
    assert age_of(facts(10), STORED["p"]) == 90
    assert age_of(facts(10, refreshed_seq=95), STORED["p"]) == 5
    assert age_of(facts(10, project="q"), STORED["q"]) == 1


def test_isolated_old_noise_expires_with_a_reason() -> None:
    decisions = decide_aging([facts(10), facts(70)], STORED, {}, POLICY)
    assert [(d.memory, d.action) for d in decisions] == [(10, "expire")]
    assert "90 stores" in decisions[0].reason
    events = aging_events(decisions, {})
    assert isinstance(events[0], Expired) and events[0].reason.startswith("aged:")


def test_linked_clustered_and_protected_memories_never_age_out() -> None:
    kept = [facts(1, degree=1), facts(2, clustered=True), facts(3, kind="decision"),
            facts(4, kind="user-note")]
    assert decide_aging(kept, STORED, {}, POLICY) == []


def test_substance_earns_up_to_three_reprieves() -> None:
    decisions = decide_aging([facts(10, reprieves=r) for r in range(4)], STORED,
                             {10: True}, POLICY)
    assert [d.action for d in decisions] == ["reprieve"] * 3 + ["expire"]
    events = aging_events(decisions[:1], {10: 0})
    assert events == [Reprieved(memory=10, count=1, reason=decisions[0].reason)]


def test_offline_substance_heuristic() -> None:
    assert looks_substantive("Run `pytest -x --lf` to rerun only the last failures quickly")
    assert looks_substantive("Never call the payments sandbox from CI because it rate limits us")
    assert not looks_substantive("ok running tests now")
    assert not looks_substantive("looked at it again later today, nothing much")


def test_recalls_need_the_floor_and_the_third_promotes() -> None:
    hits = [RecallHit(1, 1, 1.0, 0.8, "active"), RecallHit(2, 2, 0.5, 0.2, "active"),
            RecallHit(3, 3, 0.4, None, "active"), RecallHit(4, 4, 0.3, 0.9, "proven")]
    events = decide_recalls("q", hits, floor=0.35, recalls={1: 2, 4: 2})
    assert [type(e) for e in events] == [Recalled, Promoted, Recalled]
    assert events[1] == Promoted(memory=1, reason="recalled 3 times")


def test_calibration_sets_thresholds_above_chance_similarity() -> None:
    import numpy as np

    from memlane.daemon.domain.calibration import pair_scores, suggest

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(60, 32))
    vectors[1] = vectors[0] + 0.01  # a near duplicate
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    nearest, pairs = pair_scores(vectors)
    assert len(pairs) == 60 * 59 // 2 and nearest[0] > 0.99
    current = {"link": 0.6, "cluster": 0.6, "recall": 0.35, "duplicate": 0.95}
    suggested = suggest(pairs, current)
    assert pairs.mean() + 2.9 * pairs.std() < suggested["link"] < 0.95
    assert suggested["cluster"] > suggested["link"] > suggested["recall"]
    assert suggested["duplicate"] == 0.95
    assert suggest(pairs[:10], current) == current  # too little data: keep what is there
