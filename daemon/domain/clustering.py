"""Which memories form a cluster worth consolidating (pure).

A cluster is 3 to :data:`MAX_SIZE` memories of one project in which *every* pair is linked at
or above the cluster threshold (complete linkage, so no chains of loosely related notes).
Clusters grow greedily from the best-connected memory: each step adds the candidate whose
weakest similarity to the members is highest. A memory is in at most one open cluster, and a
proven memory never joins a cluster with its own sources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from itertools import combinations

MIN_SIZE = 3
MAX_SIZE = 8

Pair = tuple[int, int]


@dataclass(frozen=True)
class Cluster:
    members: tuple[int, ...]
    cohesion: float  # the weakest pairwise similarity inside the cluster


def find_clusters(links: Mapping[Pair, float], eligible: Set[int], *, threshold: float,
                  forbidden: Iterable[Pair] = ()) -> list[Cluster]:
    """Disjoint complete-linkage clusters among ``eligible`` memories."""
    graph = _graph(links, eligible, threshold, {_key(a, b) for a, b in forbidden})
    used: set[int] = set()
    clusters = []
    for seed in sorted(graph, key=lambda m: (-len(graph[m]), -max(graph[m].values()), m)):
        if seed in used:
            continue
        members = _grow(graph, seed, used)
        if len(members) >= MIN_SIZE:
            used.update(members)
            clusters.append(Cluster(tuple(sorted(members)), _cohesion(graph, members)))
    return clusters


def _key(a: int, b: int) -> Pair:
    return (a, b) if a < b else (b, a)


def _graph(links: Mapping[Pair, float], eligible: Set[int], threshold: float,
           forbidden: Set[Pair]) -> dict[int, dict[int, float]]:
    graph: dict[int, dict[int, float]] = {}
    for (a, b), similarity in links.items():
        if (similarity >= threshold and a in eligible and b in eligible and a != b
                and _key(a, b) not in forbidden):
            graph.setdefault(a, {})[b] = similarity
            graph.setdefault(b, {})[a] = similarity
    return graph


def _grow(graph: dict[int, dict[int, float]], seed: int, used: Set[int]) -> list[int]:
    members = [seed]
    candidates = set(graph[seed]) - used
    while candidates and len(members) < MAX_SIZE:
        best = max(candidates, key=lambda c: (min(graph[c][m] for m in members), -c))
        members.append(best)
        candidates = {c for c in candidates if c != best and best in graph[c]}
    return members


def _cohesion(graph: dict[int, dict[int, float]], members: list[int]) -> float:
    return round(min(graph[a][b] for a, b in combinations(members, 2)), 6)
