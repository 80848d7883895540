"""Counts requests in flight so a shutdown can let them finish (graceful SIGTERM).

While draining, every answer carries ``Connection: close`` so keep-alive clients go away.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from memlane.daemon.api.server import Request, Response

Handler = Callable[[Request], Awaitable[Response]]


class Gate:
    def __init__(self) -> None:
        self.inflight = 0
        self.draining = False
        self._idle = anyio.Event()
        self._idle.set()

    def wrap(self, handler: Handler) -> Handler:
        async def counted(request: Request) -> Response:
            self.inflight += 1
            self._idle = anyio.Event() if self._idle.is_set() else self._idle
            try:
                response = await handler(request)
            finally:
                self.inflight -= 1
                if self.inflight == 0:
                    self._idle.set()
            if self.draining:
                response.headers.append(("connection", "close"))
            return response

        return counted

    async def drain(self, timeout: float) -> bool:
        """Stop keeping connections alive and wait (bounded) for requests in flight."""
        self.draining = True
        with anyio.move_on_after(timeout):
            await self._idle.wait()
        return self._idle.is_set()
