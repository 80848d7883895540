"""`memlane doctor`'s hook probe: a dry-run UserPromptSubmit posted exactly as Claude Code
would post it — through the installed mode (command hook: the socket named in the command;
HTTP hook: the URL, with the token from ``$MEMLANE_HOOK_TOKEN`` in this environment) — and
the exact failure reported. The probe has an empty prompt: it stores and shows nothing."""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import socket
from pathlib import Path
from typing import Any

PROBE = {"session_id": "memlane-doctor-probe", "hook_event_name": "UserPromptSubmit",
         "cwd": "", "prompt": ""}
TIMEOUT = 3.0
_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=TIMEOUT)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(self._path)


def probe(handler: dict[str, Any]) -> tuple[bool, str]:
    """(ok, what happened) for one of our UserPromptSubmit handlers."""
    if handler.get("type") == "http":
        return _probe_http(handler)
    words = shlex.split(str(handler.get("command", "")))
    if len(words) < 4:
        return False, f"the command hook is not memlane's usual form: {handler.get('command')}"
    socket_path = words[3]  # /bin/sh hook.sh <Event> <socket> <memlane>
    return _post(_Unix(socket_path), {}, f"command hook via {socket_path}")


def _probe_http(handler: dict[str, Any]) -> tuple[bool, str]:
    url = str(handler.get("url", ""))
    match = re.match(r"^http://127\.0\.0\.1:(\d+)(/.*)$", url)
    if match is None:
        return False, f"the HTTP hook's url is not a loopback memlane url: {url}"
    headers = {}
    for name, value in (handler.get("headers") or {}).items():
        missing = [v for v in _VAR.findall(str(value)) if not os.environ.get(v)]
        if missing:
            return False, (f"${missing[0]} is not set in this environment: Claude Code "
                           f"would send an empty credential to {url} (401)")
        headers[name] = _VAR.sub(lambda m: os.environ[m.group(1)], str(value))
    conn = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=TIMEOUT)
    return _post(conn, headers, f"HTTP hook {url}")


def _post(conn: http.client.HTTPConnection, headers: dict[str, str], what: str
          ) -> tuple[bool, str]:
    try:
        conn.request("POST", "/hooks/UserPromptSubmit", body=json.dumps(PROBE),
                     headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        body = response.read()[:300].decode("utf-8", errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{what}: {type(exc).__name__}: {exc} (nothing answers there)"
    finally:
        conn.close()
    if response.status == 200:
        return True, f"{what} answered 200"
    return False, f"{what} answered {response.status}: {body}"


def prompt_handlers(path: Path) -> list[dict[str, Any]]:
    """Our UserPromptSubmit handlers in a settings file (none when it cannot be read)."""
    from memlane.cli import claude_settings as cs

    try:
        settings, _ = cs.parse_settings(cs.read_bytes(path))
    except (cs.SettingsError, UnicodeDecodeError, OSError):
        return []
    return cs.ours_in(settings, cs.script_markers()).get("UserPromptSubmit", [])


def probe_settings(path: Path) -> list[tuple[bool, str]]:
    """Probe every UserPromptSubmit handler of ours in a settings file."""
    return [probe(h) for h in prompt_handlers(path)]
