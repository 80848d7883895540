"""The NATS JetStream side of sync (nats-py): one stream per team, a durable pull consumer per
device, the team roster in a KV bucket, and secure erasure of a forgotten memory's messages.

Every nats-py error is wrapped as :class:`SyncUnavailable` here; the sync service retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext, api

from memlane.daemon.domain.sync_wire import SyncUnavailable, project_filter

DEDUP_WINDOW_S = 24 * 3600.0  # retries after a long crash or outage are still caught
ACK_WAIT_S = 10.0  # a killed device's unacknowledged batch comes back this soon
PUBLISH_TIMEOUT_S = 10.0
_ERRORS = (nats.errors.Error, OSError, asyncio.TimeoutError)


class RosterEntry(msgspec.Struct, frozen=True):
    """A device of the team: its Ed25519 public key, and whether it was revoked."""

    key: bytes
    revoked: bool = False


@dataclass(frozen=True)
class Inbound:
    """A fetched message: its body, and how to acknowledge it once applied."""

    data: bytes
    stream_seq: int
    _msg: Any

    async def ack(self) -> None:
        try:
            await self._msg.ack()
        except _ERRORS as exc:
            raise SyncUnavailable(f"ack failed: {exc}") from exc


class NatsLink:
    """An open connection for one device of one team."""

    def __init__(self, nc: Client, *, team: str, device: str, projects: Sequence[str],
                 replicas: int) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream(timeout=PUBLISH_TIMEOUT_S)
        self._team, self._device, self._projects = team, device, tuple(projects)
        self._replicas = replicas
        self._sub: Any = None
        self._roster: Any = None
        self._leases: Any = None

    @property
    def stream(self) -> str:
        return f"memlane_{self._team}"

    @classmethod
    async def connect(cls, url: str, *, creds: str | None, team: str, device: str,
                      projects: Sequence[str], replicas: int = 1) -> NatsLink:
        """Connect, make sure the stream, the roster bucket and this device's consumer exist."""
        try:
            nc = await nats.connect(
                servers=[u.strip() for u in url.split(",")], user_credentials=creds,
                connect_timeout=2, reconnect_time_wait=0.2, max_reconnect_attempts=-1,
                allow_reconnect=True, name=f"memlane-{device}")
        except _ERRORS as exc:
            raise SyncUnavailable(f"cannot connect to {url}: {exc}") from exc
        link = cls(nc, team=team, device=device, projects=projects, replicas=replicas)
        try:
            await link._prepare()
        except _ERRORS as exc:
            await link.close()
            raise SyncUnavailable(f"cannot prepare the stream: {exc}") from exc
        except BaseException:
            await link.close()
            raise
        return link

    async def _prepare(self) -> None:
        config = api.StreamConfig(
            name=self.stream, subjects=[f"memlane.{self._team}.>"],
            storage=api.StorageType.FILE, num_replicas=self._replicas,
            duplicate_window=DEDUP_WINDOW_S)
        try:
            await self._js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await self._js.add_stream(config)
        try:
            self._roster = await self._js.key_value(self._roster_bucket)
        except nats.js.errors.BucketNotFoundError:
            self._roster = await self._js.create_key_value(
                bucket=self._roster_bucket, history=5, replicas=self._replicas)
        try:
            self._leases = await self._js.key_value(self._lease_bucket)
        except nats.js.errors.BucketNotFoundError:
            self._leases = await self._js.create_key_value(
                bucket=self._lease_bucket, history=1, replicas=self._replicas)
        consumer = api.ConsumerConfig(
            durable_name=f"device-{self._device}", ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.ALL, ack_wait=ACK_WAIT_S, max_ack_pending=-1,
            filter_subjects=[project_filter(self._team, p) for p in self._projects])
        self._sub = await self._js.pull_subscribe(
            "", durable=consumer.durable_name, stream=self.stream, config=consumer)

    @property
    def _roster_bucket(self) -> str:
        return f"memlane_{self._team}_roster"

    @property
    def _lease_bucket(self) -> str:
        return f"memlane_{self._team}_leases"

    async def lease(self, key: str) -> str:
        """Take the lease ``key`` for this device by compare-and-set (create only if absent);
        returns the device that holds it (this one, or the one that took it first)."""
        try:
            await self._leases.create(key, self._device.encode())
            return self._device
        except nats.js.errors.KeyWrongLastSequenceError:
            pass
        except _ERRORS as exc:
            raise SyncUnavailable(f"lease failed: {exc}") from exc
        try:
            entry = await self._leases.get(key)
        except _ERRORS as exc:
            raise SyncUnavailable(f"lease read failed: {exc}") from exc
        return (entry.value or b"").decode()

    async def close(self) -> None:
        try:
            await self._nc.close()
        except _ERRORS:
            pass

    async def publish(self, messages: Sequence[tuple[str, bytes, str]]) -> None:
        """Publish ``(subject, body, msg id)`` in order, pipelined; return once every one is
        stored (a duplicate id within the window is acknowledged and not stored again)."""
        try:
            futures = [await self._js.publish_async(
                subject, body, headers={"Nats-Msg-Id": msg_id}, stream=self.stream)
                for subject, body, msg_id in messages]
            await asyncio.wait_for(asyncio.gather(*futures), PUBLISH_TIMEOUT_S)
        except _ERRORS as exc:
            raise SyncUnavailable(f"publish failed: {exc}") from exc

    async def fetch(self, batch: int, timeout: float) -> list[Inbound]:
        """Up to ``batch`` messages for this device (none after ``timeout`` seconds)."""
        try:
            msgs = await self._sub.fetch(batch, timeout=timeout)
        except asyncio.TimeoutError:  # nothing to fetch (nats-py raises either kind)
            return []
        except _ERRORS as exc:
            raise SyncUnavailable(f"fetch failed: {exc}") from exc
        return [Inbound(data=m.data, stream_seq=m.metadata.sequence.stream, _msg=m) for m in msgs]

    async def pending(self) -> int:
        """Messages the server holds that this device has not fetched yet."""
        try:
            info = await self._sub.consumer_info()
        except _ERRORS as exc:
            raise SyncUnavailable(f"consumer info failed: {exc}") from exc
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def erase(self, subject: str) -> int:
        """Erase every message on ``subject`` from the stream: each is deleted with the
        server's secure erase (its bytes overwritten on disk), then the subject is purged.
        Returns how many were erased."""
        try:
            seqs = await self._seqs_on(subject)
            for seq in seqs:
                try:
                    await self._js.delete_msg(self.stream, seq)
                except nats.js.errors.NotFoundError:
                    pass  # deleted by another device's erase
            await self._js.purge_stream(self.stream, subject=subject)
        except _ERRORS as exc:
            raise SyncUnavailable(f"erase failed: {exc}") from exc
        return len(seqs)

    async def _seqs_on(self, subject: str) -> list[int]:
        info = await self._js.stream_info(self.stream, subjects_filter=subject)
        expected = (info.state.subjects or {}).get(subject, 0)
        if not expected:
            return []
        sub = await self._js.pull_subscribe(subject, stream=self.stream, config=api.ConsumerConfig(
            ack_policy=api.AckPolicy.NONE, inactive_threshold=10.0))
        try:
            msgs = await sub.fetch(expected, timeout=2.0)
        except asyncio.TimeoutError:
            msgs = []
        finally:
            await sub.unsubscribe()
        return [m.metadata.sequence.stream for m in msgs]

    async def roster(self, device: str) -> RosterEntry | None:
        """The roster's entry for ``device`` (None: not a member)."""
        try:
            entry = await self._roster.get(device)
        except nats.js.errors.KeyNotFoundError:
            return None
        except _ERRORS as exc:
            raise SyncUnavailable(f"roster read failed: {exc}") from exc
        if entry.value is None:
            return None
        return msgspec.json.decode(entry.value, type=RosterEntry)

    async def enrol(self, public_key: bytes) -> None:
        """Add this device's key to the roster (kept as is when already there)."""
        try:
            await self._roster.create(self._device, msgspec.json.encode(RosterEntry(key=public_key)))
        except nats.js.errors.KeyWrongLastSequenceError:
            pass
        except _ERRORS as exc:
            raise SyncUnavailable(f"roster write failed: {exc}") from exc

    async def revoke(self, device: str) -> None:
        """Mark ``device`` revoked: its events are refused from now on."""
        entry = await self.roster(device)
        if entry is None:
            return
        try:
            await self._roster.put(device, msgspec.json.encode(
                RosterEntry(key=entry.key, revoked=True)))
        except _ERRORS as exc:
            raise SyncUnavailable(f"roster write failed: {exc}") from exc
