"""A large matrix-vector scan split over two threads, its second half taken back when no
core picks it up.

The daemon's numpy runs one BLAS thread (:mod:`memlane.daemon.adapters.numpy_environment`):
OpenBLAS's own threads wait busily for each other, and on a loaded 2-core machine that made a
scan many times slower. A scan of the flat matrix past a few thousand rows is bound by memory
bandwidth, which a second core doubles. So the caller hands the second half of the rows to a
helper thread and scores the first half itself; then it takes the second half back if the
helper has not begun it (every core busy, or another scan's half ahead of it), else waits for
the helper, already at work. Nothing spins: on a busy machine a scan costs what one thread's
would, plus a hand-off.
"""

from __future__ import annotations

import os
import queue
import threading

import numpy as np

SPLIT_FROM_ROWS = 8192  # a smaller scan (~0.3 ms) gains less than a hand-off costs
# The halves meet at a multiple of this many rows: BLAS scores rows in small blocks, and a row
# placed alike in its block gets the same bits as in one product over all the rows.
ALIGN_ROWS = 256


class _Half:
    """The rows a helper may score into ``out``; whoever takes it first scores it."""

    def __init__(self, rows: np.ndarray, query: np.ndarray, out: np.ndarray) -> None:
        self.rows, self.query, self.out = rows, query, out
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._taken = False

    def take(self) -> bool:
        with self._lock:
            taken, self._taken = self._taken, True
        return not taken

    def run(self) -> None:
        try:
            np.dot(self.rows, self.query, out=self.out)
        except BaseException as exc:  # handed to the caller, who raises it
            self.error = exc
        finally:
            self.done.set()


class SplitScan:
    """Scores rows against a query, on two threads when the rows are many."""

    def __init__(self, *, helper: bool = True) -> None:
        self._halves: queue.SimpleQueue[_Half] = queue.SimpleQueue()
        self._helper = helper  # without one (tests), every half is taken back
        self._started = False
        self._start_lock = threading.Lock()

    def scores(self, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
        """``rows @ query`` for a 2-D ``rows`` and a 1-D ``query``, bit for bit."""
        if len(rows) < SPLIT_FROM_ROWS:
            return np.asarray(rows @ query)
        out = np.empty(len(rows), dtype=np.result_type(rows, query))
        cut = len(rows) // 2 // ALIGN_ROWS * ALIGN_ROWS
        half = _Half(rows[cut:], query, out[cut:])
        self._hand_off(half)
        try:
            np.dot(rows[:cut], query, out=out[:cut])
        except BaseException:
            if not half.take():  # the helper is at it: no thread reads the rows once we return
                half.done.wait()
            raise
        if half.take():
            half.run()
        else:
            half.done.wait()
        if half.error is not None:
            raise half.error
        return out

    def forget_helper(self) -> None:
        """Start anew without a helper (a forked child has none of its parent's threads)."""
        self._halves = queue.SimpleQueue()
        self._started = False
        self._start_lock = threading.Lock()

    def _hand_off(self, half: _Half) -> None:
        if not self._helper:
            return
        if not self._started:
            with self._start_lock:
                if not self._started:
                    try:
                        threading.Thread(target=self._serve, name="memlane-scan-half",
                                         daemon=True).start()
                    except RuntimeError:  # no thread to be had: the caller scores it all
                        self._helper = False
                        return
                    self._started = True
        self._halves.put(half)

    def _serve(self) -> None:
        while True:
            half = self._halves.get()
            if half.take():
                half.run()
            del half  # hold no rows while waiting for the next


split_scan = SplitScan()  # the process's one helper
os.register_at_fork(after_in_child=split_scan.forget_helper)
