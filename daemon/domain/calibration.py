"""Thresholds from the user's own memories and queries (pure).

Chance similarity differs per model (MiniLM's unrelated pairs sit near 0.1, a mis-pooled
decoder's near 0.7), so the link, cluster and recall thresholds are set relative to it: pairs
of memories in a project are mostly unrelated, and a link should be far above that noise floor.
Nearest-neighbour scores show how much of the collection would connect, and pairs above the
duplicate threshold are reported as suspected duplicates.

The relevance floor judges a query against memories, not memories against each other
(memories that share a format are far closer to each other than a question is to them), so
``relevance`` is set on probes: the user's recent recorded queries (each was answered in its
project), judged by the floor's evidence (:meth:`~memlane.daemon.domain.ranking.Floor.evidence`)
in their own project and, as clean negatives, in other projects where they were not asked.
It becomes the lowest value answering 90% of the negatives with nothing, unless that holds
back more than one point more of the own queries than the current value does; it is never
lowered (a query the floor held back was never recorded, so none shows what lowering would
gain). The floor's weights (``relevance_bm25``, ``relevance_foreign``) and ``context`` need
labelled queries: they are chosen per model (bench/locomo_variants.py) and only explained
here.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

LINK_SIGMAS = 3.0
RECALL_SIGMAS = 2.0
CLUSTER_MARGIN = 0.05
MIN_PAIRS = 50
PERCENTILES = (10, 25, 50, 75, 90, 99)
NEGATIVES_EMPTY = 0.9  # questions asked in the wrong project that should get nothing
OWN_COST = 0.01  # more of the user's own answered queries the floor may hold back for that
MIN_PROBES = 30  # own and cross-project probes each: fewer move a share in steps over 3 points
MIN_PROJECT = 20  # live memories a project needs to be a plausible wrong place to ask
WRONG_PROJECTS = 3  # other projects each query is asked in (bounds the work per query)
STEP = 0.001  # relevance is suggested to 3 decimals


def distribution(values: Sequence[float]) -> dict[str, float]:
    if not len(values):
        return {}
    return {f"p{p}": round(float(np.percentile(values, p)), 4) for p in PERCENTILES}


def pair_scores(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nearest-neighbour cosine per memory, cosine of every distinct pair) of unit vectors."""
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.max(axis=1) if len(vectors) > 1 else np.zeros(0)
    pairs = similarity[np.triu_indices(len(vectors), k=1)]
    return nearest, pairs


def suggest(pairs: np.ndarray, current: Mapping[str, float]) -> dict[str, float]:
    """Link, cluster and recall far enough above chance similarity (the current ones with too
    few pairs); the others as they are."""
    if len(pairs) < MIN_PAIRS:
        return dict(current)
    floor, spread = float(pairs.mean()), float(pairs.std())
    link = float(np.clip(floor + LINK_SIGMAS * spread, 0.3, 0.95))
    return {**current,
            "link": round(link, 3),
            "cluster": round(min(link + CLUSTER_MARGIN, 0.97), 3),
            "recall": round(float(np.clip(floor + RECALL_SIGMAS * spread, 0.2, link)), 3)}


def explain(pairs: np.ndarray, suggested: Mapping[str, float], source: str, *,
            relevance: str) -> dict[str, str]:
    """Why each threshold has its value: one sentence per threshold (``relevance``: why the
    relevance threshold has its value, :attr:`RelevanceChoice.why`)."""
    if len(pairs) < MIN_PAIRS:
        chance = f"kept: fewer than {MIN_PAIRS} pairs of memories in a project to measure"
        link = cluster = recall = chance
    else:
        chance = f"chance similarity {pairs.mean():.3f} ± {pairs.std():.3f} (pairs' mean ± spread)"
        link = f"{LINK_SIGMAS:g} spreads above {chance}: memories this close are linked"
        cluster = f"link + {CLUSTER_MARGIN}: every pair of a cluster is closer than a link"
        recall = f"{RECALL_SIGMAS:g} spreads above chance: a hit this close counts as recalled"
    floor = f"kept ({source or 'the model spec'}): needs labelled queries, not memory pairs"
    why = {"link": link, "cluster": cluster, "recall": recall,
           "relevance": "a query gets hits only if its closest memory's cosine plus"
                        " relevance_bm25 x its BM25 strength minus relevance_foreign x its"
                        f" foreign evidence reaches this, else nothing; {relevance}",
           "relevance_bm25": "how much the query's BM25 strength (best BM25 score over its"
                             f" words' summed idf) counts towards relevance; {floor}",
           "relevance_foreign": "how much a query loses per unit of foreign evidence (log of"
                                " 1 + the memories of other projects holding its commonest"
                                f" word this project never holds); {floor}",
           "context": f"hits of an answered query need this cosine or shared words; {floor}",
           "duplicate": "fixed: near-identical texts, reported, never merged automatically"}
    return {name: why[name] for name in suggested if name in why}


def probe_queries(recalls: Iterable[tuple[int, str, str]], limit: int) -> list[tuple[str, str]]:
    """Distinct (query, project) of recorded recalls (seq, query, project), newest first;
    a query a forget blanked is left out."""
    newest = sorted(recalls, key=lambda recall: -recall[0])
    return list(dict.fromkeys((query, project) for _, query, project in newest
                              if query.strip()))[:limit]


def wrong_projects(query: str, own: str, sizes: Mapping[str, int]) -> list[str]:
    """Up to :data:`WRONG_PROJECTS` projects other than ``own`` with :data:`MIN_PROJECT` live
    memories or more (``sizes``) to ask ``query`` in by mistake: taken in name order from a
    place the query's checksum picks, so each run picks the same and queries spread."""
    eligible = sorted(p for p, n in sizes.items() if n >= MIN_PROJECT and p != own)
    if not eligible:
        return []
    start = zlib.crc32(query.encode()) % len(eligible)
    return (eligible[start:] + eligible[:start])[:WRONG_PROJECTS]


@dataclass(frozen=True)
class Probes:
    """The floor's evidence (under the current weights) for the user's recorded queries; a
    query with nothing to judge in a project counts as ``-inf`` there."""

    own: Sequence[float]  # each query in the project it was answered in
    negative: Sequence[float]  # the same queries in projects they were not asked in
    projects: int  # projects with at least MIN_PROJECT live memories


class RelevanceChoice(NamedTuple):
    value: float
    why: str


def choose_relevance(probes: Probes, current: float) -> RelevanceChoice:
    """The lowest value (3 decimals) answering :data:`NEGATIVES_EMPTY` of the negatives with
    nothing, unless it holds back more than :data:`OWN_COST` more of the own queries than
    ``current`` does: then the highest value within that cost. Never below ``current``: own
    queries were recorded only when they passed it, so they cannot show what a lower value
    would gain. ``current`` with too few probes."""
    kept = _too_few(probes)
    if kept is not None:
        return RelevanceChoice(current, kept)
    own, negative = np.asarray(probes.own, float), np.asarray(probes.negative, float)
    grid = _grid(np.concatenate([own, negative, [current]]))
    held = _below(own, grid)
    affordable = held <= _below(own, np.array([current]))[0] + OWN_COST + 1e-9
    reached = _below(negative, grid) >= NEGATIVES_EMPTY
    index = int(np.argmax(reached))  # the top of the grid is above every probe
    if grid[index] <= current:
        value = current
        why = (f"kept: it already answers {NEGATIVES_EMPTY:.0%} or more of the probes with"
               " nothing, and your queries cannot show what a lower value would gain (a query"
               " the floor held back was never recorded)")
    elif affordable[index]:
        value = float(grid[index])
        why = f"the lowest value answering {NEGATIVES_EMPTY:.0%} of the probes with nothing"
    else:
        value = max(current, float(grid[affordable][-1]))
        why = (f"answering {NEGATIVES_EMPTY:.0%} of the probes with nothing is not reachable"
               f" within {OWN_COST * 100:g} more point(s) of your queries held back, so the"
               " highest value within that")
    return RelevanceChoice(value, _with_figures(why, probes, current, value))


def probe_report(probes: Probes, *, current: float, suggested: float) -> dict[str, Any]:
    """The probe counts, and the share of negatives answered with nothing and of own queries
    held back at the current and at the suggested value (None without probes)."""
    own, negative = np.asarray(probes.own, float), np.asarray(probes.negative, float)

    def at(value: float) -> dict[str, float | None]:
        return {"value": value, "negatives_empty": _share(negative, value),
                "own_held_back": _share(own, value)}

    return {"own": len(own), "negative": len(negative), "projects": probes.projects,
            "current": at(current), "suggested": at(suggested)}


def _too_few(probes: Probes) -> str | None:
    record = ("search with `memlane recall` or `memlane search --recall` in your projects to"
              " record some")
    if probes.projects < 2:
        return (f"kept: {probes.projects} project(s) with {MIN_PROJECT}+ memories, needs 2"
                " (your queries are probed in projects they were not asked in)")
    if len(probes.own) < MIN_PROBES:
        return f"kept: {len(probes.own)} recorded queries, needs {MIN_PROBES}; {record}"
    if len(probes.negative) < MIN_PROBES:
        return (f"kept: {len(probes.negative)} cross-project probes, needs {MIN_PROBES};"
                f" {record}")
    return None


def _below(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The share of ``values`` below each value of ``grid`` (answered with nothing there)."""
    return np.searchsorted(np.sort(values), grid, side="left") / max(len(values), 1)


def _share(values: np.ndarray, value: float) -> float | None:
    return round(float(_below(values, np.array([value]))[0]), 4) if len(values) else None


def _grid(values: np.ndarray) -> np.ndarray:
    """Every 3-decimal value from below the lowest finite one of ``values`` to above the
    highest."""
    finite = values[np.isfinite(values)]
    low, high = math.floor(finite.min() / STEP) - 1, math.ceil(finite.max() / STEP) + 1
    return np.round(np.arange(low, high + 1) * STEP, 3)


def _with_figures(why: str, probes: Probes, current: float, value: float) -> str:
    own, negative = np.asarray(probes.own, float), np.asarray(probes.negative, float)
    return (f"on your {len(own)} recorded queries and {len(negative)} cross-project probes"
            f" (the same queries in projects they were not asked in), {why}: at {value}"
            f" {_share(negative, value):.1%} of the probes get nothing and"
            f" {_share(own, value):.1%} of your queries are held back"
            f" ({_share(negative, current):.1%} and {_share(own, current):.1%} at the"
            f" current {current})")
