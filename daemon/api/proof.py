"""The challenge-response scheme of TCP clients, shared by the daemon and the CLI (standard
library only: the CLI's hot paths import it).

1. The client sends ``POST /v1/auth/challenge`` with ``{"nonce": <its random hex>}`` and no
   credentials; the server answers ``{"nonce": <server nonce>, "proof": server_proof(...)}``.
2. The client checks the proof in constant time: only a holder of the token can compute it.
   An impostor on the port has received a random nonce and nothing else.
3. The request then carries ``Authorization: Memlane-Proof nonce=<server nonce>,
   mac=<request_proof(...)>``; the server accepts each of its nonces once. The token itself
   never crosses the wire.
"""

from __future__ import annotations

import hmac
from hashlib import sha256

CHALLENGE_PATH = "/v1/auth/challenge"
PROOF_SCHEME = "Memlane-Proof"


def server_proof(token: str, client_nonce: str, server_nonce: str) -> str:
    """What the server answers a challenge with."""
    return _mac(token, "memlane/server", client_nonce, server_nonce)


def request_proof(token: str, server_nonce: str, method: str, target: str) -> str:
    """What a client sends instead of the token: binds one server nonce to one request line."""
    return _mac(token, "memlane/request", server_nonce, method.upper(), target)


def authorization(token: str, server_nonce: str, method: str, target: str) -> str:
    """The ``Authorization`` header of a request made after a challenge."""
    mac = request_proof(token, server_nonce, method, target)
    return f"{PROOF_SCHEME} nonce={server_nonce}, mac={mac}"


def _mac(token: str, *parts: str) -> str:
    return hmac.new(token.encode(), "\n".join(parts).encode(), sha256).hexdigest()
