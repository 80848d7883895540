"""Similarity thresholds from the user's own memories (pure).

Chance similarity differs per model (MiniLM's unrelated pairs sit near 0.1, a mis-pooled
decoder's near 0.7), so thresholds are set relative to it: pairs of memories in a project are
mostly unrelated, and a link should be far above that noise floor. Nearest-neighbour scores
show how much of the collection would connect, and pairs above the duplicate threshold are
reported as suspected duplicates.

The relevance floor (``relevance``, ``relevance_bm25``, ``relevance_foreign``, ``context``)
is not derived from memory pairs: it judges a query against memories, and memories that share
a format (a date, a speaker) are far closer to each other than a question is to them (LoCoMo's
turns: chance 0.54 ± 0.12 with MiniLM, while a question's closest turn is often below 0.5).
It is chosen per model on labelled queries (bench/locomo_variants.py) and only explained here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

LINK_SIGMAS = 3.0
RECALL_SIGMAS = 2.0
CLUSTER_MARGIN = 0.05
MIN_PAIRS = 50
PERCENTILES = (10, 25, 50, 75, 90, 99)


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
    """Thresholds far enough above chance similarity; the current ones with too few pairs."""
    if len(pairs) < MIN_PAIRS:
        return dict(current)
    floor, spread = float(pairs.mean()), float(pairs.std())
    link = float(np.clip(floor + LINK_SIGMAS * spread, 0.3, 0.95))
    return {**current,
            "link": round(link, 3),
            "cluster": round(min(link + CLUSTER_MARGIN, 0.97), 3),
            "recall": round(float(np.clip(floor + RECALL_SIGMAS * spread, 0.2, link)), 3)}


def explain(pairs: np.ndarray, suggested: Mapping[str, float], source: str) -> dict[str, str]:
    """Why each threshold has its value: one sentence per threshold."""
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
                        f" foreign evidence reaches this, else nothing; {floor}",
           "relevance_bm25": "how much the query's BM25 strength (best BM25 score over its"
                             f" words' summed idf) counts towards relevance; {floor}",
           "relevance_foreign": "how much a query loses per unit of foreign evidence (log of"
                                " 1 + the memories of other projects holding its commonest"
                                f" word this project never holds); {floor}",
           "context": f"hits of an answered query need this cosine or shared words; {floor}",
           "duplicate": "fixed: near-identical texts, reported, never merged automatically"}
    return {name: why[name] for name in suggested if name in why}
