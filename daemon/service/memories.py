"""Memories: store, import, get, forget (in :mod:`forgetting`), restore, history, export and
rebuild.

The imperative shell: it gathers inputs, calls the pure deciders, hands events to the writer
and reads the projections once they show every acknowledged write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from memlane.daemon.domain.admission import BatchView
from memlane.daemon.domain.errors import BadRequest, NotFound
from memlane.daemon.domain.history import history
from memlane.daemon.domain.identifiers import protect_identifier
from memlane.daemon.domain.kinds import detect_kind
from memlane.daemon.domain.redaction import redact
from memlane.daemon.domain.storing import StoreOutcome, StoreRequest, decide_store
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.writer import Writer
from memlane.daemon.service.forgetting import Forgetting, ScanFiles, WriteFile
from memlane.daemon.service.progress import JobProgress
from memlane.daemon.service.requests import StoreBody
from memlane.events.model import KINDS, Event, Restored
from memlane.events.seek import Seeker
from memlane.projections import memory_events, queries


class Memories:
    def __init__(self, *, writer: Writer, reader: Reader, log_dir: Path,
                 identifier_key: bytes, write_file: WriteFile, scan_files: ScanFiles,
                 crash_at: str | None = None) -> None:
        self._key = identifier_key
        self._writer = writer
        self._reader = reader
        self._log_dir = log_dir
        self._seeker = Seeker(log_dir)
        self._forgetting = Forgetting(writer=writer, reader=reader, home=log_dir.parent,
                                      log_dir=log_dir, write_file=write_file,
                                      scan_files=scan_files, crash_at=crash_at)
        self.rebuilding = JobProgress()  # seqs replayed, to replay

    async def store(self, body: StoreBody) -> dict[str, Any]:
        request = to_store_request(body, key=self._key)
        _, outcome = await self._writer.submit(lambda view, seq: decide_store(view, request, seq))
        return store_answer(outcome)

    async def import_many(self, bodies: list[StoreBody]) -> dict[str, Any]:
        requests = [to_store_request(b, key=self._key) for b in bodies]

        def decide_all(view: BatchView, seq: int) -> tuple[list[Event], list[StoreOutcome]]:
            events: list[Event] = []
            outcomes = []
            for request in requests:
                new, outcome = decide_store(view, request, seq + len(events))
                view.observe(new)
                events.extend(new)
                outcomes.append(outcome)
            return events, outcomes

        _, outcomes = await self._writer.submit(decide_all)
        duplicates = sum(o.duplicate for o in outcomes)
        return {"stored": len(outcomes) - duplicates, "duplicates": duplicates,
                "ids": [o.id for o in outcomes]}

    async def get(self, memory_id: int) -> dict[str, Any]:
        memory = await self._reader.read(lambda conn: queries.get_memory(conn, memory_id))
        if memory is None:
            raise NotFound(f"no memory with id {memory_id}")
        return memory

    async def forget(self, memory_id: int, *, keep_descendants: bool = False) -> dict[str, Any]:
        """Purge a memory's text everywhere (see :mod:`forgetting`)."""
        return await self._forgetting.forget(memory_id, keep_descendants=keep_descendants)

    async def verify_forgotten(self, texts: list[str]) -> dict[str, Any]:
        return await self._forgetting.verify(texts)

    async def resume_forgets(self) -> None:
        """Finish the forgets a crash interrupted (called at start)."""
        await self._forgetting.resume()

    async def history(self, memory_id: int) -> list[dict[str, Any]]:
        """Every event that touched the memory: the records its index of seqs points at."""
        seqs = await self._reader.read(lambda conn: memory_events.seqs_of(conn, memory_id))
        return await anyio.to_thread.run_sync(
            lambda: history(self._seeker.records_of(memory_id, seqs), memory_id))

    async def restore(self, memory_id: int) -> dict[str, Any]:
        """Undo an expiry."""
        memory = await self.get(memory_id)
        if memory["state"] != "expired":
            raise BadRequest(f"memory {memory_id} is {memory['state']}, not expired",
                             code="not_expired")
        await self._writer.append([Restored(memory=memory_id)])
        return await self.get(memory_id)

    async def export(self, *, project: str | None, include_expired: bool) -> list[dict[str, Any]]:
        return await self._reader.read(lambda conn: list(queries.export_rows(
            conn, project=project, include_expired=include_expired)))

    async def rebuild(self) -> dict[str, int]:
        await self._reader.caught_up()
        last = self._reader.last_seq
        with self.rebuilding.running(last):
            count = await anyio.to_thread.run_sync(lambda: self._reader.projections.rebuild(
                self._log_dir, last, progress=self.rebuilding.note))
        return {"replayed": count, "last_seq": last}

    def rebuild_state(self) -> dict[str, Any]:
        return self.rebuilding.state()


def to_store_request(body: StoreBody, *, key: bytes) -> StoreRequest:
    """Validate a store body and decide its kind; text and tags are stored with secrets
    redacted, an idempotency key holding one as its keyed hash."""
    if not body.text.strip():
        raise BadRequest("text is blank", code="blank_text")
    kind = detect_kind(body.text, body.tags, body.kind)
    if kind not in KINDS:
        raise BadRequest(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}", code="bad_kind")
    clean, tags = redact(body.text), [redact(tag) for tag in body.tags]
    idempotency_key = body.idempotency_key and protect_identifier(body.idempotency_key, key=key)
    return StoreRequest(text=clean.text, project=body.project or "global", kind=kind,
                        source=body.source, tags=tuple(tag.text for tag in tags),
                        idempotency_key=idempotency_key,
                        redactions=clean.count + sum(tag.count for tag in tags)
                        + body.redacted_before)


def store_answer(outcome: StoreOutcome) -> dict[str, Any]:
    return {"id": outcome.id, "seq": outcome.id, "duplicate": outcome.duplicate,
            "kind": outcome.kind, "redactions": outcome.redactions}
