"""Similarity thresholds from the user's own memories (pure).

Chance similarity differs per model (MiniLM's unrelated pairs sit near 0.1, a mis-pooled
decoder's near 0.7), so thresholds are set relative to it: pairs of memories in a project are
mostly unrelated, and a link should be far above that noise floor. Nearest-neighbour scores
show how much of the collection would connect, and pairs above the duplicate threshold are
reported as suspected duplicates.
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
