"""A TCP flood cannot lock the owner out: 5,000 idle TCP connections and 100 clients pushing
8 MB bodies without credentials, while the owner's status over the Unix socket still answers
and the daemon's memory stays bounded (bodies are refused on their head, never kept).

The idle connections come from 127.0.0.1 and the pushers from 127.0.0.2 (all of 127/8 is
loopback on Linux): the per-address cap on unauthenticated connections then leaves room for
the pushers, so their refusals (a 401, then the rest of the body read away) are what is
measured, whatever the idle connections' head deadline has done by then."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.daemon import DaemonProcess
from tests.reliability.conftest import start
from tests.reliability.test_load import raise_fd_limit
from tests.reliability.wire import Endpoint, call

pytestmark = pytest.mark.load
IDLE = 5000
PUSHERS = 100
BODY = 8 * 2**20
RSS_GROWTH_BOUND = 64 * 2**20
PUSHER_ADDRESS = "127.0.0.2"
CHUNK = b"x" * 65536


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def push_body(port: int, outcomes: list[str], lock: threading.Lock) -> None:
    """Send an unauthenticated 8 MB store; what came back (if anything) before the close."""
    head = (f"POST /v1/memories HTTP/1.1\r\nHost: localhost\r\nContent-Length: {BODY}\r\n"
            "Content-Type: application/json\r\n\r\n").encode()
    answer = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60,
                                      source_address=(PUSHER_ADDRESS, 0)) as sock:
            sock.sendall(head)
            for _ in range(BODY // len(CHUNK)):
                sock.sendall(CHUNK)
            answer = sock.recv(4096)
    except OSError:
        pass  # refused on its head: the daemon closed while the body was still coming
    with lock:
        outcomes.append(answer[:12].decode("latin-1"))


@pytest.fixture
def idle_sockets() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    yield held
    for sock in held:
        sock.close()


def test_a_tcp_flood_leaves_the_socket_answering_and_memory_bounded(
        daemons: list[DaemonProcess], short_tmp: Path,
        idle_sockets: list[socket.socket]) -> None:
    """5,000 idle TCP connections + 100 unauthenticated 8 MB bodies: the owner's status over
    the socket answers during the flood, pushers are refused with 401 and no body is stored,
    the daemon's RSS grows < 64 MB."""
    raise_fd_limit(IDLE + PUSHERS + 200)
    (short_tmp / "home").mkdir()
    daemon = start(daemons, DaemonProcess(short_tmp / "home"))
    daemon.wait_ready(wait_model=True)
    endpoint = Endpoint.of(daemon)
    pid = daemon.process.pid  # type: ignore[union-attr]
    before_rss = rss(pid)
    peak = before_rss
    for _ in range(IDLE):
        idle_sockets.append(socket.create_connection(("127.0.0.1", endpoint.port), timeout=30))
    outcomes: list[str] = []
    lock = threading.Lock()
    pushers = [threading.Thread(target=push_body, args=(endpoint.port, outcomes, lock))
               for _ in range(PUSHERS)]
    for pusher in pushers:
        pusher.start()
    answered = 0
    while any(p.is_alive() for p in pushers):
        status = call(endpoint, "GET", "/v1/status")  # over the Unix socket
        assert status.status == 200
        answered += 1
        peak = max(peak, rss(pid))
        for pusher in pushers:
            pusher.join(0.05)
    after = call(endpoint, "GET", "/v1/status").json()
    peak = max(peak, rss(pid))
    print(f"\nflood: {IDLE} idle + {PUSHERS} x 8 MB; socket status answered {answered} times "
          f"during it; RSS {before_rss / 2**20:.0f} MB -> peak {peak / 2**20:.0f} MB; "
          f"answers seen by pushers: {sorted(set(outcomes))}")
    assert answered >= 1
    assert sum(after["memories"].values()) == 0  # no unauthenticated body was stored
    assert all(o in ("", "HTTP/1.1 401") for o in outcomes), outcomes
    assert "HTTP/1.1 401" in outcomes  # some pushers got as far as the access check
    assert peak - before_rss < RSS_GROWTH_BOUND
