"""HTTP/1.1 over any anyio byte stream, with h11 doing all the parsing.

Order per request: read the head (bounded size and time: a new connection must send its
first head within ``head_timeout``), ``admit`` it (access; raising closes the connection with
the error, the body unread), check the framing, answer ``Expect: 100-continue``, read the body
(bounded size and time), then call the handler. A head with both Content-Length and
Transfer-Encoding is refused (request smuggling; RFC 9112 6.1); an unknown transfer coding is
a 501 (h11 refuses it).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

import anyio
import h11
import msgspec
from anyio.abc import ByteStream

from memlane.daemon.domain.errors import ApiError, BadRequest, PayloadTooLarge


@dataclass(frozen=True)
class Limits:
    max_header: int = 16 * 1024
    max_body: int = 8 * 1024 * 1024
    head_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 120.0
    max_connections: int = 4096  # beyond this, new connections are closed at once
    linger_s: float = 2.0  # after a refused body: how long, and how much of it, to read away
    linger_bytes: int = 16 * 1024 * 1024
    # What one read asks for. A Unix socket's read allocates what it asks for (a 256 KiB read
    # costs an mmap and a munmap: 12 us against 1.5 us for 64 KiB). Over TCP, asyncio reads up
    # to 256 KiB at a time whatever is asked, and a smaller read makes anyio split each chunk,
    # copying its rest on every read: draining 100 refused 8 MB bodies that way grew the heap
    # by +150 MB (kept after they ended), against +11-14 MB reading whole chunks.
    read_bytes: int = 64 * 1024


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    transport: str
    target: str = ""  # the raw request target, as the client sent it (proofs cover it)


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    # A body sent as it is produced (chunked; Server-Sent Events), instead of ``body``.
    stream: AsyncGenerator[bytes, None] | None = None


Handler = Callable[[Request], Awaitable[Response]]
# Raises an ApiError to refuse a head (body not yet read); True when the client proved who it is.
Admit = Callable[[Request], bool]


def admit_all(request: Request) -> bool:
    """Admit every head (tests of the HTTP layer alone)."""
    return True


_encoder = msgspec.json.Encoder()


def json_response(payload: object, status: int = 200) -> Response:
    return Response(status, _encoder.encode(payload))


def error_response(error: ApiError) -> Response:
    response = json_response({"error": {"code": error.code, "message": error.message}},
                             error.status)
    if error.retry_after_s is not None:
        response.headers.append(("Retry-After", str(error.retry_after_s)))
    return response


async def serve_connection(stream: ByteStream, handler: Handler, *, transport: str,
                           limits: Limits, admit: Admit = admit_all) -> None:
    """Answer requests on one connection until it closes or a limit is hit."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header)
    async with stream:
        first = True
        while True:
            try:
                request = await _read_request(conn, stream, transport, limits, admit,
                                              wait=limits.head_timeout if first else None)
            except TimeoutError:
                return
            except ApiError as exc:
                await _send_final(conn, stream, error_response(exc))
                if conn.their_state is h11.SEND_BODY:
                    await _linger(stream, limits)
                return
            if request is None:
                return
            response = await handler(request)
            if not await _send(conn, stream, response, head_only=request.method == "HEAD"):
                return
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                return
            first = False
            conn.start_next_cycle()


async def _read_request(conn: h11.Connection, stream: ByteStream, transport: str,  # noqa: PLR0913
                        limits: Limits, admit: Admit, *, wait: float | None) -> Request | None:
    """The next request, or None when the client went away or stayed idle too long."""
    with anyio.move_on_after(wait or limits.idle_timeout) as idle:
        await _await_bytes(conn, stream, limits.read_bytes)
    if idle.cancelled_caught:
        return None
    head = await _next_event(conn, stream, limits.read_bytes, _after(limits.head_timeout))
    if isinstance(head, h11.ConnectionClosed):
        return None
    assert isinstance(head, h11.Request)
    request = _parse_head(head, transport, limits)
    admit(request)
    _check_framing(request.headers, limits)
    if conn.they_are_waiting_for_100_continue:
        await stream.send(conn.send(h11.InformationalResponse(
            status_code=100, headers=[], reason=b"Continue")) or b"")
    body = await _read_body(conn, stream, limits, _after(limits.body_timeout))
    return dataclasses.replace(request, body=body)


def _parse_head(head: h11.Request, transport: str, limits: Limits) -> Request:
    if _head_size(head) > limits.max_header:  # h11 only bounds a head still incomplete
        raise BadRequest(f"request head exceeds {limits.max_header} bytes", status=431)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
    raw_target = head.target.decode("latin-1")
    try:
        target = urlsplit(raw_target)
    except ValueError as exc:  # e.g. "//[x/": urlsplit checks the authority as an IPv6 host
        raise BadRequest(f"malformed request target: {exc}") from exc
    return Request(method=head.method.decode("ascii"), path=target.path,
                   query=dict(parse_qsl(target.query)), headers=headers, body=b"",
                   transport=transport, target=raw_target)


def _check_framing(headers: dict[str, str], limits: Limits) -> None:
    """Refuse ambiguous framing (h11 would let chunked win) and bodies declared too large."""
    declared = headers.get("content-length")
    if declared is not None and "transfer-encoding" in headers:
        raise BadRequest("Content-Length and Transfer-Encoding together are refused "
                         "(request smuggling)", code="ambiguous_framing")
    if declared is not None and int(declared) > limits.max_body:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds {limits.max_body}")


def _head_size(head: h11.Request) -> int:
    """The head's size on the wire, near enough: request line and "name: value\r\n" lines."""
    fields = sum(len(name) + len(value) + 4 for name, value in head.headers.raw_items())
    return len(head.method) + len(head.target) + 12 + fields


async def _await_bytes(conn: h11.Connection, stream: ByteStream, size: int) -> None:
    """Wait for the first bytes of the next request (h11 may already hold some)."""
    if not conn.trailing_data[0]:
        await _receive(conn, stream, size)


async def _read_body(conn: h11.Connection, stream: ByteStream, limits: Limits,
                     deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await _next_event(conn, stream, limits.read_bytes, deadline)
        if isinstance(event, h11.EndOfMessage):
            return b"".join(chunks)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > limits.max_body:
                raise PayloadTooLarge(f"request body exceeds {limits.max_body} bytes")
            chunks.append(bytes(event.data))
        else:
            raise BadRequest("connection closed before the request body ended")


def _after(seconds: float) -> float:
    return anyio.current_time() + seconds


async def _next_event(conn: h11.Connection, stream: ByteStream, size: int,
                      deadline: float) -> h11.Event:
    """The next event, waiting for more bytes until ``deadline`` (TimeoutError past it). A
    request already read whole sets no timer: most arrive with their first read."""
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise BadRequest(f"malformed HTTP request: {exc}",
                             status=exc.error_status_hint) from exc
        if event is not h11.NEED_DATA:
            return event  # type: ignore[return-value]
        with anyio.fail_at(deadline):
            await _receive(conn, stream, size)


async def _receive(conn: h11.Connection, stream: ByteStream, size: int) -> None:
    try:
        data = await stream.receive(size)
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
        data = b""
    conn.receive_data(data)


async def _send(conn: h11.Connection, stream: ByteStream, response: Response, *,
                head_only: bool = False) -> bool:
    if response.stream is not None:
        return await _send_stream(conn, stream, response, response.stream)
    headers = [("content-type", response.content_type),
               ("content-length", str(len(response.body))), *response.headers]
    try:
        # One write per response: each await would let every other connection run between
        # the head and the body.
        head = conn.send(h11.Response(status_code=response.status, headers=headers,
                                      reason=_reason(response.status)))
        body = conn.send(h11.Data(data=response.body)) if response.body and not head_only else b""
        await stream.send(b"".join((head or b"", body or b"", conn.send(h11.EndOfMessage()) or b"")))
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, h11.LocalProtocolError):
        return False
    return True


async def _send_stream(conn: h11.Connection, stream: ByteStream, response: Response,
                       chunks: AsyncGenerator[bytes, None]) -> bool:
    """A head without a length, then each chunk as it comes; ends when the producer does."""
    headers = [("content-type", response.content_type), *response.headers]
    try:
        await stream.send(conn.send(h11.Response(status_code=response.status, headers=headers,
                                                 reason=_reason(response.status))) or b"")
        async for chunk in chunks:
            await stream.send(conn.send(h11.Data(data=chunk)) or b"")
        await stream.send(conn.send(h11.EndOfMessage()) or b"")
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, h11.LocalProtocolError):
        return False
    finally:
        await chunks.aclose()
    return True


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


async def _linger(stream: ByteStream, limits: Limits) -> None:
    """After refusing a body still on its way, end our side and read what the client goes on
    sending (bounded in bytes and time), so closing does not reset the connection: a client
    whose write would fail with a reset gets to read the refusal instead. Nothing read is kept."""
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        await stream.send_eof()
    drained = 0
    with anyio.move_on_after(limits.linger_s):
        while drained < limits.linger_bytes:
            try:
                drained += len(await stream.receive(limits.read_bytes))
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                return


async def _send_final(conn: h11.Connection, stream: ByteStream, response: Response) -> None:
    """Send an error and close, when the protocol state still allows a response."""
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    response.headers.append(("connection", "close"))
    await _send(conn, stream, response)
