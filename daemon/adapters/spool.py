"""The prompt spool: a ``#decision`` (or ``#note``) prompt posted while the daemon is down or
starting is appended here by the hook (``memlane hook-spool``) and replayed by the daemon once
it is up, through the normal store path (redaction, kinds, dedup).

A 0600 JSON-lines file in a 0700 folder of the state directory. Writers and the replay take an
exclusive ``flock``; the replay moves what it read to ``prompts.replaying`` before clearing the
spool, and removes that file only after every entry is stored, so a crash mid-replay loses
nothing (a second replay is idempotent: entries carry their own key). It holds the raw prompt
until replayed: forget must scrub it too.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

MAX_ENTRY = 1024 * 1024


def spool_dir(home: Path) -> Path:
    return home / "spool"


class SpoolFile:
    """The spool of one state directory, as the daemon's replay uses it."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def waiting(self) -> bool:
        return waiting(self.home)

    def take(self) -> list[bytes]:
        return take_entries(self.home)

    def done(self) -> None:
        replayed(self.home)


def append_entry(home: Path, entry: bytes) -> None:
    """Append one JSON line (raises OSError when the spool cannot be written)."""
    folder = spool_dir(home)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(folder / "prompts.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, entry.replace(b"\n", b" ")[:MAX_ENTRY] + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def take_entries(home: Path) -> list[bytes]:
    """Every spooled line, moved aside for the replay (see :func:`replayed`)."""
    folder = spool_dir(home)
    aside = folder / "prompts.replaying"
    lines = aside.read_bytes().splitlines() if aside.exists() else []
    spool = folder / "prompts.jsonl"
    if not spool.exists():
        return lines
    fd = os.open(spool, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd), "rb") as handle:
            fresh = handle.read()
        if fresh:
            out = os.open(aside, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(out, fresh)
                os.fsync(out)
            finally:
                os.close(out)
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)
    return lines + fresh.splitlines()


def waiting(home: Path) -> bool:
    """Whether anything waits for a replay (a cheap stat: checked on hooks)."""
    folder = spool_dir(home)
    try:
        return (folder / "prompts.jsonl").stat().st_size > 0 or \
            (folder / "prompts.replaying").exists()
    except FileNotFoundError:
        return False


def replayed(home: Path) -> None:
    """Every taken entry is stored: drop the copy set aside."""
    (spool_dir(home) / "prompts.replaying").unlink(missing_ok=True)
