"""The TCP credentials: random tokens, each created once in a 0600 file and never read
through a symlink (the main token, and the hook-only token of HTTP hooks)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from memlane.daemon.adapters.files import create_private


def ensure_token(path: Path) -> str:
    """Read the token, creating it (0600, exclusively) on first start."""
    try:
        return read_token(path)
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    if not create_private(path, (token + "\n").encode()):
        return read_token(path)
    return token


def read_token(path: Path) -> str:
    """The token in ``path``, not following a symlink (a link is an OSError)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd) as handle:
        return handle.read(4096).strip()
