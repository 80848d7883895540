"""``memlane backup``: a consistent online copy of the log up to a position, optionally with
the projections, while the daemon serves.

The position is taken in the writer's thread between two batches (every acknowledged record up
to it is in the copy); the bytes are copied in a worker thread while appends go on. The
projections, when asked for, are copied as they stand (SQLite through its online backup, the
vectors as last saved): a restore replays whatever they lack. The forget ledger stays out of
the backup (see :mod:`memlane.events.ledger`). With the daemon stopped, the CLI writes the same
backup itself (``cli/offline.py``), holding the writer lock.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from datetime import UTC, datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import structlog

from memlane.daemon.domain.errors import BadRequest
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.writer import Writer
from memlane.daemon.service.progress import JobProgress
from memlane.events.backup import Progress, Snapshot, copy_snapshot
from memlane.events.disk import OsDisk
from memlane.events.model import Event

log = structlog.get_logger()
MANIFEST = "backup.json"
FORMAT = 1


class Backups:
    def __init__(self, *, writer: Writer, reader: Reader) -> None:
        self._writer = writer
        self._reader = reader
        self._lock = anyio.Lock()
        self.progress = JobProgress()  # bytes copied, to copy

    def state(self) -> dict[str, Any]:
        return self.progress.state()

    async def backup(self, dest: str, *, projections: bool) -> dict[str, Any]:
        target = check_target(dest)
        async with self._lock:
            started = time.monotonic()
            taken: list[Snapshot] = []
            await self._writer.submit(_nothing, before=lambda: taken.append(
                self._writer.log.snapshot()))
            snapshot = taken[0]
            try:
                with self.progress.running(snapshot.size):
                    manifest = await anyio.to_thread.run_sync(lambda: write_backup(
                        snapshot, target, started=started, progress=self.progress.note,
                        projections=self._copy_projections if projections else None))
            finally:
                snapshot.close()
            log.info("backed_up", **manifest)
            return {**manifest, "path": str(target)}

    def _copy_projections(self, target: Path) -> None:
        """SQLite through a read connection's online backup (a snapshot that does not stop
        the projector); the vectors as just saved, before an apply changes their files."""
        projections = self._reader.projections
        target.mkdir(mode=0o700)
        with projections.reads.connection() as source:  # a forget's scrub waits for it
            copy_sqlite(source, target / projections.sqlite_path.name)
        projections.save_vectors(then=lambda: copy_vector_files(projections.vectors_path, target))


def check_target(dest: str) -> Path:
    """The backup directory: absolute, and new or empty."""
    target = Path(dest)
    if not target.is_absolute():
        raise BadRequest(f"give the backup directory as an absolute path, not {dest!r}",
                         code="backup_path_relative")
    if target.exists() and any(target.iterdir()):
        raise BadRequest(f"{dest} is not empty; back up into a new directory",
                         code="backup_target_not_empty")
    return target


def write_backup(snapshot: Snapshot, target: Path, *, started: float, progress: Progress,
                 projections: Callable[[Path], None] | None) -> dict[str, Any]:
    """Copy the snapshot (and, with ``projections``, the projections) under ``target`` and
    write the manifest last; returns it. Blocking: run in a worker thread."""
    copy_snapshot(snapshot, target / "log", progress)
    if projections is not None:
        projections(target / "projections")
    manifest = {"format": FORMAT, "position": snapshot.position,
                "taken_at": datetime.now(UTC).isoformat(),
                "log_bytes": snapshot.size, "projections": projections is not None,
                "seconds": round(time.monotonic() - started, 3)}
    OsDisk().create(target / MANIFEST, json.dumps(manifest, indent=2).encode())
    return manifest


def copy_projections(sqlite_path: Path, vectors_path: Path, target: Path) -> None:
    """The projections of a stopped daemon, into ``target`` (a new directory)."""
    target.mkdir(mode=0o700)
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    try:
        copy_sqlite(source, target / sqlite_path.name)
    finally:
        source.close()
    copy_vector_files(vectors_path, target)


def copy_sqlite(source: sqlite3.Connection, target: Path) -> None:
    """Through SQLite's online backup from ``source`` (a snapshot that does not stop writers)."""
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()


def copy_vector_files(vectors_path: Path, target: Path) -> None:
    """The vector index files as they are on disk (the caller keeps them from changing)."""
    for path in _vector_files(vectors_path):
        if path.exists():
            shutil.copy2(path, target / path.name)


def _vector_files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + ".keys"), path.with_name(path.name + ".json")]


def _nothing(_view: object, _seq: int) -> tuple[list[Event], None]:
    return [], None
