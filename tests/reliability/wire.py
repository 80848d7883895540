"""Raw HTTP/1.1 exchanges with a real daemon, the answers parsed strictly by an h11 client.

The bytes sent are the caller's, unchecked (hostile input must reach the daemon as it is);
what comes back must be well-formed HTTP, or the test fails with h11's reason.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h11

from tests.e2e.daemon import DaemonProcess

ANSWER_TIMEOUT = 20.0  # the daemon must answer or close within this; far above any limit


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    head: bool = False  # an answer to HEAD: no body to check

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Exchange:
    """Everything the daemon sent back before it closed the connection."""

    replies: list[Reply]

    @property
    def rejected(self) -> bool:
        """No answer at all, or only error answers: such a request must change nothing."""
        return all(reply.status >= 400 for reply in self.replies)


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach a daemon: its Unix socket, or TCP with the bearer token."""

    unix: Path
    port: int
    token: str

    @classmethod
    def of(cls, daemon: DaemonProcess) -> Endpoint:
        port = int((daemon.paths.runtime / "tcp.port").read_text())
        return cls(daemon.paths.socket, port, daemon.paths.token.read_text().strip())

    def connect(self, *, tcp: bool = False, timeout: float = ANSWER_TIMEOUT) -> socket.socket:
        if tcp:
            return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(str(self.unix))
        return sock


def request_bytes(method: str, path: str, body: bytes | None = None, *,
                  headers: dict[str, str] | None = None) -> bytes:
    """A well-formed request that closes the connection after its answer."""
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + (body or b"")


def send_raw(endpoint: Endpoint, raw: bytes, *, tcp: bool = False, head: bool = False,
             timeout: float = ANSWER_TIMEOUT) -> Exchange:
    """Send ``raw``, end our side of the connection, and parse every answer until EOF."""
    with endpoint.connect(tcp=tcp, timeout=timeout) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon may close early (a limit was hit); what it sent is still read
        data = read_until_closed(sock)
    if head:  # an answer to a HEAD the daemon could not parse still carries its body
        try:
            return Exchange(parse_replies(data))
        except h11.RemoteProtocolError:
            pass
    return Exchange(parse_replies(data, head=head))


def read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def parse_replies(data: bytes, *, head: bool = False) -> list[Reply]:
    """Every complete answer in ``data``; raises h11.RemoteProtocolError if any is malformed."""
    conn = h11.Connection(h11.CLIENT)
    _pretend_request(conn, head=head)
    conn.receive_data(data)
    conn.receive_data(b"")
    replies: list[Reply] = []
    while conn.trailing_data[0]:  # the daemon may close without answering: that is allowed
        replies.append(_next_reply(conn, head=head))
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            break
        conn.start_next_cycle()
        _pretend_request(conn, head=head)
    return replies


def _pretend_request(conn: h11.Connection, *, head: bool) -> None:
    """Move the client state machine to awaiting an answer (the real bytes were raw)."""
    method = "HEAD" if head else "GET"
    conn.send(h11.Request(method=method, target="/", headers=[("host", "localhost")]))
    conn.send(h11.EndOfMessage())


def _next_reply(conn: h11.Connection, *, head: bool) -> Reply:
    event = conn.next_event()
    while isinstance(event, h11.InformationalResponse):  # e.g. 100 Continue: a client skips it
        event = conn.next_event()
    assert isinstance(event, h11.Response), f"expected an answer, got {event!r}"
    body = bytearray()
    while not isinstance(part := conn.next_event(), h11.EndOfMessage):
        assert isinstance(part, h11.Data), f"expected the body, got {part!r}"
        body += part.data
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
    return Reply(event.status_code, headers, bytes(body), head=head)


def call(endpoint: Endpoint, method: str, path: str, payload: Any = None, *,
         timeout: float = ANSWER_TIMEOUT) -> Reply:
    """One well-formed JSON request over the Unix socket; exactly one answer expected."""
    body = None if payload is None else json.dumps(payload).encode()
    replies = send_raw(endpoint, request_bytes(method, path, body), timeout=timeout).replies
    assert len(replies) == 1, f"{method} {path}: expected one answer, got {replies}"
    return replies[0]


def error_of(reply: Reply) -> dict[str, Any]:
    """The ``{"code", "message"}`` of an error answer, checked for shape."""
    assert reply.headers.get("content-type") == "application/json", reply
    error = reply.json()["error"]
    assert isinstance(error["code"], str) and error["code"], reply
    assert isinstance(error["message"], str) and error["message"], reply
    return error  # type: ignore[no-any-return]
