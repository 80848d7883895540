"""The daemon sets numpy's environment before numpy loads (one BLAS thread, no huge pages for
its arrays), and keeps a value the user set."""

from __future__ import annotations

import os
import subprocess
import sys

from memlane.daemon.adapters.numpy_environment import SETTINGS

PROBE = ("import memlane.daemon.__main__, os, sys, numpy;"
         " from memlane.daemon.adapters import numpy_environment as n;"
         " print(os.environ['OPENBLAS_NUM_THREADS'], n.LOADED_TOO_LATE, 'numpy' in sys.modules,"
         " numpy._core.multiarray._get_madvise_hugepage())")


def probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    return subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_the_daemon_sets_numpy_up_before_numpy_loads() -> None:
    """Importing the daemon's entry point loads numpy, but only after the settings: one
    OpenBLAS thread, and numpy's huge-page advice off."""
    assert probe() == "1 False True False"


def test_values_the_user_set_are_kept() -> None:
    assert probe(OPENBLAS_NUM_THREADS="2", NUMPY_MADVISE_HUGEPAGE="1") == "2 False True True"
