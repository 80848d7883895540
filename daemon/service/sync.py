"""Sync: keeps this device's outbox and inbox running over one link to the team's stream,
reconnecting with a backoff while the server is away, and reports on both directions."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import structlog

from memlane.daemon.domain.errors import BadRequest, NotFound, Unavailable
from memlane.daemon.domain.global_ids import GlobalIds
from memlane.daemon.domain.sync_wire import SyncUnavailable, lease_key
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.service.sync_inbox import Inbox
from memlane.daemon.service.sync_outbox import Outbox
from memlane.daemon.service.sync_ports import SyncLink
from memlane.events.log import read_log

log = structlog.get_logger()
Connect = Callable[[], Awaitable[SyncLink]]
BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)


class Sync:
    def __init__(self, *, connect: Connect, outbox: Outbox, inbox: Inbox, ids: GlobalIds,
                 reader: Reader, public_key: bytes, projects: dict[str, str],
                 describe: dict[str, Any]) -> None:
        self._projects = projects
        self._connect = connect
        self._ids = ids
        self.outbox = outbox
        self.inbox = inbox
        self._reader = reader
        self._public_key = public_key
        self._describe = describe
        self._link: SyncLink | None = None
        self.connected = False
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.leases = [0, 0]  # lost, won

    async def run(self) -> None:
        """Run until cancelled: connect, enrol, publish and apply; on a failure, reconnect."""
        failures = 0
        while True:
            try:
                await self._session()
            except* SyncUnavailable as group:
                self._failed(group.exceptions[0])
            failures = min(failures + 1, len(BACKOFF) - 1)
            await anyio.sleep(BACKOFF[failures])

    def _failed(self, exc: BaseException) -> None:
        self.connected = False
        self.last_error, self.last_error_at = str(exc), time.time()
        log.warning("sync_unavailable", error=str(exc))

    async def _session(self) -> None:
        link = await self._connect()
        try:
            await link.enrol(self._public_key)
            self._link, self.connected = link, True
            log.info("sync_connected", **self._describe)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.outbox.run, link)
                tg.start_soon(self.inbox.run, link)
        finally:
            self._link, self.connected = None, False
            with anyio.CancelScope(shield=True):
                await link.close()

    async def revoke(self, device: str) -> dict[str, Any]:
        """Mark a team member's device revoked in the roster: every device refuses its events
        from then on (within the roster's cache time)."""
        if device == self._ids.device:
            raise BadRequest("this is this installation's own device", code="own_device")
        if self._link is None:
            raise Unavailable(f"not connected to the sync server: {self.last_error or 'starting'}")
        try:
            if await self._link.roster(device) is None:
                raise NotFound(f"device {device} is not in the team's roster")
            await self._link.revoke(device)
        except SyncUnavailable as exc:
            raise Unavailable(str(exc)) from exc
        log.warning("sync_device_revoked", device=device)
        return {"device": device, "revoked": True}

    def from_teammate(self, seq: int) -> bool:
        """Whether the record ``seq`` (e.g. a memory) came from another device."""
        return self._ids.global_of(seq)[0] != self._ids.device

    def hold(self) -> int:
        """The lowest seq not yet published: compaction must not compact past it."""
        return self.outbox.hold

    async def claim(self, project: str, members: list[int]) -> bool:
        """Whether this device may make the once-per-team decision about ``members`` (a
        lease taken by compare-and-set); a project not synced needs none. Offline, it waits:
        another device may be deciding."""
        if project not in self._projects:
            return True
        if self._link is None:
            return False
        key = lease_key("consolidate", [self._ids.global_of(m) for m in members])
        try:
            holder = await self._link.lease(key)
        except SyncUnavailable as exc:
            self._failed(exc)
            return False
        self.leases[holder == self._ids.device] += 1
        return holder == self._ids.device

    async def status(self) -> dict[str, Any]:
        """Lag per direction, counts and the last error."""
        pending: int | None = None
        if self._link is not None:
            try:
                pending = await self._link.pending()
            except SyncUnavailable as exc:
                self.last_error, self.last_error_at = str(exc), time.time()
        refusal = self.inbox.last_refusal
        return {
            "enabled": True, **self._describe, "connected": self.connected,
            "outbox": {"cursor": self.outbox.cursor, "last_seq": self._reader.last_seq,
                       "lag_events": self._reader.last_seq - self.outbox.cursor,
                       "published": self.outbox.published, "erased": self.outbox.erased},
            "inbox": {"applied": self._ids.applied, "pending": pending,
                      "refused": self.inbox.refused, "orphans": self.inbox.orphans,
                      "forgotten_before_arrival": self.inbox.forgotten_before_arrival,
                      "last_refusal": None if refusal is None else {
                          "origin": refusal.origin, "reason": refusal.reason, "at": refusal.at}},
            "leases": {"won": self.leases[1], "lost": self.leases[0]},
            "last_error": self.last_error, "last_error_at": self.last_error_at,
        }


def load_global_ids(device: str, log_dir: Path, last_seq: int) -> GlobalIds:
    """The global id map, folded from the whole log (blocking: run in a thread)."""
    ids = GlobalIds(device)
    ids.observe(read_log(log_dir, 1, upto=last_seq))
    return ids
