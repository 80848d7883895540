"""The map between global ids ``(device, seq)`` and this device's seqs, folded from the log.

A local record's global id is ``(this device, seq)``; a record applied from another device
keeps its ``(origin, origin_seq)``. The map is derived from the log alone (record envelopes,
and the ids a tombstone named before they arrived), so it is rebuilt from the log at start and
never stored apart from it.
"""

from __future__ import annotations

from collections.abc import Iterable

from memlane.daemon.domain.hlc import receive
from memlane.events.model import ForgetRequested, Record

GlobalId = tuple[str, int]


class GlobalIds:
    """Global id <-> local seq, for the records of one device's log."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._local: dict[GlobalId, int] = {}
        self._global: dict[int, GlobalId] = {}
        self._gone: set[GlobalId] = set()
        self.hlc = 0  # the highest clock stamp seen in the log

    def observe(self, records: Iterable[Record]) -> None:
        for record in records:
            if isinstance(record.event, ForgetRequested):
                self._gone.update(parse(text) for text in record.event.unreceived)
            if record.origin:
                gid = (record.origin, record.origin_seq)
                self._local[gid] = record.seq
                self._global[record.seq] = gid
                self.hlc = max(self.hlc, record.hlc)

    def local_of(self, gid: GlobalId) -> int | None:
        """The local seq of a global id (None: this device never got that record)."""
        if gid[0] == self.device:
            return gid[1]
        return self._local.get(gid)

    def global_of(self, seq: int) -> GlobalId:
        return self._global.get(seq, (self.device, seq))

    def seen(self, gid: GlobalId) -> bool:
        return gid[0] == self.device or gid in self._local

    def gone(self, gid: GlobalId) -> bool:
        """Whether a tombstone named ``gid`` before this device received it."""
        return gid in self._gone

    @property
    def applied(self) -> int:
        """How many records came from other devices."""
        return len(self._local)

    def stamp_received(self, remote: int, now_ms: int) -> None:
        self.hlc = receive(self.hlc, remote, now_ms)


def text_of(gid: GlobalId) -> str:
    """``device.seq``: a global id as one string (a message id, a tombstone's unreceived id)."""
    return f"{gid[0]}.{gid[1]}"


def parse(text: str) -> GlobalId:
    device, _, seq = text.rpartition(".")
    return (device, int(seq))
