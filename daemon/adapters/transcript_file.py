"""Reads a Claude Code transcript named by a hook: only a regular file the daemon's user owns,
never through a symlink, streamed line by line from its start.

The open is non-blocking, so a FIFO or a device named as the transcript cannot hang the
hook: it is opened without waiting for a writer, seen not to be a regular file, and closed.
Memory is bounded by ``LINE_LIMIT``: a longer line (a huge tool result) is skipped whole. Work
is bounded too: of a file over ``TAIL_BYTES`` only the end is read (from its first whole line;
a session save keeps the first and last asks, so it loses the middle of a giant session's
beginning), and reading stops once ``BUDGET_S`` seconds are spent."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

LINE_LIMIT = 4 * 1024 * 1024
TAIL_BYTES = 512 * 1024 * 1024
BUDGET_S = 30.0


def read_transcript(path: Path, *, tail_bytes: int = TAIL_BYTES,
                    budget_s: float = BUDGET_S) -> Iterator[str]:
    """The transcript's lines, in order (none when it cannot be read safely)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return
        skipping = False  # inside a line longer than the limit, or cut by the tail bound
        if info.st_size > tail_bytes:
            handle.seek(info.st_size - tail_bytes - 1)
            skipping = handle.read(1) != b"\n"  # the tail starts inside a line
        deadline = time.monotonic() + budget_s
        while time.monotonic() < deadline and (line := handle.readline(LINE_LIMIT)):
            whole = line.endswith(b"\n")
            if skipping:
                skipping = not whole
            elif not whole and len(line) >= LINE_LIMIT:
                skipping = True
            else:
                yield line.decode("utf-8", errors="replace").rstrip("\r\n")
