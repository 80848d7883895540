"""Saving a usearch HNSW graph without holding the daemon's GIL (issues 13 and 20).

usearch's ``save`` holds the GIL for as long as it writes (~220 ms at 100k vectors of 384
dims: the event loop would stand still). Instead, as Redis's BGSAVE does, a forked child
writes the file from its copy-on-write snapshot of the index and exits; the parent waits for
it (``waitpid`` releases the GIL), then syncs, checksums (in chunks) and renames the file. The
GIL is held only while the fork copies the page tables, which grows with the daemon's resident
memory (``python -m bench.bench_vector_save`` measures both).

The child runs nothing but usearch's save and ``os._exit``: no logging, no locks, no imports,
which another thread may have held at the fork. A fork that fails is logged and the graph is
saved in this process instead; a child that does not exit 0 raises :class:`ChildFailed` (after
a log line) for the caller to save in process. Each save writes its own temporary file, renamed
over the graph only once complete and synced: a kill at any moment leaves the old file and its
metadata as they were, and the next start deletes the leftover (:func:`remove_leftovers`).
"""

from __future__ import annotations

import itertools
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import crc32c
import structlog

if TYPE_CHECKING:  # importing usearch before onnxruntime crashes onnxruntime (vector_store)
    from usearch.index import Index

log = structlog.get_logger()
CHUNK = 1 << 20  # bytes checksummed per call: no single call holds the GIL for long
_saves = itertools.count()


class ChildFailed(RuntimeError):
    """The forked child did not write the graph (it failed or was killed)."""


class GraphSave:
    """One save of a graph to ``path``: :func:`start` it while the index holds still, then
    :meth:`finish` it from any thread (the index may change meanwhile)."""

    def __init__(self, path: Path, tmp: Path, pid: int | None) -> None:
        self.path, self.tmp, self.pid = path, tmp, pid

    def finish(self) -> tuple[int, int]:
        """Wait for the child, then sync the file and rename it over ``path``; returns its
        size and CRC32C. A failed child raises :class:`ChildFailed`; ``path`` is untouched."""
        try:
            if self.pid is not None:
                _wait(self.pid)
            fsync_path(self.tmp)
            size, crc = checksum(self.tmp)
            os.replace(self.tmp, self.path)
        finally:
            self.tmp.unlink(missing_ok=True)  # a partial file; a no-op once renamed
        return size, crc


def start(index: Index, path: Path) -> GraphSave:
    """Fork the child that writes ``index`` (call with no change to ``index`` under way); if
    the fork fails, write it here, holding the GIL as long as that takes."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{next(_saves)}.tmp")
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns that a child forked beside threads may deadlock on a lock
            # one of them held: this child takes none (see the module's docstring).
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError as exc:
        log.warning("vector_save_fork_failed", error=str(exc), action="saving in process")
        return save_here(index, path, tmp)
    if pid == 0:
        _child(index, str(tmp))
    return GraphSave(path, tmp, pid)


def save_here(index: Index, path: Path, tmp: Path | None = None) -> GraphSave:
    """Write ``index`` in this process (holding the GIL throughout); finish as usual."""
    tmp = tmp or path.with_name(f"{path.name}.{os.getpid()}-{next(_saves)}.tmp")
    index.save(str(tmp))
    return GraphSave(path, tmp, None)


def _child(index: Index, tmp: str) -> NoReturn:
    """The forked child: write the file and exit at once, whatever happens (an exception must
    not unwind into a copy of the daemon)."""
    status = 1
    try:
        index.save(tmp)
        status = 0
    finally:
        os._exit(status)


def _wait(pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return
    reason = (f"exited with status {os.WEXITSTATUS(status)}" if os.WIFEXITED(status)
              else f"was killed by signal {os.WTERMSIG(status)}")
    log.warning("vector_save_child_failed", pid=pid, reason=reason, action="saving in process")
    raise ChildFailed(f"the forked vector save {reason}")


def checksum(path: Path) -> tuple[int, int]:
    """The size and CRC32C of the file at ``path``, read in chunks."""
    size, crc = 0, 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            size += len(chunk)
            crc = crc32c.crc32c(chunk, crc)
    return size, crc


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_leftovers(path: Path) -> None:
    """Delete the temporary files of saves a kill interrupted (call at start, before any save)."""
    for leftover in path.parent.glob(f"{path.name}.*tmp"):
        leftover.unlink(missing_ok=True)
