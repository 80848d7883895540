"""What the services need from the LLM adapter (see :mod:`memlane.daemon.adapters.consolidator`)."""

from __future__ import annotations

from typing import Protocol

from memlane.daemon.domain.consolidation import Merge, Source


class Consolidator(Protocol):
    """Merges a cluster, judges substance, spots a conflict; raises ``ApiError`` when it
    cannot (the caller falls back to its offline rule or waits)."""

    async def merge(self, sources: list[Source]) -> Merge: ...

    async def has_substance(self, text: str) -> bool: ...

    async def conflicts(self, new_text: str, existing: str) -> bool: ...
