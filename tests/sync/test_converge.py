"""Two daemons and one real nats-server converge on the shared facts."""

from __future__ import annotations

import pytest

from tests.sync.devices import Device, live_memories, shared_view, texts, wait_for

COUNT = 200


def converged(a: Device, b: Device, total: int) -> bool:
    return live_memories(a) == total and live_memories(b) == total


@pytest.mark.slow
def test_two_devices_converge(pair: tuple[Device, Device]) -> None:
    """Stores on each side reach the other: the same shared global ids, texts and link set,
    and no event twice."""
    a, b = pair
    a.daemon.start()
    b.daemon.start()
    a.store_many(texts("a", COUNT))
    b.store_many(texts("b", COUNT))
    wait_for(lambda: converged(a, b, 2 * COUNT), timeout=120, what="both hold every memory",
             explain=lambda: (a.sync_status(), b.sync_status()))
    a.daemon.wait_idle()
    b.daemon.wait_idle()
    view_a, view_b = shared_view(a), shared_view(b)
    assert view_a.events == view_b.events and len(view_a.texts) == 2 * COUNT
    assert view_a.texts == view_b.texts
    assert view_a.links == view_b.links
    assert view_a.duplicates == view_b.duplicates == []
