"""The inbox: applies other devices' events from this device's durable pull consumer.

Each message is checked before anything is appended: well formed, signed by a key the team
roster holds and has not revoked (else refused, counted and reported), not seen before (its
global id is in the log: skipped), about memories this device has, and not about a memory a
tombstone named before it arrived here (the tombstone keeps such ids: skipped and counted). A batch of accepted events
is appended as one writer command, each record keeping its origin, clock stamp and signature
(a consolidation also expires its sources here, as on the device that made it);
the messages are acknowledged only after that append is durable, so a crash replays them and
the seen check drops them. A forget tombstone then runs this device's own forget, of the
memories it names and, unless it keeps them, of what was consolidated from them here.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import msgspec
import structlog

from memlane.daemon.domain.admission import BatchView
from memlane.events.mentions import referenced
from memlane.daemon.domain.global_ids import GlobalId, GlobalIds, parse
from memlane.daemon.domain.sync_wire import Wire, WireError, from_wire, unseal
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.writer import Writer
from memlane.daemon.service.forgetting import with_descendants
from memlane.daemon.service.sync_ports import Inbound, RosterEntry, SyncLink
from memlane.events.model import Consolidated, Event, Expired, ForgetRequested, Record

log = structlog.get_logger()
BATCH = 1024
ROSTER_TTL_S = 5.0
COMMIT_WAIT_S = 60.0  # bounds the shielded wait at shutdown (the writer may have stopped)
Verify = Callable[[bytes, bytes, bytes], bool]


@dataclass
class Refusal:
    """Why the last message was refused (reported by ``memlane sync status``)."""

    origin: str
    reason: str
    at: float = field(default_factory=time.time)


class Inbox:
    def __init__(self, *, writer: Writer, reader: Reader, ids: GlobalIds, verify: Verify,
                 projects: dict[str, str], finish_forgets: Callable[[], Awaitable[Any]]) -> None:
        self._writer = writer
        self._reader = reader
        self._ids = ids
        self._verify = verify
        self._local_project = {portable: local for local, portable in projects.items()}
        self._finish_forgets = finish_forgets
        self._keys: dict[str, tuple[RosterEntry, float]] = {}
        self.refused = 0
        self.orphans = 0
        self.forgotten_before_arrival = 0
        self.last_refusal: Refusal | None = None

    async def run(self, link: SyncLink) -> None:
        """Apply until cancelled or the link fails (the caller reconnects)."""
        while True:
            await self.apply_batch(link, timeout=1.0)

    async def apply_batch(self, link: SyncLink, *, timeout: float) -> int:
        """Fetch, check, append and acknowledge one batch; the number of events appended."""
        messages = await link.fetch(BATCH, timeout)
        accepted = [c for c in [await self._check(link, m) for m in messages] if c is not None]
        wires = [w for w, _ in accepted]
        adopted = await self._adopted_clusters(wires)
        spread = await self._descendants(wires)
        records = await self._append(accepted, adopted, spread) if accepted else []
        for message in messages:
            await message.ack()
        if any(isinstance(r.event, ForgetRequested) for r in records):
            await self._finish_forgets()
        return len(records)

    async def _check(self, link: SyncLink, message: Inbound) -> tuple[Wire, bytes] | None:
        try:
            wire, body, signature = unseal(message.data)
        except WireError as exc:
            return self._refuse("?", str(exc))
        if self._ids.seen(wire.global_id):
            return None
        entry = await self._key(link, wire.origin)
        if entry is None or entry.revoked:
            state = "unknown" if entry is None else "revoked"
            return self._refuse(wire.origin, f"signed by an {state} key: not in the team roster"
                                if entry is None else "signed by a revoked key")
        if not self._verify(entry.key, body, signature):
            return self._refuse(wire.origin, "bad signature")
        if wire.project not in self._local_project:
            return None  # a project this device does not sync (the filter let it through)
        return wire, signature

    async def _key(self, link: SyncLink, device: str) -> RosterEntry | None:
        """The roster's entry for ``device``, read again once it is older than
        :data:`ROSTER_TTL_S` (a revocation takes effect that soon)."""
        now = time.monotonic()
        cached = self._keys.get(device)
        if cached is not None and now - cached[1] < ROSTER_TTL_S:
            return cached[0]
        entry = await link.roster(device)
        if entry is not None:
            self._keys[device] = (entry, now)
        return entry

    def _refuse(self, origin: str, reason: str) -> None:
        """Count and report a refused message (acknowledged: it is never applied)."""
        self.refused += 1
        self.last_refusal = Refusal(origin, reason)
        log.warning("sync_refused", origin=origin, reason=reason)
        return None

    async def _adopted_clusters(self, wires: list[Wire]) -> dict[GlobalId, int]:
        """For each remote consolidation, the open local cluster holding all its sources: it
        lost the team's lease to the remote device and adopts its result (closes with it)."""
        found: dict[GlobalId, int] = {}
        for wire in wires:
            if isinstance(wire.event, Consolidated):
                sources = [s for g in wire.refs.get("sources", ())
                           if (s := self._ids.local_of((g[0], g[1]))) is not None]
                cluster = await self._reader.read(lambda c, s=sources: _open_cluster_of(c, s))
                if cluster is not None:
                    found[wire.global_id] = cluster
        return found

    async def _descendants(self, wires: list[Wire]) -> dict[GlobalId, tuple[int, ...]]:
        """For each tombstone not keeping descendants, what was consolidated here from the
        memories it names: the forgetting device may not have seen those consolidations (made
        by a third device), and a forget takes them unless kept, as a local forget does."""
        roots = {wire.global_id: known for wire in wires
                 if isinstance(wire.event, ForgetRequested) and not wire.event.keep_descendants
                 and (known := [s for g in wire.refs.get("memories", ())
                                if (s := self._ids.local_of((g[0], g[1]))) is not None])}
        if not roots:
            return {}
        await self._reader.caught_up()  # the lineage of everything applied before
        return await self._reader.read(lambda c: {
            gid: tuple(with_descendants(c, known)) for gid, known in roots.items()})

    async def _append(self, accepted: list[tuple[Wire, bytes]], adopted: dict[GlobalId, int],
                      spread: dict[GlobalId, tuple[int, ...]]) -> list[Record]:
        stamps: dict[int, tuple[Wire, bytes]] = {}
        records: list[Record] = []

        def decide(view: BatchView, next_seq: int) -> tuple[list[Event], None]:
            stamps.clear()
            events: list[Event] = []
            pending: dict[GlobalId, int] = {}
            gone: set[GlobalId] = set()  # named by a tombstone earlier in this batch
            for wire, signature in accepted:
                if wire.global_id in pending or self._ids.seen(wire.global_id):
                    continue
                if _names_gone(wire, lambda g: g in gone or self._ids.gone(g)):
                    self.forgotten_before_arrival += 1
                    continue
                pending[wire.global_id] = next_seq + len(events)
                event = from_wire(wire, project=self._local_project[wire.project],
                                  local_of=lambda g: pending.get(g) or self._ids.local_of(g))
                if event is None or _about_forgotten(view, event):
                    del pending[wire.global_id]
                    self.orphans += 1
                    continue
                if isinstance(event, ForgetRequested):
                    gone.update(parse(text) for text in event.unreceived)
                    event = msgspec.structs.replace(event, memories=tuple(dict.fromkeys(
                        (*event.memories, *spread.get(wire.global_id, ())))))
                if isinstance(event, Consolidated) and wire.global_id in adopted:
                    event = msgspec.structs.replace(event, cluster=adopted[wire.global_id])
                stamps[id(event)] = (wire, signature)
                events.append(event)
                if isinstance(event, Consolidated):  # as the consolidating device decided
                    events.extend(Expired(memory=s, reason=f"consolidated into {event.id}")
                                  for s in event.sources if not view.is_forgotten(s))
            return events, None

        def stamp(record: Record) -> Record:
            if id(record.event) not in stamps:
                return record  # this device's own consequence of a remote event
            wire, signature = stamps[id(record.event)]
            return msgspec.structs.replace(record, origin=wire.origin, origin_seq=wire.seq,
                                           hlc=wire.hlc, sig=signature)

        # Shielded: a session cancelled (its link failed) between the commit and the map
        # update would apply the unacknowledged batch twice when it is delivered again.
        with anyio.move_on_after(COMMIT_WAIT_S, shield=True):
            records, _ = await self._writer.submit(decide, stamp=stamp)
            self._ids.observe(records)
        now = int(time.time() * 1000)
        for record in records:
            self._ids.stamp_received(record.hlc, now)
        return records


def _open_cluster_of(conn: sqlite3.Connection, sources: list[int]) -> int | None:
    if not sources:
        return None
    row = conn.execute(
        "SELECT m.cluster FROM cluster_members m JOIN clusters c ON c.id = m.cluster"
        f" WHERE c.consolidated_into IS NULL AND m.memory IN ({','.join('?' * len(sources))})"
        " GROUP BY m.cluster HAVING count(*) = ? ORDER BY m.cluster LIMIT 1",
        [*sources, len(sources)]).fetchone()
    return None if row is None else int(row[0])


def _names_gone(wire: Wire, gone: Callable[[GlobalId], bool]) -> bool:
    """Whether a non-tombstone event is, or is about, a memory a tombstone named before this
    device received it (the tombstone came first: the memory must never land here)."""
    if isinstance(wire.event, ForgetRequested):
        return False
    return gone(wire.global_id) or any(
        gone((g[0], g[1])) for ids in wire.refs.values() for g in ids)


def _about_forgotten(view: BatchView, event: Event) -> bool:
    """Whether a non-tombstone event is about a memory already forgotten here."""
    return not isinstance(event, ForgetRequested) and any(
        view.is_forgotten(m) for m in referenced(event))

