"""Two daemons and one real nats-server converge on the shared facts."""

from __future__ import annotations

import pytest

from tests.sync.devices import Device, live_memories, live_state, shared_view, texts, wait_for
from tests.sync.servers import NatsServer

COUNT = 2000
EMBED_DEADLINE = 300  # 1,000 texts per daemon on a shared 2-core machine: generous


def embedded(device: Device) -> bool:
    status = device.daemon.client.request("GET", "/v1/status")
    return bool(status["embedding_backlog"] == 0 and status["vectors"] >= live_memories(device))


def converged(a: Device, b: Device, total: int) -> bool:
    return live_memories(a) == total and live_memories(b) == total


@pytest.mark.slow
def test_two_devices_converge(pair: tuple[Device, Device]) -> None:
    """2,000 stores on each side reach the other within 60 s of the last one: the same
    shared global ids, texts and states, and no event twice."""
    a, b = pair
    a.daemon.start()
    b.daemon.start()
    a.store_many(texts("a", COUNT))
    b.store_many(texts("b", COUNT))
    # The 60 s run from the last store's acknowledgement (before it is even embedded):
    # events travel without waiting for the model.
    wait_for(lambda: converged(a, b, 2 * COUNT), timeout=60, what="both hold every memory",
             explain=lambda: (a.sync_status(), b.sync_status()))
    view_a, view_b = shared_view(a), shared_view(b)
    assert view_a.events == view_b.events and len(view_a.texts) == 2 * COUNT
    assert view_a.texts == view_b.texts
    assert live_state(a) == live_state(b)
    assert view_a.duplicates == view_b.duplicates == []
    # The link sets are compared by the 500-a-side test below: embedding 4,000 texts on each
    # daemon here would take minutes of the suite's budget on a shared machine.


@pytest.mark.slow
def test_offline_stores_converge_when_the_server_returns(pair: tuple[Device, Device],
                                                         server: NatsServer) -> None:
    """With the server down, 500 stores on each side wait in the outboxes; once it is back,
    both devices converge: the same shared events, texts, states and link set (each device
    derives its links from the shared texts)."""
    a, b = pair
    a.daemon.start()
    b.daemon.start()
    wait_for(lambda: a.sync_status()["connected"] and b.sync_status()["connected"],
             timeout=30, what="both connected")
    server.kill9()
    a.store_many(texts("a", 500, seed=2))
    b.store_many(texts("b", 500, seed=2))
    assert a.sync_status()["outbox"]["lag_events"] >= 500
    server.start()
    wait_for(lambda: converged(a, b, 1000), timeout=120, what="both hold every memory",
             explain=lambda: (a.sync_status(), b.sync_status()))
    for device in (a, b):  # links need every text embedded on both sides
        wait_for(lambda d=device: embedded(d), timeout=EMBED_DEADLINE, what="all embedded")
    view_a, view_b = shared_view(a), shared_view(b)
    assert view_a.events == view_b.events and view_a.texts == view_b.texts
    assert view_a.links and view_a.links == view_b.links
    assert live_state(a) == live_state(b)
    assert view_a.duplicates == view_b.duplicates == []
