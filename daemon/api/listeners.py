"""The two listeners: a Unix socket (0600 in a 0700 directory, peer uid checked) and TCP on
127.0.0.1 (access checked on each request's head, ``api/access.py``).

Each listener has its own connection slots, so a flood on TCP never locks the owner out of
the socket. On TCP a connection is *unauthenticated* until a request of its passes the access
check; those are capped globally and per peer address, and must send a head within the short
TCP head deadline. Connections over a cap are closed at once, unanswered.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import sys
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import structlog
from anyio.abc import SocketAttribute, SocketListener, SocketStream, TaskGroup

from memlane.daemon.api.server import Admit, Handler, Limits, Request, serve_connection

log = structlog.get_logger()
Serve = Callable[[SocketStream], Coroutine[Any, Any, None]]
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
TCP_READ_BYTES = 256 * 1024  # asyncio's own read size: anyio hands each chunk over whole
ACCEPT_BACKOFF = 0.05  # seconds to wait after running out of descriptors before accepting again


class SocketInUse(Exception):
    """Another process answers on the socket path (a daemon is already running)."""


async def open_unix_listener(path: Path) -> SocketListener:
    """Bind the socket with no window in which another user could connect. A socket file left
    behind is removed only when nothing accepts on it (the caller holds the writer lock)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700, follow_symlinks=False)
    if path.is_socket() or path.exists():
        if _answers(path):
            raise SocketInUse(f"another process listens on {path}")
        path.unlink()
    old = os.umask(0o177)
    try:
        listener = await anyio.create_unix_listener(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return listener


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


async def open_tcp_listener(port: int) -> SocketListener:
    """Listen on 127.0.0.1 only (one address, hence one listener)."""
    multi = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port,
                                            reuse_port=False)
    [listener] = multi.listeners
    assert isinstance(listener, SocketListener)
    return listener


async def serve_listener(listener: SocketListener, serve: Serve,
                         connections: TaskGroup) -> None:
    """Accept until cancelled; running out of descriptors pauses accepting instead of ending
    the daemon."""
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise
                log.warning("accept_paused", error=exc.strerror)
                await anyio.sleep(ACCEPT_BACKOFF)
                continue
            connections.start_soon(serve, stream)


def peer_uid(stream: SocketStream) -> int | None:
    """The uid of the process at the other end of a Unix socket, where the OS tells it."""
    sock: socket.socket = stream.extra(SocketAttribute.raw_socket)
    if sys.platform.startswith("linux"):
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return int(struct.unpack("3i", creds)[1])
    if sys.platform == "darwin":
        local_peercred = 0x001
        creds = sock.getsockopt(0, local_peercred, struct.calcsize("IIh16I"))
        return int(struct.unpack("IIh16I", creds)[1])
    return None


def unix_handler(handler: Handler, limits: Limits, admit: Admit, *,
                 slots: anyio.CapacityLimiter) -> Serve:
    own_uid = os.getuid()

    async def serve(stream: SocketStream) -> None:
        uid = peer_uid(stream)
        if uid is not None and uid != own_uid:
            await stream.aclose()
            return
        await _serve_bounded(stream, handler, "unix", limits, slots, admit)

    return serve


@dataclass(frozen=True)
class TcpCaps:
    """Bounds on TCP connections that have not yet passed the access check."""

    unauthenticated: int = 128
    per_peer: int = 64
    head_timeout: float = 2.0


class _Unauthenticated:
    """Counts TCP connections that have not yet sent an admitted request."""

    def __init__(self, caps: TcpCaps) -> None:
        self.caps = caps
        self.total = 0
        self.by_peer: Counter[str] = Counter()

    def enter(self, peer: str) -> bool:
        if self.total >= self.caps.unauthenticated or self.by_peer[peer] >= self.caps.per_peer:
            return False
        self.total += 1
        self.by_peer[peer] += 1
        return True

    def leave(self, peer: str) -> None:
        self.total -= 1
        self.by_peer[peer] -= 1
        if not self.by_peer[peer]:
            del self.by_peer[peer]


def tcp_handler(handler: Handler, limits: Limits, admit: Admit, *,
                slots: anyio.CapacityLimiter, caps: TcpCaps = TcpCaps()) -> Serve:
    pending = _Unauthenticated(caps)
    tcp_limits = Limits(**{**limits.__dict__,
                           "head_timeout": min(limits.head_timeout, caps.head_timeout),
                           "read_bytes": TCP_READ_BYTES})

    async def serve(stream: SocketStream) -> None:
        peer = str(stream.extra(SocketAttribute.remote_address, ("?",))[0])
        if not pending.enter(peer):
            await stream.aclose()
            return
        admitted = False

        def admit_once(request: Request) -> bool:
            nonlocal admitted
            authenticated = admit(request)
            if authenticated and not admitted:
                admitted = True
                pending.leave(peer)
            return authenticated

        try:
            await _serve_bounded(stream, handler, "tcp", tcp_limits, slots, admit_once)
        finally:
            if not admitted:
                pending.leave(peer)

    return serve


async def _serve_bounded(stream: SocketStream, handler: Handler, transport: str,  # noqa: PLR0913
                         limits: Limits, slots: anyio.CapacityLimiter, admit: Admit) -> None:
    """Serve the connection if a slot is free; otherwise close it at once (bounded memory)."""
    try:
        slots.acquire_nowait()
    except anyio.WouldBlock:
        await stream.aclose()
        return
    try:
        await serve_connection(stream, handler, transport=transport, limits=limits, admit=admit)
    except Exception:  # one connection's bug must never end the daemon's task group
        log.exception("connection_failed", via=transport)
    finally:
        slots.release()
