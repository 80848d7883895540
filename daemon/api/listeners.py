"""The two listeners: a Unix socket (0600 in a 0700 directory, peer uid checked) and TCP on
127.0.0.1 (token checked by the routes)."""

from __future__ import annotations

import os
import socket
import struct
import sys
from pathlib import Path

import anyio
import structlog
from anyio.abc import SocketAttribute, SocketStream

from memlane.daemon.api.server import Handler, Limits, serve_connection

log = structlog.get_logger()


async def open_unix_listener(path: Path) -> anyio.abc.SocketListener:
    """Bind the socket with no window in which another user could connect."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    if path.is_socket() or path.exists():
        path.unlink()
    old = os.umask(0o177)
    try:
        listener = await anyio.create_unix_listener(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return listener


async def open_tcp_listener(port: int) -> anyio.abc.SocketListener:
    return await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port, reuse_port=False)


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


def unix_handler(handler: Handler, limits: Limits,  # type: ignore[no-untyped-def]
                 slots: anyio.CapacityLimiter):
    own_uid = os.getuid()

    async def serve(stream: SocketStream) -> None:
        uid = peer_uid(stream)
        if uid is not None and uid != own_uid:
            await stream.aclose()
            return
        await _serve_bounded(stream, handler, "unix", limits, slots)

    return serve


def tcp_handler(handler: Handler, limits: Limits,  # type: ignore[no-untyped-def]
                slots: anyio.CapacityLimiter):
    async def serve(stream: SocketStream) -> None:
        await _serve_bounded(stream, handler, "tcp", limits, slots)

    return serve


async def _serve_bounded(stream: SocketStream, handler: Handler, transport: str, limits: Limits,
                         slots: anyio.CapacityLimiter) -> None:
    """Serve the connection if a slot is free; otherwise close it at once (bounded memory)."""
    try:
        slots.acquire_nowait()
    except anyio.WouldBlock:
        await stream.aclose()
        return
    try:
        await serve_connection(stream, handler, transport=transport, limits=limits)
    except Exception:  # one connection's bug must never end the daemon's task group
        log.exception("connection_failed", via=transport)
    finally:
        slots.release()
