"""The TCP fallback never hands the token or memory text to whatever listens on the port:
every client path first makes the server prove it holds the token."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from memlane.cli.client import listener_uid
from tests.e2e.daemon import DaemonProcess
from tests.reliability.conftest import start
from tests.tools import MEMLANE

pytestmark = pytest.mark.security
CANARY = "canary-memory-text-4f1c9e"
FAKE_ANSWER = json.dumps({"nonce": "ab" * 16, "proof": "00" * 32}).encode()


class Impostor(socketserver.ThreadingTCPServer):
    """A plain server on 127.0.0.1 that records every byte and answers each request head with
    a 200 and a made-up challenge answer (the most a process without the token can do)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Record)
        self.received = bytearray()
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Record(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Impostor = self.server  # type: ignore[assignment]
        seen = b""
        while data := self.request.recv(65536):
            with server.lock:
                server.received += data
            seen += data
            while b"\r\n\r\n" in seen:
                seen = seen.split(b"\r\n\r\n", 1)[1]
                self.request.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                     b"content-length: %d\r\n\r\n%s" % (len(FAKE_ANSWER),
                                                                        FAKE_ANSWER))


@pytest.fixture
def impostor() -> Iterator[Impostor]:
    server = Impostor()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def down_with_impostor(daemon: DaemonProcess, impostor: Impostor, *, keep_socket: bool) -> None:
    """Kill the daemon (its socket file stays behind) and point tcp.port at the impostor."""
    daemon.kill9()
    assert daemon.paths.socket.exists()
    if not keep_socket:
        daemon.paths.socket.unlink()
    (daemon.paths.runtime / "tcp.port").write_text(f"{impostor.port}\n")


def client_runs(daemon: DaemonProcess) -> list[subprocess.CompletedProcess[str]]:
    """Every client path, each in its own process, each naming the canary text."""
    hook_input = json.dumps({"session_id": "s1", "hook_event_name": "UserPromptSubmit",
                             "prompt": CANARY, "cwd": str(daemon.home),
                             "transcript_path": "/nonexistent"})
    mcp = ("from memlane.cli.mcp_server import _request\n"
           f"try:\n    _request('POST', '/v1/memories', {{'text': {CANARY!r}}})\n"
           "except Exception as exc:\n    print(type(exc).__name__)\n")
    commands: list[tuple[list[str], str | None]] = [
        ([MEMLANE, "store", CANARY], None),
        ([MEMLANE, "search", CANARY, "--no-fallback"], None),
        ([MEMLANE, "status"], None),
        ([MEMLANE, "recall", CANARY], None),
        ([MEMLANE, "remember", CANARY], None),
        ([MEMLANE, "hook", "UserPromptSubmit"], hook_input),
        ([MEMLANE, "doctor"], None),
        ([sys.executable, "-c", mcp], None),
    ]
    return [subprocess.run(args, env=daemon.env, input=stdin, capture_output=True, text=True,
                           timeout=60) for args, stdin in commands]


@pytest.mark.parametrize("keep_socket", [True, False], ids=["stale-socket", "no-socket"])
def test_an_impostor_on_the_port_receives_neither_the_token_nor_memory_text(
        daemons: list[DaemonProcess], short_tmp: Path, impostor: Impostor,
        keep_socket: bool) -> None:
    """With the daemon down and another process on its port, store, search, status, recall,
    remember, the hook relay, doctor and the MCP server's client all refuse to go on: the
    impostor records challenges only, never the token or the text."""
    (short_tmp / "home").mkdir()
    daemon = start(daemons, DaemonProcess(short_tmp / "home"))
    token = daemon.paths.token.read_text().strip()
    down_with_impostor(daemon, impostor, keep_socket=keep_socket)

    runs = client_runs(daemon)

    received = bytes(impostor.received)
    assert received.count(b"POST /v1/auth/challenge") >= len(runs) - 1  # doctor may ask twice
    assert token.encode() not in received and CANARY.encode() not in received
    assert b"authorization" not in received.lower()
    failed = [r for r in runs[:5] if r.returncode == 0]
    assert failed == [], "a client claimed success against the impostor"
    assert "could not prove" in runs[0].stderr


def test_the_listener_uid_comes_from_the_kernel_table() -> None:
    """The uid owning a LISTEN socket on 127.0.0.1 is read from /proc/net/tcp (Linux)."""
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp on this system")
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        port = listening.getsockname()[1]
        assert listener_uid(port) is None  # bound, not yet listening
        listening.listen()
        assert listener_uid(port) == os.getuid()


def test_a_listener_of_another_uid_is_refused_before_connecting(tmp_path: Path) -> None:
    """A port held by another user's listener gets no connection at all."""
    table = tmp_path / "tcp"
    table.write_text("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
                     "retrnsmt   uid  timeout inode\n"
                     "   0: 0100007F:CD0D 00000000:0000 0A 00000000:00000000 00:00000000 "
                     "00000000 12345        0 1 1 0000000000000000 100 0 0 10 0\n")
    assert listener_uid(0xCD0D, table) == (12345 if sys.byteorder == "little" else None)
