"""Reads a Claude Code transcript named by a hook: only a regular file the daemon's user owns,
never through a symlink, and only its bounded tail.

The open is non-blocking, so a FIFO or a device named as the transcript cannot hang the
hook: it is opened without waiting for a writer, seen not to be a regular file, and closed.
A regular file's read is bounded by ``TRANSCRIPT_TAIL`` bytes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

TRANSCRIPT_TAIL = 2 * 1024 * 1024


def read_transcript_tail(path: Path) -> list[str]:
    """The last lines of the transcript (none when it cannot be read safely)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return []
        start = max(0, info.st_size - TRANSCRIPT_TAIL)
        handle.seek(start)
        data = handle.read(TRANSCRIPT_TAIL)
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[1:] if start else lines
