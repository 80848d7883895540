"""What the sync service needs from the outside world (built by the composition root)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Inbound(Protocol):
    data: bytes

    async def ack(self) -> None: ...


class RosterEntry(Protocol):
    key: bytes
    revoked: bool


class SyncLink(Protocol):
    """An open connection to the team's stream (see ``adapters/nats_link.py``)."""

    async def publish(self, messages: Sequence[tuple[str, bytes, str]]) -> None: ...

    async def fetch(self, batch: int, timeout: float) -> Sequence[Inbound]: ...

    async def pending(self) -> int: ...

    async def erase(self, subject: str) -> int: ...

    async def roster(self, device: str) -> RosterEntry | None: ...

    async def enrol(self, public_key: bytes) -> None: ...

    async def revoke(self, device: str) -> None: ...

    async def lease(self, key: str) -> str: ...

    async def close(self) -> None: ...


class Signs(Protocol):
    device: str

    @property
    def public_key(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


class CursorFile(Protocol):
    """The outbox cursor: the last published seq and clock stamp, saved atomically."""

    def read(self) -> tuple[int, int]: ...

    def write(self, seq: int, hlc: int) -> None: ...
