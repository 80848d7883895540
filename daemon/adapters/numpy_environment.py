"""What the daemon's numpy reads from the environment when it loads: set on import, so import
this module before anything that imports numpy. A value the user set is kept.

- **One BLAS thread.** The daemon's matrix products are matrix-vector scans (the flat vector
  index, the cosines of a few candidates, routing) of about a millisecond on one core. OpenBLAS
  splits each over every core and waits for all its threads: on a loaded 2-core machine a
  10,000 x 384 scan took 9-19 ms p50 that way against 1.0 ms on one thread, and used four to
  seven times the CPU (bench.search_stages). ONNX Runtime has its own threads. A large scan
  of the flat matrix is split over two threads of memlane's own
  (:mod:`memlane.projections.split_scan`).
- **No transparent huge pages for numpy's arrays.** numpy asks the kernel for huge pages for
  every array of 4 MiB or more. On the virtual machine memlane was measured on, a first touch
  of such memory ran at ~100 MB/s against ~1.8 GB/s for normal pages: growing the flat vector
  matrix of a 100k-memory replay (copies of 50-150 MB) took seconds that way, and a growth
  step holds the vectors' lock meanwhile. The price: a scan of the flat matrix runs a little
  slower (profiled, not benchmarked: the session of 2026-12-04 23:25 UTC, its closing note).
"""

from __future__ import annotations

import os
import sys

SETTINGS = {"OPENBLAS_NUM_THREADS": "1", "NUMPY_MADVISE_HUGEPAGE": "0"}

LOADED_TOO_LATE = "numpy" in sys.modules  # the settings would have no effect: a bug to fix
for _name, _value in SETTINGS.items():
    os.environ.setdefault(_name, _value)
