"""The outbox: publishes this device's shareable events, in log order, from a durable cursor.

At least once: a batch is published (each message's ``Nats-Msg-Id`` is its global id, so the
server drops a retry) and only then is the cursor saved; a crash between the two publishes the
batch again. Offline, the cursor waits. A forget tombstone is followed by the erasure of the
forgotten memories' subjects from the stream, before the cursor moves past it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import anyio

from memlane.daemon.domain.global_ids import GlobalIds
from memlane.daemon.domain.hlc import tick
from memlane.daemon.domain.sync_wire import (
    Wire,
    memory_subject,
    msg_id,
    seal,
    shareable,
    subject,
    to_wire,
)
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.service.sync_ports import CursorFile, Signs, SyncLink
from memlane.events.log import read_log
from memlane.events.model import Consolidated, Event, ForgetRequested, Record, Stored

BATCH = 2048
TAIL = 65536  # committed records kept in memory for the outbox; beyond, it reads the log


class Outbox:
    def __init__(self, *, reader: Reader, log_dir: Path, ids: GlobalIds, identity: Signs,
                 cursor: CursorFile, team: str, projects: dict[str, str]) -> None:
        self._reader = reader
        self._log_dir = log_dir
        self._ids = ids
        self._identity = identity
        self._cursor_file = cursor
        self._team = team
        self._projects = projects  # local project -> portable id
        self.cursor, saved_hlc = cursor.read()
        ids.hlc = max(ids.hlc, saved_hlc)
        self.published = 0
        self.erased = 0
        self._tail: deque[Record] = deque(maxlen=TAIL)
        self._backlog: Iterator[Record] | None = None
        self._backlog_next = 0
        self._wake = anyio.Event()

    @property
    def hold(self) -> int:
        """The lowest seq not yet published: compaction must keep it and what follows."""
        return self.cursor + 1

    def push(self, records: list[Record]) -> None:
        """Committed records (from the writer): kept for the next batch, and a wake-up."""
        self._tail.extend(records)
        self._wake.set()

    async def run(self, link: SyncLink) -> None:
        """Publish until cancelled or the link fails (the caller reconnects)."""
        while True:
            if not await self.publish_pending(link):
                self._wake = anyio.Event()
                with anyio.move_on_after(1.0):
                    await self._wake.wait()

    async def publish_pending(self, link: SyncLink) -> bool:
        """Publish one batch after the cursor; False when there was nothing to read."""
        records = await self._next_records()
        if not records:
            return False
        wires = await self._wires(records)
        await link.publish([(subject(self._team, w), seal(w, self._identity.sign),
                             msg_id(w.global_id)) for w in wires])
        for wire in wires:
            if isinstance(wire.event, ForgetRequested):
                for gid in wire.refs["memories"]:
                    self.erased += await link.erase(memory_subject(self._team, wire.project,
                                                                   tuple(gid)))
        self.cursor = records[-1].seq
        await anyio.to_thread.run_sync(self._cursor_file.write, self.cursor, self._ids.hlc)
        self.published += len(wires)
        return True

    async def _next_records(self) -> list[Record]:
        last = self._reader.last_seq
        start = self.cursor + 1
        if start > last:
            return []
        while self._tail and self._tail[0].seq < start:
            self._tail.popleft()
        if self._tail and self._tail[0].seq == start:
            return [r for _, r in zip(range(BATCH), self._tail) if r.seq <= last]
        return await anyio.to_thread.run_sync(self._read_log, start, last)

    def _read_log(self, start: int, last: int) -> list[Record]:
        """The next batch from the log, through one reader kept open across batches (a
        backlog is read in one pass, not from the start of its segment for every batch)."""
        if self._backlog is None or self._backlog_next != start:
            self._backlog = read_log(self._log_dir, start, upto=last)
        records = list(islice(self._backlog, BATCH))
        if not records and self._backlog_next == start:  # read to an older ``last``: reopen
            self._backlog = read_log(self._log_dir, start, upto=last)
            records = list(islice(self._backlog, BATCH))
        self._backlog_next = records[-1].seq + 1 if records else 0
        return records

    async def _wires(self, records: list[Record]) -> list[Wire]:
        candidates = [r for r in records if shareable(r)]
        about = {m for r in candidates for m in _memories(r.event)}
        rows = await self._reader.read(lambda c: {row[0]: (row[1], row[2]) for row in c.execute(
            f"SELECT id, project, state FROM memories WHERE id IN ({','.join('?' * len(about))})",
            list(about))}) if about else {}
        wires = []
        for record in candidates:
            projects = {self._projects.get(rows.get(m, ("", ""))[0]) for m in _memories(
                record.event)}
            forgotten = any(rows.get(m, ("", "forgotten"))[1] == "forgotten"
                            for m in _memories(record.event))
            portable = next(iter(projects)) if len(projects) == 1 else None
            if portable is None or (forgotten and not isinstance(record.event, ForgetRequested)):
                continue
            self._ids.hlc = tick(self._ids.hlc, int(time.time() * 1000))
            wires.append(to_wire(record, device=self._identity.device, project=portable,
                                 hlc=self._ids.hlc, global_of=self._ids.global_of))
        return wires


def _memories(event: Event) -> Iterable[int]:
    """The memories whose project decides where an event is published."""
    if isinstance(event, Stored | Consolidated):
        return (event.id,)
    if isinstance(event, ForgetRequested):
        return event.memories[:1]
    return (getattr(event, "memory"),)

