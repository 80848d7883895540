"""Replacing a file atomically: a reader sees the old content or the new, never a mix.

Standard library only (the CLI imports it). The temporary file is created 0600, so content
is never readable by others even before its final mode is set; a new file stays 0600 unless
the caller asks for another mode, whatever the umask.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | None, *, mode: int | None = None) -> None:
    """Replace the file (None: remove it) atomically; ``mode`` None keeps an existing file's
    mode (0600 for a new one)."""
    target = path.resolve()  # a symlinked config (dotfiles) stays a symlink
    if data is None:
        target.unlink(missing_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if mode is None:
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o600
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create_private(path: Path, data: bytes) -> bool:
    """Create ``path`` 0600 holding ``data`` (synced), never through a symlink; False when it
    exists already (another process won the race: read theirs)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return True
