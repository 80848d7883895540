"""A large scan split over two threads gives the plain product's scores bit for bit, whether
the helper takes its half or the caller takes it back, under scans from many threads, and
with an error in either half; the helper does take halves when a core is free."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from memlane.projections import split_scan as split_scan_module
from memlane.projections.split_scan import SPLIT_FROM_ROWS, SplitScan


def matrix(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, 384), dtype=np.float32),
            rng.standard_normal(384, dtype=np.float32))


@pytest.mark.parametrize("helper", [True, False])
def test_scores_are_the_plain_products_bit_for_bit(helper: bool) -> None:
    """With one BLAS thread, as the daemon runs numpy (a product on several splits its rows
    its own way): with a helper, or without one (every half taken back by the caller)."""
    script = f"""
import numpy as np
from memlane.projections.split_scan import SPLIT_FROM_ROWS, SplitScan
rng = np.random.default_rng(0)
for n in (10, SPLIT_FROM_ROWS - 1, SPLIT_FROM_ROWS, 20_001, 20_002, 20_003, 33_333):
    rows = rng.standard_normal((n, 384), dtype=np.float32)
    query = rng.standard_normal(384, dtype=np.float32)
    scores = SplitScan(helper={helper}).scores(rows, query)
    assert scores.dtype == np.float32, scores.dtype
    assert np.array_equal(scores, rows @ query), (n, np.flatnonzero(scores != rows @ query))
print("same")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"}, timeout=120)
    assert done.stdout.strip() == "same", done.stderr


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


def test_the_helper_takes_halves_when_a_core_is_free(monkeypatch: pytest.MonkeyPatch) -> None:
    """Of 200 scans, the helper thread scores some second halves (on 2 cores it takes
    nearly all; one is enough to show the hand-off works)."""
    threads: list[str] = []
    run = split_scan_module._Half.run

    def recorded(self: split_scan_module._Half) -> None:
        threads.append(threading.current_thread().name)
        run(self)

    monkeypatch.setattr(split_scan_module._Half, "run", recorded)
    rows, query = matrix(2 * SPLIT_FROM_ROWS)
    scan = SplitScan()
    for _ in range(200):
        scan.scores(rows, query)
    assert len(threads) == 200
    assert "memlane-scan-half" in threads


@pytest.mark.parametrize("helper", [True, False])
def test_an_error_in_the_callers_half_is_raised_and_its_other_half_not_run(
        monkeypatch: pytest.MonkeyPatch, helper: bool) -> None:
    runs: list[int] = []
    run = split_scan_module._Half.run

    def counted(self: split_scan_module._Half) -> None:
        runs.append(1)
        run(self)

    monkeypatch.setattr(split_scan_module._Half, "run", counted)
    rows, query = matrix(SPLIT_FROM_ROWS)
    with pytest.raises(ValueError):
        SplitScan(helper=helper).scores(rows, query[:100])  # the shapes do not fit
    assert runs in ([], [1])  # the helper may have begun it; the caller never runs it
    if not helper:
        assert runs == []


def test_an_error_in_the_helpers_half_reaches_the_caller(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(self: split_scan_module._Half) -> None:
        try:
            raise MemoryError("no room for the second half")
        except MemoryError as exc:
            self.error = exc
        finally:
            self.done.set()

    monkeypatch.setattr(split_scan_module._Half, "run", failing)
    rows, query = matrix(SPLIT_FROM_ROWS)
    with pytest.raises(MemoryError, match="second half"):
        SplitScan().scores(rows, query)


def test_a_forked_child_scans_without_its_parents_helper() -> None:
    """A child forked after the helper started gets none of its parent's threads: its scans
    are whole all the same (the helper is started anew there)."""
    rows, query = matrix(SPLIT_FROM_ROWS)
    split_scan_module.split_scan.scores(rows, query)  # the parent's helper is running
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave at once
        ok = np.allclose(split_scan_module.split_scan.scores(rows, query), rows @ query,
                         rtol=1e-5, atol=1e-5)
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
