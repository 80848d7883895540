"""Once-per-team decisions: two devices racing to consolidate the same shared cluster make
exactly one consolidation; the loser adopts the winner's."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from memlane.events.log import read_log
from memlane.events.model import Consolidated

from tests.sync.devices import Device, live_memories, live_state, wait_for

POOL = ["The pg pool runs out under load; set pool_size=20 in db.py",
        "Postgres connection pool exhausted under load, raise pool_size to 20",
        "Under heavy load the database pool is exhausted: pool_size=20 fixes it"]


def consolidations(device: Device) -> list[tuple[str, int]]:
    """Global ids of the consolidations in the device's log."""
    me = device.device_id
    return [(r.origin or me, r.origin_seq or r.seq) for r in read_log(device.home / "log")
            if isinstance(r.event, Consolidated)]


def consolidate(device: Device, answers: dict[str, Any]) -> None:
    answers[device.home.name] = device.daemon.client.request(
        "POST", "/v1/jobs/consolidate", {"offline": True})


@pytest.mark.slow
def test_a_race_to_consolidate_one_shared_cluster_makes_one_consolidation(
        pair: tuple[Device, Device]) -> None:
    """Both devices see the same cluster and consolidate at once: one wins the lease, the
    other waits, receives the winner's memory and closes its cluster with it."""
    a, b = pair
    a.daemon.start()
    b.daemon.start()
    a.store_many(POOL)
    wait_for(lambda: live_memories(b) == 3, timeout=60, what="B has the pool")
    a.daemon.wait_idle()
    b.daemon.wait_idle()
    answers: dict[str, Any] = {}
    racers = [threading.Thread(target=consolidate, args=(d, answers)) for d in (a, b)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=120)
    made = [name for name, answer in answers.items() if answer["consolidated"]]
    assert len(made) == 1, answers
    loser = b if made == ["a"] else a
    winner = a if loser is b else b
    # The loser waits on the winner's lease, unless the winner's consolidation reached it
    # (and closed its cluster) before it looked at its open clusters: then it never claims.
    waits = [w["reason"] for w in answers[loser.home.name]["waiting"]]
    assert waits in ([], ["another device of the team consolidates it"]), answers
    assert winner.sync_status()["leases"] == {"won": 1, "lost": 0}
    assert loser.sync_status()["leases"] == {"won": 0, "lost": len(waits)}

    def converged() -> bool:  # the log leads the projections: wait for what is asserted
        return (len(consolidations(a)) == len(consolidations(b)) == 1
                and live_state(a) == live_state(b)
                and {state for _, _, state in live_state(a)} == {"expired", "proven"})

    wait_for(converged, timeout=60, what="both hold the one consolidation",
             explain=lambda: (consolidations(a), consolidations(b), live_state(a), live_state(b)))
    assert consolidations(a) == consolidations(b)
    assert live_state(a) == live_state(b)
    assert {state for _, _, state in live_state(a)} == {"expired", "proven"}
    again = loser.daemon.client.request("POST", "/v1/jobs/consolidate", {"offline": True})
    assert again["consolidated"] == [] and again["waiting"] == [], again
    # The proven memory came from the winner: the winner may write it, the loser only proposes.
    routes = {d.home.name: d.daemon.client.request(
        "POST", "/v1/jobs/route", {"dry_run": True, "write": True})["routes"] for d in (a, b)}
    assert [r["action"] for r in routes[winner.home.name]] == ["written"], routes
    assert [(r["action"], r["verdict"]) for r in routes[loser.home.name]] == [
        ("proposed", "from a teammate: waiting for your approval")], routes
