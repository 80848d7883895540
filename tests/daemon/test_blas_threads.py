"""The daemon asks OpenBLAS for one thread before numpy loads, and keeps a count the user set."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = ("import memlane.daemon.__main__, os, sys;"
         " from memlane.daemon.adapters import blas_threads; print(os.environ['OPENBLAS_NUM_THREADS'], blas_threads.LOADED_TOO_LATE,"
         " 'numpy' in sys.modules)")


def probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    return subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_the_daemon_asks_for_one_blas_thread_before_numpy_loads() -> None:
    """Importing the daemon's entry point loads numpy, but only after the count is set."""
    assert probe() == "1 False True"


def test_a_count_the_user_set_is_kept() -> None:
    assert probe(OPENBLAS_NUM_THREADS="2") == "2 False True"
