"""The in-memory index the writer decides stores against: live memories by content hash and
idempotency key, and the forgotten ids (the writer drops any later event about one). Folded
from records; a batch sees its own pending stores and forgets through an overlay."""

from __future__ import annotations

from collections.abc import Iterable

from memlane.events.model import (
    Consolidated,
    Event,
    Expired,
    ForgetRequested,
    Forgotten,
    Restored,
    Stored,
)


class AdmissionIndex:
    """Live memories by (project, content hash), and every idempotency key ever used."""

    def __init__(self) -> None:
        self._by_hash: dict[tuple[str, str], int] = {}
        self._by_key: dict[str, int] = {}
        self._hash_of: dict[int, tuple[str, str]] = {}
        self._forgotten: set[int] = set()

    def is_forgotten(self, memory_id: int) -> bool:
        return memory_id in self._forgotten

    def find_duplicate(self, project: str, content_hash: str) -> int | None:
        return self._by_hash.get((project, content_hash))

    def find_key(self, key: str) -> int | None:
        return self._by_key.get(key)

    def load_row(self, memory_id: int, project: str, content_hash: str, *, live: bool,
                 key: str | None, forgotten: bool = False) -> None:
        """Seed from a projection row."""
        self._hash_of[memory_id] = (project, content_hash)
        if forgotten:
            self._forgotten.add(memory_id)
        if live:
            self._by_hash.setdefault((project, content_hash), memory_id)
        if key is not None:
            self._by_key[key] = memory_id

    def observe(self, events: Iterable[Event]) -> None:
        """Fold committed events into the index."""
        for event in events:
            match event:
                case Stored() | Consolidated():
                    key = event.idempotency_key if isinstance(event, Stored) else None
                    self.load_row(event.id, event.project, event.content_hash, live=True, key=key)
                case Expired():
                    self._drop(event.memory)
                case Forgotten():
                    self._forget((event.memory,))
                case ForgetRequested():
                    self._forget(event.memories)
                case Restored():
                    if event.memory in self._hash_of:
                        self._by_hash.setdefault(self._hash_of[event.memory], event.memory)
                case _:
                    pass

    def _forget(self, memory_ids: tuple[int, ...]) -> None:
        for memory_id in memory_ids:
            self._forgotten.add(memory_id)
            self._drop(memory_id)
            self._by_key = {k: v for k, v in self._by_key.items() if v != memory_id}

    def _drop(self, memory_id: int) -> None:
        pair = self._hash_of.get(memory_id)
        if pair is not None and self._by_hash.get(pair) == memory_id:
            del self._by_hash[pair]


class BatchView:
    """The committed index plus the stores decided earlier in the same batch."""

    def __init__(self, base: AdmissionIndex) -> None:
        self._base = base
        self._pending = AdmissionIndex()

    def find_duplicate(self, project: str, content_hash: str) -> int | None:
        found = self._pending.find_duplicate(project, content_hash)
        return found if found is not None else self._base.find_duplicate(project, content_hash)

    def find_key(self, key: str) -> int | None:
        found = self._pending.find_key(key)
        return found if found is not None else self._base.find_key(key)

    def is_forgotten(self, memory_id: int) -> bool:
        return self._pending.is_forgotten(memory_id) or self._base.is_forgotten(memory_id)

    def observe(self, events: Iterable[Event]) -> None:
        self._pending.observe(events)
