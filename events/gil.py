"""Big jobs in small calls: no single C call may hold the GIL for long, or the daemon's event
loop stands still meanwhile (issues 13 and 20: ~70k records of a 64 MiB segment compared or
freed in one call held it for 20-55 ms).

Joining is not such a job: ``b"".join`` of ``bytes`` items (not memoryviews or bytearrays)
copies without the GIL once the total passes 1 MiB, whereas ``a + b`` holds it throughout
(~290 ms for 64 MiB on a loaded two-core machine, by ``bench.bench_vector_save``'s ticker).
"""

from __future__ import annotations

from typing import Any

FREE_SLICE = 4096  # objects freed per call (about a millisecond's work)


def free_in_slices(items: list[Any]) -> None:
    """Empty ``items`` a slice at a time, so that its objects (if nothing else holds them) are
    freed a few thousand per call instead of all at once when the list goes."""
    while items:
        del items[-FREE_SLICE:]
