"""Runs the lifecycle jobs on a timer, or soon after a kick (a session ended or compacted)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import structlog

from memlane.events.errors import LogWriteFailed

log = structlog.get_logger()


class JobScheduler:
    def __init__(self, run_round: Callable[[], Awaitable[None]], interval: float) -> None:
        self._run_round = run_round
        self._interval = interval
        self._kicked = anyio.Event()

    def kick(self) -> None:
        """Run the jobs soon instead of at the next tick."""
        self._kicked.set()

    async def run(self) -> None:
        while True:
            with anyio.move_on_after(self._interval):
                await self._kicked.wait()
            self._kicked = anyio.Event()
            try:
                await self._run_round()
            except LogWriteFailed as exc:  # a full disk: the next round tries again
                log.warning("jobs_deferred", error=str(exc))
