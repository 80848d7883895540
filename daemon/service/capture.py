"""Capture controls: pause capture for every session (``memlane pause``/``resume``), and
forget a whole project (``memlane forget --project``) through the existing per-memory forget.

Pausing lives in the daemon's memory: a restart resumes capture (said in the answer)."""

from __future__ import annotations

from typing import Any

from memlane.daemon.runtime.reader import Reader
from memlane.daemon.service.memories import Memories
from memlane.daemon.service.sessions import Sessions
from memlane.projections import queries


class Capture:
    def __init__(self, *, sessions: Sessions, memories: Memories, reader: Reader) -> None:
        self._sessions = sessions
        self._memories = memories
        self._reader = reader

    def state(self) -> dict[str, Any]:
        return {"paused": self._sessions.paused,
                "note": "a paused daemon captures nothing until `memlane resume` or a restart"}

    def pause(self, paused: bool) -> dict[str, Any]:
        self._sessions.paused = paused
        return self.state()

    async def forget_project(self, project: str) -> dict[str, Any]:
        """Forget every memory of ``project`` (any state but forgotten), one by one."""
        ids = await self._reader.read(lambda conn: queries.project_ids(conn, project))
        forgotten: set[int] = set()
        for memory in ids:
            if memory not in forgotten:  # a forget also takes what was consolidated from it
                answer = await self._memories.forget(memory)
                forgotten.update(answer.get("memories", [memory]))
        return {"project": project, "forgotten": sorted(forgotten)}
