"""Calibration explains every threshold and leaves the relevance floor to labelled queries."""

from __future__ import annotations

import numpy as np

from memlane.daemon.domain.calibration import explain, pair_scores, suggest
from memlane.daemon.domain.models import BUILT_IN


def test_every_shipped_threshold_is_explained_and_the_floor_is_kept() -> None:
    """Each threshold of each model gets a why; calibration never moves the relevance floor."""
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(40, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    _, pairs = pair_scores(vectors)
    for spec in BUILT_IN.values():
        suggested = suggest(pairs, spec.thresholds)
        why = explain(pairs, suggested, spec.thresholds_source)
        assert set(why) == set(spec.thresholds) and all(why.values())
        for name in ("relevance", "relevance_bm25", "relevance_foreign", "context"):
            assert suggested[name] == spec.thresholds[name]
            assert spec.thresholds_source in why[name]


def test_the_floor_is_ordered_and_qwen3_says_it_is_provisional() -> None:
    """context <= relevance, BM25 and foreign weights >= 0; Qwen3's values are marked
    unmeasured."""
    for spec in BUILT_IN.values():
        t = spec.thresholds
        assert t["context"] <= t["relevance"] and t["relevance_bm25"] >= 0
        assert t["relevance_foreign"] >= 0
        assert spec.thresholds_source
    assert BUILT_IN["qwen3-embedding-0.6b-int8"].thresholds_source.startswith("provisional")
