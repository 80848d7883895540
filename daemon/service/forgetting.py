"""Forget: a durable, resumable purge of memories and every trace of their text.

``ForgetRequested`` records the intent (the writer drops any later event about those ids, the
projections blank them); then, while the texts are still known: routed lines leave the files
memlane wrote, set-aside copies holding them (torn tails, damaged projections) are shredded, the log is rewritten without them
(in the writer's thread); then SQLite (FTS, free pages, WAL) and the vector index are scrubbed,
every file under the state directory and the routed files are byte-scanned for the texts, and
``Forgotten`` records the scan's counts. A restart resumes a request without its ``Forgotten``;
a retry runs every step again (each is idempotent).

``MEMLANE_TEST_CRASH_AT=<step>`` (tests only, passed in by the composition root) makes the
daemon exit with 137 right after the named step, as a kill -9 would.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec
import structlog

from memlane.daemon.domain.errors import BadRequest, NotFound
from memlane.daemon.domain.forgetting import (
    Traces,
    descendants,
    forget_answer,
    gather_traces,
    needles,
    purge,
)
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.writer import Writer
from memlane.daemon.service.unrouting import WriteFile, unroute
from memlane.events.ledger import LEDGER, append_ledger
from memlane.events.log import read_log
from memlane.events.model import Event, ForgetRequested, Forgotten, Record

log = structlog.get_logger()
CRASH_STEPS = ("requested", "gathered", "unrouted", "shredded", "rewriting", "rewritten",
               "sqlite_scrubbed", "vectors_scrubbed", "verified", "completed")
SKIP_SCAN = ("models",)  # downloaded model files under the state directory: never user text
# (patterns, paths) -> the paths holding any pattern: the byte search, outside the event
# loop's interpreter (the composition root hands in a child process's).
ScanFiles = Callable[[list[bytes], list[str]], Awaitable[list[str]]]


class Forgetting:
    def __init__(self, *, writer: Writer, reader: Reader, home: Path, log_dir: Path,
                 write_file: WriteFile, scan_files: ScanFiles,
                 crash_at: str | None = None) -> None:
        self._writer = writer
        self._reader = reader
        self._home = home
        self._log_dir = log_dir
        self._write_file = write_file
        self._scan_files = scan_files
        self._crash_at = crash_at

    async def forget(self, memory_id: int, *, keep_descendants: bool = False) -> dict[str, Any]:
        """Purge a memory (and, unless kept, what was consolidated from it) everywhere."""
        known = await self._reader.read(lambda c: c.execute(
            "SELECT 1 FROM memories WHERE id = ?", (memory_id,)).fetchone())
        if known is None:
            raise NotFound(f"no memory with id {memory_id}")
        ids = [memory_id] if keep_descendants else await self._reader.read(
            lambda c: with_descendants(c, [memory_id]))
        records, _ = await self._writer.submit(lambda _v, _s: (
            [ForgetRequested(memories=tuple(ids), keep_descendants=keep_descendants)], None))
        self._step("requested")
        return await self._complete(records[0].seq, ids)

    async def resume(self) -> list[dict[str, Any]]:
        """Finish every forget whose request has no ``Forgotten`` yet (run at start)."""
        pending = await self._reader.read(lambda c: c.execute(
            "SELECT seq, memories FROM forget_requests ORDER BY seq").fetchall())
        return [await self._complete(seq, msgspec.json.decode(ids, type=list[int]))
                for seq, ids in pending]

    async def verify(self, texts: Sequence[str]) -> dict[str, Any]:
        """The proof scan for texts the caller names (``memlane forget --verify``)."""
        patterns = needles(texts)
        if not patterns:
            raise BadRequest("nothing to look for: give a text of 8 bytes or more",
                             code="verify_text_too_short")
        targets = await self._reader.read(lambda c: _targets(c, None))
        return await self._scan(patterns, targets)

    async def _complete(self, request: int, ids: list[int]) -> dict[str, Any]:
        last = self._reader.last_seq
        traces = await anyio.to_thread.run_sync(
            lambda: gather_traces(read_log(self._log_dir, 1, upto=last), ids))
        self._step("gathered")
        patterns = needles([*traces.texts.values(), *traces.queries]) + traces.vectors
        targets = await self._reader.read(lambda c: _targets(c, ids))
        diffs = await anyio.to_thread.run_sync(self._unroute, targets, ids, traces)
        self._step("unrouted")
        await self._shred_copies(patterns)
        self._step("shredded")
        segments = await self._rewrite_log(ids, traces)
        self._step("rewritten")
        await self._scrub()
        scan = await self._scan(patterns, targets)
        self._step("verified")
        hashes = await self._reader.read(lambda c: dict(c.execute(
            f"SELECT id, content_hash FROM memories WHERE id IN ({','.join('?' * len(ids))})",
            ids).fetchall()))
        counts = {k: scan[k] for k in ("files_scanned", "needles", "matches")}
        records = await self._writer.append([Forgotten(
            memory=m, content_hash=hashes.get(m, ""), request=request, **counts) for m in ids])
        await anyio.to_thread.run_sync(append_ledger, self._home / LEDGER, records)
        self._step("completed")
        return forget_answer(ids, diffs=diffs, segments=segments, scan=scan)

    async def _rewrite_log(self, ids: list[int], traces: Traces) -> int:
        """Blank the records in the writer's thread, with nothing appended meanwhile."""
        transform = purge(ids, traces.queries)
        changed: list[int] = []
        started: list[bool] = []

        def crashing(record: Record) -> Record:
            new = transform(record)
            if new is not record and not started:
                started.append(True)
                self._step("rewriting")
            return new

        def rewrite() -> None:
            changed.append(self._writer.log.rewrite(crashing))

        nothing: Callable[[object, int], tuple[list[Event], None]] = lambda _v, _s: ([], None)
        await self._writer.submit(nothing, before=rewrite)
        return changed[0]

    async def _scrub(self) -> None:
        await self._reader.caught_up()  # the request is projected: rows and vectors are gone
        projections = self._reader.projections

        def sqlite_part() -> None:
            with projections.lock:
                projections.scrub_sqlite()

        await anyio.to_thread.run_sync(sqlite_part)
        self._step("sqlite_scrubbed")
        await anyio.to_thread.run_sync(projections.scrub_vectors)
        self._step("vectors_scrubbed")

    def _unroute(self, targets: list[str], ids: list[int], traces: Traces) -> list[dict[str, str]]:
        """Remove the memories' lines from the files memlane wrote; the diffs, per file."""
        texts = {memory: traces.texts.get(memory) for memory in ids}
        found = (unroute(Path(target), texts, self._write_file) for target in targets)
        return [diff for diff in found if diff is not None]

    async def _shred_copies(self, patterns: list[bytes]) -> None:
        """Overwrite and delete the set-aside copies (torn log tails, damaged projection
        files) that hold a forgotten text."""
        copies = await anyio.to_thread.run_sync(lambda: sorted(
            str(p) for p in [*(self._log_dir / "torn").glob("*"),
                             *(self._home / "projections").glob("damaged-*/*")]
            if p.is_file()))
        await anyio.to_thread.run_sync(_shred, await self._scan_files(patterns, copies))

    async def _scan(self, patterns: list[bytes], targets: list[str]) -> dict[str, Any]:
        """Byte-scan every file under the state directory and the routed files."""
        files = await anyio.to_thread.run_sync(self._scanned_files, targets)
        found = await self._scan_files(patterns, files)
        return {"files_scanned": len(files), "needles": len(patterns), "matches": len(found),
                "files_with_matches": found}

    def _scanned_files(self, targets: list[str]) -> list[str]:
        files = [p for p in self._home.rglob("*") if p.is_file() and not p.is_symlink()
                 and not _skipped(p.relative_to(self._home))]
        return [str(p) for p in files] + [t for t in targets if Path(t).is_file()]

    def _step(self, name: str) -> None:
        log.info("forget_step", step=name)
        if self._crash_at == name:
            os._exit(137)


def _skipped(relative: Path) -> bool:
    return bool(relative.parts) and relative.parts[0] in SKIP_SCAN


def _shred(paths: list[str]) -> None:
    for path in paths:
        with open(path, "r+b") as handle:
            handle.write(b"\0" * os.fstat(handle.fileno()).st_size)
            handle.flush()
            os.fsync(handle.fileno())
        os.unlink(path)


def with_descendants(conn: sqlite3.Connection, roots: Sequence[int]) -> list[int]:
    """``roots`` and every memory consolidated from them here, transitively."""
    return descendants(lambda parents: _children(conn, parents), roots)


def _children(conn: sqlite3.Connection, parents: Sequence[int]) -> list[int]:
    marks = ",".join("?" * len(parents))
    return [r[0] for r in conn.execute(
        f"SELECT DISTINCT child FROM lineage WHERE parent IN ({marks})", list(parents))]


def _targets(conn: sqlite3.Connection, ids: list[int] | None) -> list[str]:
    """The files memlane wrote lines into (for ``ids``, or for any memory)."""
    sql = "SELECT DISTINCT target FROM routes WHERE action = 'written'"
    if ids is None:
        return [r[0] for r in conn.execute(sql)]
    marks = ",".join("?" * len(ids))
    return [r[0] for r in conn.execute(f"{sql} AND memory IN ({marks})", ids)]
