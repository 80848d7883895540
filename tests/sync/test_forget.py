"""A forget on one device removes the text from every device and from the server's store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec
import nats
import pytest

from memlane.daemon.adapters.identity import read_identity
from memlane.daemon.adapters.nats_link import ACK_WAIT_S
from memlane.daemon.adapters.sync_config import read_sync_config
from memlane.daemon.domain.global_ids import GlobalId
from memlane.daemon.domain.storing import content_hash
from memlane.daemon.domain.sync_wire import Wire, msg_id, seal, subject
from memlane.events.log import read_log
from memlane.events.model import Consolidated, Event, ForgetRequested, Forgotten, Stored

from tests.sync.devices import TEAM, Device, live_memories, texts, wait_for
from tests.sync.servers import NatsServer

SECRET_NOTE = "the staging bastion answers only to the quokka-lantern passphrase ritual"


def memory_with(device: Device, text: str) -> int | None:
    """The local id of the memory holding ``text`` (from the device's log)."""
    ids = [r.seq for r in read_log(device.home / "log")
           if isinstance(r.event, Stored) and r.event.text == text]
    return ids[0] if ids else None


def forget_completed(device: Device, memory_id: int) -> bool:
    """Whether the device's forget of the memory finished (its proof recorded): the request
    marks the memory forgotten at once, the purge follows."""
    return any(isinstance(r.event, Forgotten) and r.event.memory == memory_id
               for r in read_log(device.home / "log"))


def state_of(device: Device, memory_id: int) -> str:
    return str(device.daemon.client.request("GET", f"/v1/memories/{memory_id}")["state"])


def forget_everywhere(a: Device, b: Device, server: NatsServer, *, b_offline: bool) -> None:
    (a_id,) = a.store_many([SECRET_NOTE])
    a.store_many(texts("a", 5))
    wait_for(lambda: memory_with(b, SECRET_NOTE) is not None, timeout=60, what="B has the note")
    b_id = memory_with(b, SECRET_NOTE)
    assert b_id is not None
    needle = SECRET_NOTE.encode()
    wait_for(lambda: bool(server.store_holds(needle)), timeout=30,
             what="the server's store holds the note (the scan can find it)")
    if b_offline:
        b.daemon.stop()
    a.daemon.client.request("POST", f"/v1/memories/{a_id}/forget", {})
    wait_for(lambda: a.sync_status()["outbox"]["erased"] >= 1, timeout=30,
             what="A erased the note's messages from the stream")
    if b_offline:
        b.daemon.start()
    wait_for(lambda: state_of(b, b_id) == "forgotten", timeout=60, what="B forgot the note",
             explain=b.sync_status)
    wait_for(lambda: forget_completed(b, b_id), timeout=60, what="B completed the forget")
    for device in (a, b):
        proof = device.daemon.client.request("POST", "/v1/forget/verify", {"texts": [SECRET_NOTE]})
        assert proof["matches"] == 0, (device.home.name, proof)
    # The five other memories may still be on their way: B, stopped, had fetched them without
    # acknowledging, and the server hands them out again only after the consumer's ack wait.
    wait_for(lambda: live_memories(b) == 5, timeout=2 * ACK_WAIT_S + 30,
             what="B has the five other memories", explain=lambda: live_memories(b))
    wait_for(lambda: not server.store_holds(needle), timeout=30,
             what="the note's bytes left the server's store",
             explain=lambda: server.store_holds(needle))


@pytest.mark.slow
def test_forget_on_a_reaches_b_and_the_server(pair: tuple[Device, Device],
                                               server: NatsServer) -> None:
    """B loses the text (its own forget, proven by its byte scan); the server's store
    directory no longer holds its bytes."""
    a, b = pair
    a.daemon.start()
    b.daemon.start()
    forget_everywhere(a, b, server, b_offline=False)


@pytest.mark.slow
def test_b_offline_while_a_forgets_loses_the_text_when_it_returns(
        pair: tuple[Device, Device], server: NatsServer) -> None:
    """The tombstone outlives the purge: B, stopped during the forget, forgets on return."""
    a, b = pair
    a.daemon.start()
    b.daemon.start()
    forget_everywhere(a, b, server, b_offline=True)


async def publish_as(url: str, device: Device, wires: list[Wire]) -> None:
    """Publish ``wires`` signed with ``device``'s own key, in this order."""
    identity = read_identity(device.home / "identity.json")
    nc = await nats.connect(url)
    try:
        for wire in wires:
            await nc.jetstream().publish(subject(TEAM, wire), seal(wire, identity.sign),
                                         headers={"Nats-Msg-Id": msg_id(wire.global_id)})
    finally:
        await nc.close()


def wire_from(device: Device, seq: int, event: Event, refs: dict[str, list[GlobalId]]) -> Wire:
    config = read_sync_config(device.home)
    assert config is not None
    (project,) = config.projects.values()
    if isinstance(event, Stored):
        event = msgspec.structs.replace(event, project=project)
    return Wire(origin=device.device_id, seq=seq, hlc=seq, at=datetime.now(UTC),
                project=project, event=event, refs=refs)


def stored_wire(device: Device, seq: int, text: str) -> Wire:
    return wire_from(device, seq, Stored(id=0, text=text, project="", kind="note",
                                         content_hash=content_hash(text)),
                     {"id": [(device.device_id, seq)]})


@pytest.mark.slow
def test_a_tombstone_that_arrives_before_its_memory_keeps_the_memory_out(
        pair: tuple[Device, Device], server: NatsServer) -> None:
    """A's forget tombstone reaches B before the memory it names (the memory's message was
    redelivered late, or B fetched it after the tombstone): B records the tombstone, and the
    memory never lands on B's disk, even after a restart in between."""
    a, b = pair
    a.daemon.start()
    b.daemon.start()
    wait_for(lambda: a.sync_status()["connected"] and b.sync_status()["connected"],
             timeout=30, what="both connected")
    first = 1_000_000  # far above A's own seqs
    gone = (a.device_id, first)
    tombstone = wire_from(a, first + 1, ForgetRequested(memories=()), {"memories": [gone]})
    marker = "a marker note: the release train leaves every second tuesday at noon"
    asyncio.run(publish_as(server.url, a, [tombstone, stored_wire(a, first + 2, marker)]))
    wait_for(lambda: live_memories(b) == 1, timeout=30, what="B applied the tombstone and the "
             "marker after it", explain=b.sync_status)
    b.daemon.stop()
    b.daemon.start()
    late = stored_wire(a, first, SECRET_NOTE)
    second = "a second marker: the staging database is reset every night at two"
    asyncio.run(publish_as(server.url, a, [late, stored_wire(a, first + 3, second)]))
    # The log holds an event a moment before the projections do: wait on both. A late memory
    # that landed would make three live memories, and the wait would time out.
    wait_for(lambda: memory_with(b, second) is not None and live_memories(b) == 2, timeout=30,
             what="B applied the second marker, after the late memory",
             explain=lambda: (live_memories(b), b.sync_status()))
    assert memory_with(b, SECRET_NOTE) is None
    assert SECRET_NOTE.encode() not in b"".join(
        p.read_bytes() for p in (b.home / "log").glob("*") if p.is_file())
    assert b.sync_status()["inbox"]["forgotten_before_arrival"] == 1


@pytest.mark.slow
def test_a_tombstone_takes_what_was_consolidated_from_its_memory_here(
        pair: tuple[Device, Device], server: NatsServer) -> None:
    """A teammate's tombstone names a memory, not the consolidation another device made from it
    that the forgetting device had not seen: B forgets that consolidation too (descendants are
    included unless kept, as in a local forget), so the merged text leaves B's disk."""
    a, b = pair
    a.daemon.start()
    b.daemon.start()
    wait_for(lambda: a.sync_status()["connected"] and b.sync_status()["connected"],
             timeout=30, what="both connected")
    first = 2_000_000
    source = (a.device_id, first)
    merged = "merged: " + SECRET_NOTE
    consolidated = wire_from(a, first + 1, Consolidated(
        id=0, sources=(), text=merged, project="", kind="fact",
        content_hash=content_hash(merged), model="offline", prompt_version="1"),
        {"id": [(a.device_id, first + 1)], "sources": [source], "cluster": []})
    asyncio.run(publish_as(server.url, a, [stored_wire(a, first, SECRET_NOTE), consolidated]))
    wait_for(lambda: memory_with(b, SECRET_NOTE) is not None and live_memories(b) >= 1,
             timeout=30, what="B has the memory and its consolidation", explain=b.sync_status)
    tombstone = wire_from(a, first + 2, ForgetRequested(memories=()), {"memories": [source]})
    asyncio.run(publish_as(server.url, a, [tombstone]))
    wait_for(lambda: live_memories(b) == 0, timeout=60, what="B forgot both",
             explain=b.sync_status)
    # The request marks them forgotten at once; the purge and its proof finish after it.
    wait_for(lambda: sum(isinstance(r.event, Forgotten) for r in read_log(b.home / "log")) == 2,
             timeout=60, what="B completed the forget of both (their proofs recorded)")
    proof = b.daemon.client.request("POST", "/v1/forget/verify", {"texts": [SECRET_NOTE, merged]})
    assert proof["matches"] == 0, proof
