"""Only the team's keys are trusted: an event signed by an unknown or revoked key is refused
and reported, and nothing of it is applied."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from datetime import UTC, datetime

import nats
import pytest
from nacl.signing import SigningKey

from memlane.daemon.adapters.sync_config import read_sync_config
from memlane.daemon.domain.sync_wire import Wire, msg_id, seal, subject
from memlane.daemon.service.sync_inbox import ROSTER_TTL_S
from memlane.events.model import Stored

from tests.sync.devices import TEAM, Device, live_memories, wait_for
from tests.sync.servers import NatsServer
from tests.tools import MEMLANE

FORGED = "a forged note that must never be applied anywhere at all"


async def publish_forged(url: str, project: str, key: SigningKey, origin: str) -> None:
    wire = Wire(origin=origin, seq=1, hlc=1, at=datetime.now(UTC), project=project,
                event=Stored(id=0, text=FORGED, project=project, kind="note",
                             content_hash="0" * 32),
                refs={"id": [(origin, 1)]})
    nc = await nats.connect(url)
    try:
        await nc.jetstream().publish(subject(TEAM, wire), seal(wire, lambda b: bytes(
            key.sign(b).signature)), headers={"Nats-Msg-Id": msg_id(wire.global_id)})
    finally:
        await nc.close()


@pytest.mark.slow
def test_an_event_signed_by_an_unknown_key_is_refused(pair: tuple[Device, Device],
                                                      server: NatsServer) -> None:
    """A well-formed event from a device outside the roster is counted, reported with its
    reason by ``sync status``, and never appended."""
    a, _ = pair
    a.daemon.start()
    wait_for(lambda: a.sync_status()["connected"], timeout=30, what="A connected")
    config = read_sync_config(a.home)
    assert config is not None
    (project,) = config.projects.values()
    asyncio.run(publish_forged(server.url, project, SigningKey.generate(), "feedfacefeedface"))
    wait_for(lambda: a.sync_status()["inbox"]["refused"] == 1, timeout=30,
             what="A refused the forged event", explain=a.sync_status)
    refusal = a.sync_status()["inbox"]["last_refusal"]
    assert refusal["origin"] == "feedfacefeedface" and "unknown key" in refusal["reason"]
    assert live_memories(a) == 0
    assert FORGED.encode() not in b"".join(p.read_bytes() for p in (a.home / "log").glob("*"))


@pytest.mark.slow
def test_a_known_device_signing_with_another_key_is_refused(pair: tuple[Device, Device],
                                                            server: NatsServer) -> None:
    """An impostor using a member's device id, but not its key, fails the signature check."""
    a, b = pair
    a.daemon.start()
    b.daemon.start()
    wait_for(lambda: a.sync_status()["connected"] and b.sync_status()["connected"],
             timeout=30, what="both connected")
    config = read_sync_config(a.home)
    assert config is not None
    (project,) = config.projects.values()
    asyncio.run(publish_forged(server.url, project, SigningKey.generate(), b.device_id))
    wait_for(lambda: a.sync_status()["inbox"]["refused"] == 1, timeout=30,
             what="A refused the impostor", explain=a.sync_status)
    assert a.sync_status()["inbox"]["last_refusal"]["reason"] == "bad signature"
    assert live_memories(a) == 0


async def roster_entry(url: str, device: str) -> dict[str, object]:
    nc = await nats.connect(url)
    try:
        roster = await nc.jetstream().key_value(f"memlane_{TEAM}_roster")
        return json.loads((await roster.get(device)).value)  # type: ignore[no-any-return]
    finally:
        await nc.close()


def revoke(by: Device, device: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MEMLANE, "sync", "revoke", device, "--json"],
                          env={**os.environ, "MEMLANE_HOME": str(by.home)},
                          capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_a_revoked_device_is_refused(pair: tuple[Device, Device], server: NatsServer) -> None:
    """Once A's user revokes B (`memlane sync revoke`), A applies nothing more from it;
    revoking this device itself, a stranger or a malformed id is refused with a reason."""
    a, b = pair
    a.daemon.start()
    b.daemon.start()
    b.store_many(["before the revocation: builds run on the arm64 runners"])
    wait_for(lambda: live_memories(a) == 1, timeout=30, what="A got B's first memory")
    assert asyncio.run(roster_entry(server.url, b.device_id)).get("revoked") is not True
    for wrong in (a.device_id, "0000000000000000", "Not A Device"):
        refused = revoke(a, wrong)  # its own device, a stranger, a malformed id
        assert refused.returncode == 1 and refused.stderr.strip(), (wrong, refused)
    done = revoke(a, b.device_id)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"device": b.device_id, "revoked": True}
    assert asyncio.run(roster_entry(server.url, b.device_id))["revoked"] is True
    time.sleep(ROSTER_TTL_S)  # A's cached roster entry ages out (no condition to wait on)
    b.store_many(["after the revocation: nothing from this device is trusted any more"])
    wait_for(lambda: a.sync_status()["inbox"]["refused"] == 1, timeout=30,
             what="A refused B's event", explain=a.sync_status)
    assert a.sync_status()["inbox"]["last_refusal"]["reason"] == "signed by a revoked key"
    assert live_memories(a) == 1
