"""This installation's sync identity: a device id and an Ed25519 signing key (PyNaCl), kept in
``identity.json`` in the state directory (0600, never through a symlink), created on first need.

A device id is 16 lowercase hex characters: safe in a NATS subject token and a KV key.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import msgspec
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from memlane.daemon.adapters.files import create_private

SIGNATURE_BYTES = 64


class _Stored(msgspec.Struct, frozen=True):
    device: str
    seed: str  # hex of the 32-byte Ed25519 seed


@dataclass(frozen=True)
class Identity:
    """A device id and its key pair."""

    device: str
    key: SigningKey

    @property
    def public_key(self) -> bytes:
        return bytes(self.key.verify_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached signature of ``message``."""
        return bytes(self.key.sign(message).signature)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of ``message``."""
    try:
        VerifyKey(public_key).verify(message, signature)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


def ensure_identity(path: Path) -> Identity:
    """The identity in ``path``, created (0600, exclusively) if there is none yet."""
    try:
        return read_identity(path)
    except FileNotFoundError:
        pass
    stored = _Stored(device=secrets.token_hex(8), seed=secrets.token_bytes(32).hex())
    if not create_private(path, msgspec.json.encode(stored)):
        return read_identity(path)
    return _identity(stored)


def read_identity(path: Path) -> Identity:
    """The identity in ``path``, not following a symlink."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        return _identity(msgspec.json.decode(handle.read(4096), type=_Stored))


def _identity(stored: _Stored) -> Identity:
    return Identity(device=stored.device, key=SigningKey(bytes.fromhex(stored.seed)))
