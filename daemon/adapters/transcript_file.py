"""Reads a Claude Code transcript named by a hook: only a regular file the daemon's user owns,
never through a symlink, streamed line by line from its start.

The open is non-blocking, so a FIFO or a device named as the transcript cannot hang the
hook: it is opened without waiting for a writer, seen not to be a regular file, and closed.
Memory is bounded by ``LINE_LIMIT``: a longer line (a huge tool result) is skipped whole."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

LINE_LIMIT = 4 * 1024 * 1024


def read_transcript(path: Path) -> Iterator[str]:
    """The transcript's lines, in order (none when it cannot be read safely)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return
        skipping = False  # inside a line longer than the limit
        while line := handle.readline(LINE_LIMIT):
            whole = line.endswith(b"\n")
            if skipping:
                skipping = not whole
            elif not whole and len(line) >= LINE_LIMIT:
                skipping = True
            else:
                yield line.decode("utf-8", errors="replace").rstrip("\r\n")
