"""The HTTP layer over a real TCP socket: framing, limits and timeouts."""

from __future__ import annotations

import dataclasses

import socket
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager

import anyio
import msgspec
import pytest

from memlane.daemon.api.server import (
    Handler,
    Limits,
    Request,
    Response,
    error_response,
    json_response,
    serve_connection,
)
from memlane.daemon.domain.errors import Busy, Unavailable

LIMITS = Limits(max_header=4096, max_body=1024, head_timeout=0.5, body_timeout=0.5,
                idle_timeout=2.0)


async def echo(request: Request) -> Response:
    return json_response({"method": request.method, "path": request.path, "query": request.query,
                          "size": len(request.body)})


@contextmanager
def server(limits: Limits = LIMITS, handler: Handler = echo) -> Iterator[int]:
    """An HTTP server on an ephemeral port in a background thread's event loop."""
    port: list[int] = []
    ready = threading.Event()
    stop = threading.Event()

    async def main() -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port.append(listener.extra(anyio.abc.SocketAttribute.local_port))
        ready.set()

        async def handle(stream: anyio.abc.SocketStream) -> None:
            await serve_connection(stream, handler, transport="tcp", limits=limits)

        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            while not stop.is_set():
                await anyio.sleep(0.01)
            tg.cancel_scope.cancel()

    thread = threading.Thread(target=anyio.run, args=(main,), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield port[0]
    finally:
        stop.set()
        thread.join(10)


def exchange(port: int, raw: bytes, *, timeout: float = 5.0) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


async def stream_two(request: Request) -> Response:
    async def chunks() -> AsyncGenerator[bytes, None]:
        yield b"data: 1\n\n"
        yield b"data: 2\n\n"

    return Response(200, content_type="text/event-stream", stream=chunks())


def test_a_streamed_body_is_sent_chunked_as_it_is_produced() -> None:
    """A response with a stream goes out chunked, without a length, and ends cleanly: the
    connection then serves the next request."""
    with server(handler=stream_two) as port:
        raw = exchange(port, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                             b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    first, _, second = raw.partition(b"0\r\n\r\n")
    assert b"transfer-encoding: chunked" in first.lower() and b"content-length" not in first
    assert first.endswith(b"9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n")
    assert second.startswith(b"HTTP/1.1 200 ")


def test_keep_alive_serves_pipelined_requests_in_order() -> None:
    """Two pipelined requests on one connection get two answers, in order."""
    with server() as port:
        raw = (b"GET /a?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n"
               b"POST /b HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n"
               b"Connection: close\r\n\r\nabc")
        reply = exchange(port, raw)
    bodies = [msgspec.json.decode(part.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1")[0])
              for part in reply.split(b"HTTP/1.1 ")[1:]]
    assert [b["path"] for b in bodies] == ["/a", "/b"]
    assert bodies[0]["query"] == {"x": "1"} and bodies[1]["size"] == 3


def test_declared_oversize_body_is_refused_before_reading() -> None:
    """A Content-Length above the limit gets 413 at once, without the body being sent."""
    with server() as port:
        reply = exchange(port, b"POST /x HTTP/1.1\r\nHost: l\r\nContent-Length: 10485760\r\n\r\n")
    assert status_of(reply) == 413 and b"payload_too_large" in reply


def test_a_refusal_reaches_a_client_still_sending_its_body() -> None:
    """A body refused before it was read (413) is read away for a moment after the answer,
    so the client's send completes instead of failing with a reset, and it reads the 413."""
    with server() as port, socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: l\r\nContent-Length: 10485760\r\n\r\n"
                     + b"x" * 10_485_760)
        assert status_of(sock.recv(65536)) == 413


def test_chunked_oversize_body_is_refused() -> None:
    """A chunked body that grows past the limit gets 413."""
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    with server() as port:
        reply = exchange(port, b"POST /x HTTP/1.1\r\nHost: l\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + chunk * 2 + b"0\r\n\r\n")
    assert status_of(reply) == 413


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nNo colon header\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: nope\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"a" * 8000 + b"\r\n\r\n",
])
def test_malformed_requests_get_a_4xx(raw: bytes) -> None:
    """Requests h11 cannot parse get a 4xx answer and the connection closes."""
    with server() as port:
        reply = exchange(port, raw)
    assert 400 <= status_of(reply) < 500


def test_slowloris_head_is_cut_off() -> None:
    """A client that never finishes its request head is disconnected after the head timeout."""
    with server() as port, socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        start = time.monotonic()
        assert sock.recv(100) == b""
        assert time.monotonic() - start < 3.0


def test_a_body_that_never_ends_is_cut_off() -> None:
    """A client whose head is whole but whose body trickles in and never ends is disconnected
    after the body timeout."""
    limits = dataclasses.replace(LIMITS, head_timeout=30.0)  # the body's own timeout cuts
    with server(limits) as port, socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: l\r\nContent-Length: 100\r\n\r\nab")
        start = time.monotonic()
        for _ in range(40):  # a byte now and then, for 4 s unless cut off before
            time.sleep(0.1)
            try:
                sock.sendall(b"c")
            except OSError:  # the server closed the connection
                break
        try:
            closed = sock.recv(100) == b""
        except ConnectionResetError:
            closed = True
        assert closed
        assert time.monotonic() - start < 3.0


def test_idle_connection_does_not_block_others() -> None:
    """An idle keep-alive connection does not stop another client from being served."""
    with server() as port, socket.create_connection(("127.0.0.1", port)):
        reply = exchange(port, b"GET /x HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n")
        assert status_of(reply) == 200


def test_a_busy_refusal_tells_when_to_retry() -> None:
    """503 busy carries Retry-After (clients such as OpenAI's back off on it); other errors
    carry no such header."""
    busy = error_response(Busy("the bulk queue is full"))
    assert (busy.status, busy.headers) == (503, [("Retry-After", "1")])
    assert msgspec.json.decode(busy.body)["error"]["code"] == "busy"
    assert error_response(Unavailable("model loading")).headers == []
