"""A stdlib-only HTTP client of the daemon: the Unix socket first, TCP second.

Over TCP the token never leaves this process: the server must first prove it holds the token
(``daemon/api/proof.py``), and the request then carries a one-time HMAC instead. On Linux the
port's listener must also belong to this user. Whatever else listens on the port receives a
random nonce and nothing more: no token, no memory text.

Kept free of heavy imports so a hook or a CLI call starts in milliseconds.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from memlane.daemon.adapters.paths import DEFAULT_PORT, Paths

PROC_NET_TCP = Path("/proc/net/tcp")
_LISTEN = "0A"


class DaemonUnavailable(Exception):
    """No daemon answered on the socket or on TCP."""


class DaemonError(Exception):
    """The daemon answered with an error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Client:
    """Sends one request per call; raises :class:`DaemonUnavailable` or :class:`DaemonError`.
    ``tcp_only`` skips the socket (doctor checks the TCP listener)."""

    def __init__(self, paths: Paths, timeout: float = 30.0, tcp_only: bool = False) -> None:
        self.paths, self.timeout, self.tcp_only = paths, timeout, tcp_only

    def request(self, method: str, path: str, body: Any = None) -> Any:
        payload = None if body is None else json.dumps(body).encode()
        status, data = self._send(method, path, payload)
        answer = json.loads(data) if data else None
        if status >= 400:
            error = (answer or {}).get("error", {})
            raise DaemonError(status, error.get("code", "error"), error.get("message", str(status)))
        return answer

    def _send(self, method: str, path: str, payload: bytes | None) -> tuple[int, bytes]:
        headers = {"content-type": "application/json"} if payload is not None else {}
        if self.tcp_only:
            return self._send_tcp(method, path, payload, headers)
        try:
            conn: http.client.HTTPConnection = _UnixConnection(str(self.paths.socket), self.timeout)
            return _exchange(conn, method, path, payload, headers)
        except (FileNotFoundError, ConnectionRefusedError):
            pass
        except (OSError, http.client.HTTPException) as exc:
            raise DaemonUnavailable(f"the daemon socket did not answer: {exc!r}") from exc
        return self._send_tcp(method, path, payload, headers)

    def _send_tcp(self, method: str, path: str, payload: bytes | None,
                  headers: dict[str, str]) -> tuple[int, bytes]:
        # Here, not at the top: a request over the socket (every hook) needs none of them.
        from memlane.daemon.adapters.token_file import read_token
        from memlane.daemon.api.proof import authorization

        try:
            token = read_token(self.paths.token)
        except OSError:
            token = ""
        if not token:
            raise DaemonUnavailable("the daemon is not running (no socket, no token)")
        port = self._port()
        _check_listener_owner(port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=self.timeout)
        try:
            nonce = _challenge(conn, token, port)
            headers = {**headers, "authorization": authorization(token, nonce, method, path)}
            return _exchange(conn, method, path, payload, headers)
        except (OSError, http.client.HTTPException) as exc:
            raise DaemonUnavailable(f"the daemon is not running: {exc!r}") from exc
        finally:
            conn.close()

    def _port(self) -> int:
        try:
            return int((self.paths.runtime / "tcp.port").read_text())
        except (OSError, ValueError):
            return DEFAULT_PORT


def _challenge(conn: http.client.HTTPConnection, token: str, port: int) -> str:
    """Make the server prove it holds the token; its one-time nonce for the next request."""
    import hmac
    import secrets

    from memlane.daemon.api.proof import CHALLENGE_PATH, server_proof

    mine = secrets.token_hex(16)
    try:
        conn.request("POST", CHALLENGE_PATH, body=json.dumps({"nonce": mine}).encode(),
                     headers={"content-type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read(4096))
        theirs, proof = str(answer["nonce"]), str(answer["proof"])
    except (OSError, http.client.HTTPException, ValueError, TypeError, KeyError) as exc:
        raise DaemonUnavailable(f"127.0.0.1:{port} is not memlane (no proof of the token: "
                                f"{exc!r}); nothing was sent to it") from exc
    if response.status != 200 or not hmac.compare_digest(
            proof.encode(), server_proof(token, mine, theirs).encode()):
        raise DaemonUnavailable(f"127.0.0.1:{port} could not prove it holds memlane's token; "
                                "nothing was sent to it")
    return theirs


def _check_listener_owner(port: int) -> None:
    """On Linux: refuse a port whose listener belongs to another user."""
    owner = listener_uid(port)
    if owner is not None and owner != os.getuid():
        raise DaemonUnavailable(f"127.0.0.1:{port} is held by uid {owner}, not by you; "
                                "nothing was sent to it")


def listener_uid(port: int, table: Path = PROC_NET_TCP) -> int | None:
    """The uid owning the LISTEN socket on 127.0.0.1:``port`` (or 0.0.0.0), from the kernel's
    table; None where there is no such table or no such listener."""
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return None
    wanted = {f"{_hex_ip(host)}:{port:04X}" for host in ("127.0.0.1", "0.0.0.0")}
    for line in lines:
        fields = line.split()
        if len(fields) > 7 and fields[3] == _LISTEN and fields[1] in wanted:
            return int(fields[7])
    return None


def _hex_ip(host: str) -> str:
    """An IPv4 address as /proc/net/tcp writes it: the in-memory word, in native byte order."""
    return f"{int.from_bytes(socket.inet_aton(host), sys.byteorder):08X}"


def _exchange(conn: http.client.HTTPConnection, method: str, path: str, payload: bytes | None,
              headers: dict[str, str]) -> tuple[int, bytes]:
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
