"""Once the model is loaded: record a pipeline change, finish a link pass a crash interrupted,
then queue every live memory that lacks a vector from the current pipeline (after a restart,
a model switch or an overflow)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import structlog

from memlane.daemon.runtime.indexer import Indexer
from memlane.daemon.runtime.linker import Linker
from memlane.daemon.runtime.ports import Embeds
from memlane.daemon.runtime.reader import Reader
from memlane.daemon.runtime.writer import Writer
from memlane.events.errors import LogWriteFailed
from memlane.events.model import ModelChanged
from memlane.projections import queries

log = structlog.get_logger()
CHUNK = 1000
MODEL_WAIT = 600.0


class Backlog:
    def __init__(self, *, engine: Embeds, reader: Reader, writer: Writer,
                 indexer: Indexer, linker: Linker, log_dir: Path) -> None:
        self._engine = engine
        self._linker = linker
        self._log_dir = log_dir
        self._reader = reader
        self._writer = writer
        self._indexer = indexer

    async def run(self) -> None:
        with anyio.move_on_after(MODEL_WAIT):
            while not self._engine.ready and self._engine.load_error is None:
                await anyio.sleep(0.05)
        embedder = self._engine.embedder
        if embedder is None:
            return
        if self._reader.projections.vectors.pipeline != embedder.pipeline:
            await self._writer.append([ModelChanged(model=embedder.spec.name,
                                                    pipeline=embedder.pipeline,
                                                    dims=embedder.dims)])
        try:
            await self._linker.finish_interrupted(embedder.spec, self._log_dir,
                                                  self._reader.last_seq)
        except LogWriteFailed as exc:  # the disk refused the links: the next start tries again
            log.warning("link_pass_deferred", error=str(exc))
        self._indexer.pipeline_recorded.set()
        await self._indexer.enqueue(self.missing())

    async def missing(self) -> AsyncIterator[list[tuple[int, str]]]:
        """(id, text) of live memories without a vector from the loaded pipeline, in chunks
        (the texts are read a chunk at a time)."""
        embedder = self._engine.embedder
        if embedder is None:
            return
        ids = await self._reader.read(lambda conn: queries.unembedded_ids(conn, embedder.pipeline))
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            texts = await self._reader.read(lambda conn, chunk=chunk: queries.texts_of(conn, chunk))
            yield [(i, texts[i]) for i in chunk if i in texts]
