"""Counts requests in flight so a shutdown can let them finish (graceful SIGTERM).

While draining, every answer carries ``Connection: close`` so keep-alive clients go away; a
request that comes after the drain ended is refused (503 ``shutting_down``) before it starts,
so the cancellation that follows cuts no work half done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from memlane.daemon.api.server import Request, Response, error_response
from memlane.daemon.domain.errors import ShuttingDown

Handler = Callable[[Request], Awaitable[Response]]


class Gate:
    def __init__(self) -> None:
        self.inflight = 0
        self.served = 0  # requests answered since the start
        self.draining = False
        self.closed = False  # the drain ended: nothing more starts
        self._idle = anyio.Event()
        self._idle.set()

    def wrap(self, handler: Handler) -> Handler:
        async def counted(request: Request) -> Response:
            if self.closed:
                response = error_response(ShuttingDown("memlane is shutting down; retry once "
                                                       "it is back"))
                response.headers.append(("connection", "close"))
                return response
            self.inflight += 1
            self._idle = anyio.Event() if self._idle.is_set() else self._idle
            try:
                response = await handler(request)
            finally:
                self.inflight -= 1
                self.served += 1
                if self.inflight == 0:
                    self._idle.set()
            if self.draining:
                response.headers.append(("connection", "close"))
            return response

        return counted

    async def drain(self, timeout: float) -> bool:
        """Stop keeping connections alive and wait (bounded) for requests in flight, also
        those a kept-alive connection starts meanwhile; then refuse any more. True when none
        was left in flight."""
        self.draining = True
        with anyio.move_on_after(timeout):
            while self.inflight:  # the next one may start before this wakes: look again
                await self._idle.wait()
        self.closed = True
        return self.inflight == 0


async def after_each_busy_spell(gate: Gate, action: Callable[[], Any], *, quiet: float) -> None:
    """Run ``action`` in a worker thread once after each spell of requests, when none has
    come for ``quiet`` seconds (e.g. give the memory a load spike used back)."""
    seen, busy = gate.served, False
    while True:
        await anyio.sleep(quiet)
        if gate.served != seen or gate.inflight:
            seen, busy = gate.served, True
        elif busy:
            busy = False
            await anyio.to_thread.run_sync(action)
