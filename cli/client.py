"""A stdlib-only HTTP client of the daemon: the Unix socket first, TCP with the token second.

Kept free of heavy imports so a hook or a CLI call starts in milliseconds.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any

from memlane.daemon.adapters.paths import DEFAULT_PORT, Paths


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


@dataclass
class Client:
    """Sends one request per call; raises :class:`DaemonUnavailable` or :class:`DaemonError`."""

    paths: Paths
    timeout: float = 30.0

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
        try:
            token = self.paths.token.read_text().strip()
            port = int((self.paths.runtime / "tcp.port").read_text())
        except (OSError, ValueError):
            token, port = "", DEFAULT_PORT
        if not token:
            raise DaemonUnavailable("the daemon is not running (no socket, no token)")
        headers = {**headers, "authorization": f"Bearer {token}"}
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=self.timeout)
            return _exchange(conn, method, path, payload, headers)
        except (OSError, http.client.HTTPException) as exc:
            raise DaemonUnavailable(f"the daemon is not running: {exc!r}") from exc


def _exchange(conn: http.client.HTTPConnection, method: str, path: str, payload: bytes | None,
              headers: dict[str, str]) -> tuple[int, bytes]:
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
