"""Kill -9 either daemon or the server at random moments while they sync: no acknowledged
store is lost, no event is applied twice."""

from __future__ import annotations

import random
import time

import pytest

from tests.sync.devices import Device, live_memories, shared_view, texts, wait_for
from tests.sync.servers import NatsServer

CYCLES = 10
PER_CYCLE = 40


@pytest.mark.slow
@pytest.mark.crash
def test_kill9_cycles_lose_nothing_and_duplicate_nothing(pair: tuple[Device, Device],
                                                         server: NatsServer) -> None:
    """Each cycle stores on both sides, then kills one of A, B and the server mid-sync and
    starts it again; at the end both devices hold every acknowledged store exactly once."""
    a, b = pair
    a.daemon.start()
    b.daemon.start()
    rng = random.Random(19)
    stored: set[str] = set()
    victims: list[str] = []
    for cycle in range(CYCLES):
        for device in (a, b):
            batch = texts(device.home.name, PER_CYCLE, seed=100 + cycle)
            device.store_many(batch)
            stored.update(batch)
        time.sleep(rng.uniform(0, 0.4))  # a random moment of the sync in flight
        victim = rng.choice(["a", "b", "server"])
        victims.append(victim)
        if victim == "server":
            server.kill9()
            server.start()
        else:
            device = a if victim == "a" else b
            device.daemon.kill9()
            device.daemon.start()
    assert set(victims) == {"a", "b", "server"}, victims
    total = len(stored)
    wait_for(lambda: live_memories(a) == live_memories(b) == total, timeout=150,
             what="both hold every acknowledged store",
             explain=lambda: (live_memories(a), live_memories(b), a.sync_status(),
                              b.sync_status()))
    view_a, view_b = shared_view(a), shared_view(b)
    assert set(view_a.texts.values()) == set(view_b.texts.values()) == stored
    assert view_a.events == view_b.events
    assert view_a.duplicates == view_b.duplicates == []
