"""A forget on one device removes the text from every device and from the server's store."""

from __future__ import annotations

import pytest

from memlane.daemon.adapters.nats_link import ACK_WAIT_S
from memlane.events.log import read_log
from memlane.events.model import Stored

from tests.sync.devices import Device, live_memories, texts, wait_for
from tests.sync.servers import NatsServer

SECRET_NOTE = "the staging bastion answers only to the quokka-lantern passphrase ritual"


def memory_with(device: Device, text: str) -> int | None:
    """The local id of the memory holding ``text`` (from the device's log)."""
    ids = [r.seq for r in read_log(device.home / "log")
           if isinstance(r.event, Stored) and r.event.text == text]
    return ids[0] if ids else None


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
