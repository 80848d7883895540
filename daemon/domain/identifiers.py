"""Identifiers that must keep their equality (idempotency keys, session ids) lose their secrets.

A marker would make two different keys equal, so an identifier holding a secret is replaced by a
keyed hash instead: HMAC-SHA256 under a per-installation key, so equal identifiers stay equal,
different ones stay different, and the secret cannot be recovered from the log without the key.
An identifier without a secret is kept as it is (old keys still deduplicate).
"""

from __future__ import annotations

import hashlib
import hmac

from memlane.daemon.domain.redaction import redact

_DIGEST_CHARS = 32  # 128 bits of HMAC-SHA256: no collisions among a log's keys


def protect_identifier(value: str, *, key: bytes) -> str:
    """``value`` unchanged, or ``hmac:<hex>`` when it holds a secret."""
    if redact(value).count == 0:
        return value
    digest = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
    return f"hmac:{digest[:_DIGEST_CHARS]}"


def identifier_key(installation_secret: str) -> bytes:
    """The HMAC key for identifiers, derived from the installation's secret (the token file)."""
    return hmac.new(installation_secret.encode(), b"memlane identifiers v1",
                    hashlib.sha256).digest()
