"""Who may ask, decided from the request head before any body is read.

Browser origins are refused everywhere. On TCP the Host must be local (DNS rebinding) and the
request must carry one of:

- ``Memlane-Proof nonce=<server nonce>, mac=<hex>``: the challenge-response scheme of
  memlane's own clients (``api/proof.py``), so the token never crosses the wire; each server
  nonce is good for one request only.
- ``Bearer <token>``: for the user's own scripts (curl).
- ``Bearer <hook token>``: Claude Code's HTTP hooks, valid for ``/hooks/*`` only.

Every comparison is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from memlane.daemon.api.bodies import decode_body
from memlane.daemon.api.proof import CHALLENGE_PATH, PROOF_SCHEME, request_proof, server_proof
from memlane.daemon.api.server import Request, Response, error_response, json_response
from memlane.daemon.domain.errors import ApiError, Forbidden, PayloadTooLarge, Unauthorized

NONCE_TTL = 60.0
MAX_NONCES = 4096  # outstanding challenges; the oldest is dropped first
MAX_CHALLENGE_BODY = 256
_LOCAL_HOSTS = re.compile(r"^(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$", re.IGNORECASE)
_NONCE = re.compile(r"^[0-9a-f]{32,128}$")
_PROOF_FIELD = re.compile(r"(nonce|mac)=([0-9a-f]{1,128})")

Handler = Callable[[Request], Awaitable[Response]]


def token_matches(expected: str, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header carries the expected bearer token."""
    if not expected or not authorization or not authorization.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(authorization[7:].strip().encode(), expected.encode())


class Nonces:
    """Server nonces handed out by challenges: single-use, short-lived, bounded in number."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._issued: OrderedDict[str, float] = OrderedDict()
        self._clock = clock

    def issue(self) -> str:
        nonce = secrets.token_hex(16)
        self._issued[nonce] = self._clock() + NONCE_TTL
        while len(self._issued) > MAX_NONCES:
            self._issued.popitem(last=False)
        return nonce

    def redeem(self, nonce: str) -> bool:
        """True once per issued, unexpired nonce."""
        expires = self._issued.pop(nonce, None)
        return expires is not None and self._clock() <= expires


class Guard:
    """The access rules over one token (and the hook-only token), checked on a request head."""

    def __init__(self, token: str, hook_token: str = "") -> None:
        self._token = token
        self._hook_token = hook_token
        self.nonces = Nonces()

    def admit(self, request: Request) -> bool:
        """Raise unless the head may be served; called before the body is read. True when the
        client proved who it is (always on the owner-only socket), False for a challenge."""
        if "origin" in request.headers:
            raise Forbidden("requests from browsers (with an Origin header) are refused")
        if request.transport != "tcp":
            return True
        if not _LOCAL_HOSTS.match(request.headers.get("host", "")):
            raise Forbidden("the Host header must name localhost (DNS rebinding protection)")
        if request.path == CHALLENGE_PATH and request.method == "POST":
            _small_body(request)
            return False
        if not self._authorized(request):
            raise Unauthorized("missing or wrong credentials; `memlane token` prints the token")
        return True

    def _authorized(self, request: Request) -> bool:
        authorization = request.headers.get("authorization")
        if token_matches(self._token, authorization):
            return True
        if request.path.startswith("/hooks/") and token_matches(self._hook_token, authorization):
            return True
        return self._proof_matches(request, authorization or "")

    def _proof_matches(self, request: Request, authorization: str) -> bool:
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != PROOF_SCHEME.lower():
            return False
        fields = dict(_PROOF_FIELD.findall(rest.lower()))
        nonce, mac = fields.get("nonce", ""), fields.get("mac", "")
        expected = request_proof(self._token, nonce, request.method, request.target)
        # Redeem even when the mac is wrong: a nonce is one guess, never a brute-force oracle.
        return self.nonces.redeem(nonce) and hmac.compare_digest(mac.encode(), expected.encode())

    def answer_challenge(self, request: Request) -> Response:
        """Prove to a client that this server holds the token, without revealing it."""
        client_nonce = decode_body(request.body, dict[str, str]).get("nonce", "")
        if not _NONCE.match(client_nonce):
            raise Unauthorized("a challenge needs a hex nonce of 32 to 128 digits",
                               code="bad_nonce")
        server_nonce = self.nonces.issue()
        return json_response({"nonce": server_nonce,
                              "proof": server_proof(self._token, client_nonce, server_nonce)})

    def wrap(self, handler: Handler) -> Handler:
        """The handler, with the challenge route answered here (it needs no credentials)."""
        async def handle(request: Request) -> Response:
            if request.path == CHALLENGE_PATH and request.method == "POST":
                try:
                    return self.answer_challenge(request)
                except ApiError as exc:
                    return error_response(exc)
            return await handler(request)

        return handle


def _small_body(request: Request) -> None:
    declared = request.headers.get("content-length", "0")
    if "transfer-encoding" in request.headers or not declared.isdigit() \
            or int(declared) > MAX_CHALLENGE_BODY:
        raise PayloadTooLarge(f"a challenge body is at most {MAX_CHALLENGE_BODY} bytes")
