"""The usage detector holds its measured precision and recall on the labelled turns."""

from __future__ import annotations

from bench.bench_usage import load, score


def test_the_usage_detector_is_precise_on_at_least_100_labelled_turns() -> None:
    """A false use promotes a memory nobody used: precision matters more than recall."""
    result = score(load())
    assert result["turns"] >= 100
    assert result["precision"] >= 0.95 and result["recall"] >= 0.85, result
