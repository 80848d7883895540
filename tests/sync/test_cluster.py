"""A 3-node JetStream cluster (stream replicated 3 times) on loopback: killing the stream's
leader mid-stream loses nothing; both daemons converge."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from tests.sync.devices import Device, live_memories, make_repo, new_device, shared_view, texts
from tests.sync.devices import wait_for
from tests.sync.servers import NatsServer, free_port

STREAM = "memlane_core"


@pytest.fixture
def cluster(short_tmp: Path) -> Iterator[list[NatsServer]]:
    ports = [free_port() for _ in range(3)]
    nodes = [NatsServer(short_tmp / "nats", name=f"n{i}", cluster=ports, cluster_port=port)
             for i, port in enumerate(ports)]
    for node in nodes:
        node.start()
    yield nodes
    for node in nodes:
        node.kill9()


async def stream_leader(url: str) -> str | None:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(STREAM)
        return info.cluster.leader if info.cluster is not None else None
    finally:
        await nc.close()


@pytest.mark.slow
def test_killing_the_stream_leader_mid_stream_loses_nothing(
        short_tmp: Path, cluster: list[NatsServer]) -> None:
    """Stores on both sides while the leader dies: both devices end with every memory."""
    repo = make_repo(short_tmp)
    url = ",".join(node.url for node in cluster)
    a = new_device(short_tmp, "a", repo, url, replicas=3)
    b = new_device(short_tmp, "b", repo, url, replicas=3)
    try:
        a.daemon.start()
        b.daemon.start()
        wait_for(lambda: a.sync_status()["connected"] and b.sync_status()["connected"],
                 timeout=60, what="both connected to the cluster",
                 explain=lambda: (a.sync_status(), b.sync_status()))
        a.store_many(texts("a", 150, seed=3))
        b.store_many(texts("b", 150, seed=3))
        leader = asyncio.run(stream_leader(cluster[0].url))
        victim = next(node for node in cluster if node.name == leader)
        victim.kill9()
        a.store_many(texts("a", 150, seed=4))
        b.store_many(texts("b", 150, seed=4))
        wait_for(lambda: live_memories(a) == live_memories(b) == 600, timeout=150,
                 what="both hold every memory",
                 explain=lambda: (live_memories(a), live_memories(b), a.sync_status(),
                                  b.sync_status()))
        view_a, view_b = shared_view(a), shared_view(b)
        assert view_a.events == view_b.events and view_a.texts == view_b.texts
        assert view_a.duplicates == view_b.duplicates == []
    finally:
        for device in (a, b):
            if device.daemon.process is not None and device.daemon.process.poll() is None:
                device.daemon.stop()
