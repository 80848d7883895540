"""A hybrid logical clock: 48 bits of wall-clock milliseconds, 16 bits of counter.

A stamp never goes backwards on one device and always exceeds every stamp the device has seen
from another, so stamps order causally related events across devices even when clocks drift.
"""

from __future__ import annotations

COUNTER_BITS = 16


def tick(last: int, now_ms: int) -> int:
    """The stamp of a new local event after ``last``."""
    return max(now_ms << COUNTER_BITS, last + 1)


def receive(last: int, remote: int, now_ms: int) -> int:
    """The clock after seeing a remote event stamped ``remote``."""
    return max(now_ms << COUNTER_BITS, last + 1, remote + 1)


def wall_ms(stamp: int) -> int:
    """The wall-clock part of a stamp, in milliseconds since the epoch."""
    return stamp >> COUNTER_BITS
