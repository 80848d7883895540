"""Replays the prompt spool (``adapters/spool.py``): marked prompts the hook could not deliver
while the daemon was down or starting are stored now, through the normal store path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio
import msgspec
import structlog

from memlane.daemon.domain.kinds import prompt_marks
from memlane.daemon.domain.usage import prompt_hash

log = structlog.get_logger()
# (text, cwd, kind, idempotency key) -> stored
Store = Callable[[str, str, str, str], Awaitable[object]]


class SpoolEntry(msgspec.Struct, kw_only=True):
    prompt: str
    cwd: str = ""
    session_id: str = ""


class Spool(Protocol):
    def waiting(self) -> bool: ...
    def take(self) -> list[bytes]: ...
    def done(self) -> None: ...


class SpoolReplay:
    def __init__(self, spool: Spool, store: Store) -> None:
        self._spool = spool
        self._store = store
        self._lock = anyio.Lock()

    async def replay(self) -> int:
        """Store every spooled marked prompt (idempotent per entry); the number stored."""
        if self._lock.locked() or not await anyio.to_thread.run_sync(self._spool.waiting):
            return 0
        async with self._lock:
            entries = await anyio.to_thread.run_sync(self._spool.take)
            stored = 0
            for raw in entries:
                try:
                    entry = msgspec.json.decode(raw, type=SpoolEntry)
                except msgspec.DecodeError:
                    log.warning("spool_entry_unreadable", size=len(raw))
                    continue
                marks = prompt_marks(entry.prompt)
                if marks.kind is not None:
                    key = "spool:" + prompt_hash(entry.session_id + "\n" + entry.prompt)
                    await self._store(marks.text, entry.cwd, marks.kind, key)
                    stored += 1
            await anyio.to_thread.run_sync(self._spool.done)
        log.info("spool_replayed", stored=stored)
        return stored
