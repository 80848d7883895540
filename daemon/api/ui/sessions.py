"""Viewer sessions: one-time login codes, cookies and CSRF tokens, all in the daemon's memory.

A login code (from ``POST /v1/ui/login-code``, an authenticated client request) is good once,
for ``CODE_TTL`` seconds; it is exchanged for a session cookie (HttpOnly, SameSite=Strict). The
cookie is ``<session id>.<mac>`` under a random secret of this daemon instance, so a cookie of
an earlier instance (or a forged one) is refused even if its id were guessed. The CSRF token
of a session is a second mac of its id: the page carries it, the JS sends it in a header.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from hashlib import sha256

from memlane.daemon.api.server import Request

COOKIE = "memlane_ui"
CSRF_HEADER = "x-memlane-csrf"
CODE_TTL = 120.0
SESSION_TTL = 12 * 3600.0
MAX_CODES = 64
MAX_SESSIONS = 256  # the oldest session is dropped first


class Sessions:
    """The login codes and sessions of one daemon instance."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._secret = secrets.token_bytes(32)
        self._codes: OrderedDict[str, float] = OrderedDict()
        self._sessions: OrderedDict[str, float] = OrderedDict()
        self._clock = clock

    def issue_code(self) -> dict[str, object]:
        code = secrets.token_urlsafe(24)
        self._codes[code] = self._clock() + CODE_TTL
        _bound(self._codes, MAX_CODES)
        return {"code": code, "expires_in": CODE_TTL}

    def log_in(self, code: str) -> str | None:
        """A ``Set-Cookie`` value for a good, unused, unexpired code; None otherwise."""
        expires = self._codes.pop(code, None)
        if expires is None or self._clock() > expires:
            return None
        session = secrets.token_urlsafe(24)
        self._sessions[session] = self._clock() + SESSION_TTL
        _bound(self._sessions, MAX_SESSIONS)
        return (f"{COOKIE}={session}.{self._mac('cookie', session)}; Path=/ui; HttpOnly; "
                f"SameSite=Strict; Max-Age={int(SESSION_TTL)}")

    def session_of(self, request: Request) -> str | None:
        """The request's live session id, or None."""
        value = _cookie(request.headers.get("cookie", ""), COOKIE)
        session, _, mac = value.partition(".")
        if not session or not hmac.compare_digest(mac.encode(),
                                                  self._mac("cookie", session).encode()):
            return None
        expires = self._sessions.get(session)
        if expires is None or self._clock() > expires:
            self._sessions.pop(session, None)
            return None
        return session

    def csrf_token(self, session: str) -> str:
        return self._mac("csrf", session)

    def csrf_matches(self, request: Request, session: str) -> bool:
        sent = request.headers.get(CSRF_HEADER, "")
        return hmac.compare_digest(sent.encode(), self.csrf_token(session).encode())

    def _mac(self, purpose: str, session: str) -> str:
        return hmac.new(self._secret, f"{purpose}\n{session}".encode(), sha256).hexdigest()


def _bound(entries: OrderedDict[str, float], limit: int) -> None:
    while len(entries) > limit:
        entries.popitem(last=False)


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""
