"""The few file operations the log performs, behind one small interface.

The real :class:`OsDisk` is used everywhere; fault-injection tests substitute a disk that loses
unsynced bytes or fails writes, without touching the log's code.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path


class OsDisk:
    """Plain POSIX files; ``sync`` is fdatasync, or F_FULLFSYNC on macOS."""

    def open_append(self, path: Path) -> int:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)

    def create(self, path: Path, data: bytes) -> None:
        """Create ``path`` holding ``data`` atomically and durably (temp file, sync, rename)."""
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            self.write(fd, data)
            self.sync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        self.sync_dir(path.parent)

    def write(self, fd: int, data: bytes) -> None:
        """Write all of ``data``, looping over short writes."""
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def sync(self, fd: int) -> None:
        if sys.platform == "darwin":
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
        else:
            os.fdatasync(fd)

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def close(self, fd: int) -> None:
        os.close(fd)

    def sync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
