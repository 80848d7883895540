"""A large scan split over two threads scores every row as the plain product does, whether
the helper takes its half or the caller takes it back, and under scans from many threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from memlane.projections.split_scan import SPLIT_FROM_ROWS, SplitScan


def matrix(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, 384), dtype=np.float32),
            rng.standard_normal(384, dtype=np.float32))


@pytest.mark.parametrize("rows", [10, SPLIT_FROM_ROWS - 1, SPLIT_FROM_ROWS, 20_001])
@pytest.mark.parametrize("helper", [True, False])
def test_scores_are_the_plain_products(rows: int, helper: bool) -> None:
    """With a helper, or without one (every half taken back by the caller)."""
    rows_, query = matrix(rows)
    scores = SplitScan(helper=helper).scores(rows_, query)
    assert scores.dtype == np.float32
    assert scores.shape == (rows,)
    np.testing.assert_allclose(scores, rows_ @ query, rtol=1e-5, atol=1e-5)
    # the same order: the best rows are the best rows
    assert list(np.argsort(-scores)[:10]) == list(np.argsort(-(rows_ @ query))[:10])


def test_scans_from_many_threads_each_get_their_own_scores() -> None:
    """Halves from scans under way at once never mix (each writes its own output)."""
    scan = SplitScan()
    inputs = [matrix(SPLIT_FROM_ROWS + 1000 * i, seed=i) for i in range(4)]
    wrong: list[int] = []

    def scanner(i: int) -> None:
        rows, query = inputs[i]
        expected = rows @ query
        for _ in range(30):
            if not np.allclose(scan.scores(rows, query), expected, rtol=1e-5, atol=1e-5):
                wrong.append(i)

    threads = [threading.Thread(target=scanner, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []

