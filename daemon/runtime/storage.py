"""Telling a disk that refuses writes (full, over quota, read-only) from other failures, and
saying what to do about it."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from memlane.daemon.domain.errors import InsufficientStorage
from memlane.projections.damage import SQLITE_FULL, SQLITE_READONLY

LOW_SPACE = 1 << 20  # below this many free bytes the state directory counts as full
FULL = {errno.ENOSPC, errno.EDQUOT}
READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}
ADVICE = {
    "disk_full": "the disk holding memlane's state is full (or over quota): free some space "
                 "there",
    "read_only": "memlane's state directory is read-only: remount it read-write or fix its "
                 "permissions",
}


def disk_refusal(exc: BaseException | None) -> str | None:
    """``"disk_full"`` or ``"read_only"`` when ``exc`` (or what caused it) is the disk
    refusing a write; None otherwise."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in FULL | READ_ONLY:
            return "disk_full" if exc.errno in FULL else "read_only"
        if isinstance(exc, sqlite3.DatabaseError):
            code = int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
            if code in (SQLITE_FULL, SQLITE_READONLY):
                return "disk_full" if code == SQLITE_FULL else "read_only"
        exc = exc.__cause__ or exc.__context__
    return None


def storage_error(exc: BaseException) -> InsufficientStorage | None:
    """The wire error (507) for a write the disk refused, or None."""
    reason = disk_refusal(exc)
    if reason is None:
        return None
    return InsufficientStorage(f"{ADVICE[reason]}; writes resume by themselves, reads and "
                               f"search go on meanwhile ({exc})", code=reason)


def free_bytes(home: Path) -> int:
    try:
        stats = os.statvfs(home)
    except OSError:
        return 0
    return stats.f_bavail * stats.f_frsize


def state_dir_refusal(home: Path) -> str | None:
    """Whether the state directory refuses writes now, judged without writing: a read-only
    mount, or less than :data:`LOW_SPACE` bytes free."""
    try:
        stats = os.statvfs(home)
    except OSError:
        return None
    if stats.f_flag & os.ST_RDONLY:
        return "read_only"
    return "disk_full" if stats.f_bavail * stats.f_frsize < LOW_SPACE else None
