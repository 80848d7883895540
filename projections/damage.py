"""Telling damage from a full or read-only disk, and setting damaged projection files aside.

Projections are disposable: a damaged file is moved to ``damaged-<time>/`` beside it (kept for a
post-mortem, never read again) and rebuilt from the log. A full, read-only or failing disk is
not damage: rebuilding cannot help, so the caller retries later instead.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# primary SQLite result codes (the low byte of an extended code)
SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26
SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 8, 10, 13, 14


_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def _primary(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def is_corruption(exc: BaseException) -> bool:
    """A SQLite error that says the file itself is damaged."""
    return isinstance(exc, sqlite3.DatabaseError) and _primary(exc) in (SQLITE_CORRUPT,
                                                                       SQLITE_NOTADB)


def is_storage_error(exc: BaseException) -> bool:
    """An error from the disk under a projection (full, read-only, I/O), from SQLite or from
    the vectors' files as they grow: retry, do not rebuild."""
    if isinstance(exc, OSError):
        return exc.errno in _STORAGE_ERRNOS
    return isinstance(exc, sqlite3.DatabaseError) and _primary(exc) in (
        SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN)


def integrity_problem(conn: sqlite3.Connection) -> str | None:
    """What ``PRAGMA quick_check`` finds wrong (None: the file is sound)."""
    try:
        rows = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
    except sqlite3.DatabaseError as exc:
        if is_storage_error(exc):
            raise
        return str(exc)
    return None if rows == ["ok"] else "; ".join(str(r) for r in rows)


@dataclass
class DamageReport:
    """How often damaged projection files were set aside and rebuilt, and the last reason."""

    rebuilt_after_damage: int = 0
    last_damage: str | None = None
    set_aside: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"rebuilt_after_damage": self.rebuilt_after_damage,
                "last_damage": self.last_damage, "set_aside": self.set_aside}


def set_aside(files: Iterable[Path], report: DamageReport, reason: str) -> Path:
    """Move the existing ``files`` into a new ``damaged-<time>`` directory beside them."""
    files = [f for f in files if f.exists()]
    directory = _aside_dir(next(iter(files)).parent if files else Path("."))
    directory.mkdir(mode=0o700)
    for path in files:
        os.replace(path, directory / path.name)
    report.rebuilt_after_damage += 1
    report.last_damage = reason
    report.set_aside = str(directory)
    return directory


def _aside_dir(parent: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    candidate, n = parent / f"damaged-{stamp}", 1
    while candidate.exists():
        n += 1
        candidate = parent / f"damaged-{stamp}-{n}"
    return candidate
