"""Giving freed heap memory back to the system after a burst of load (glibc's malloc_trim):
without it, the RSS a load spike raised stays raised for the life of the daemon."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def heap_trimmer() -> Callable[[], bool] | None:
    """A call of the C library's ``malloc_trim(0)`` (True when it released memory), or None
    where the C library has none (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: bool(trim(0))
