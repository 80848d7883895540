"""Who may ask: browser origins are refused; on TCP the Host must be local (DNS rebinding)
and the bearer token must match (compared in constant time)."""

from __future__ import annotations

import hmac
import re

from memlane.daemon.domain.errors import Forbidden, Unauthorized
from memlane.daemon.api.server import Request

_LOCAL_HOSTS = re.compile(r"^(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$", re.IGNORECASE)


def token_matches(expected: str, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header carries the expected bearer token."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(authorization[7:].strip().encode(), expected.encode())


def check_access(request: Request, token: str) -> None:
    """Refuse browser origins and (on TCP) foreign Host headers and missing tokens."""
    if "origin" in request.headers:
        raise Forbidden("requests from browsers (with an Origin header) are refused")
    if request.transport != "tcp":
        return
    if not _LOCAL_HOSTS.match(request.headers.get("host", "")):
        raise Forbidden("the Host header must name localhost (DNS rebinding protection)")
    if not token_matches(token, request.headers.get("authorization")):
        raise Unauthorized("missing or wrong bearer token; `memlane token` prints it")
