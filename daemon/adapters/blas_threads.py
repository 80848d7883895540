"""One BLAS thread for the daemon's numpy, asked for on import, before numpy loads.

The daemon's matrix products are matrix-vector scans (the flat vector index, the cosines of a
few candidates, routing) of about a millisecond on one core. OpenBLAS splits each over every
core and waits for all its threads: on a loaded 2-core machine a 10,000 x 384 scan took 9-19 ms
p50 that way against 1.0 ms on one thread, and used four to seven times the CPU
(bench.search_stages). OpenBLAS reads the count once, when numpy loads it: import this module
before anything that imports numpy. A count the user set is kept. ONNX Runtime has its own
threads and is not affected.
"""

from __future__ import annotations

import os
import sys

VARIABLE = "OPENBLAS_NUM_THREADS"

LOADED_TOO_LATE = "numpy" in sys.modules  # the count would have no effect: a bug to fix
os.environ.setdefault(VARIABLE, "1")
