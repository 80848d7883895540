"""The warm embedding engine: loads the model once, then coalesces concurrent requests.

Requests that arrive while a forward pass runs (or within an optional ``window``) share the
next pass (up to ``max_batch`` texts), so twenty hooks firing at once cost about one
pass. Requests wait in a bounded memory object stream owned by the engine's task. Inference runs in a worker thread behind a limiter of one: ONNX Runtime already uses the
cores it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio
import numpy as np
import structlog
from anyio.abc import TaskStatus

from memlane.daemon.adapters.embedder import Embedder
from memlane.daemon.domain.errors import BadRequest, Unavailable

log = structlog.get_logger()
QUEUE = 4096  # embedding requests waiting for a pass; more make callers wait


@dataclass
class _Job:
    texts: Sequence[str]
    input_type: str
    dims: int | None
    done: anyio.Event = field(default_factory=anyio.Event)
    result: np.ndarray | None = None
    error: BaseException | None = None


class EmbedEngine:
    """Async front of an :class:`Embedder` with micro-batching."""

    def __init__(self, load: Callable[[], Embedder], *, window: float = 0.0,
                 max_batch: int = 64) -> None:
        self._load = load
        self._window = window
        self._max_batch = max_batch
        self._send, self._receive = anyio.create_memory_object_stream[_Job](QUEUE)
        self._ready = anyio.Event()
        self._limiter = anyio.CapacityLimiter(1)
        self.embedder: Embedder | None = None
        self.load_error: str | None = None
        self.passes = 0

    @property
    def ready(self) -> bool:
        return self.embedder is not None

    async def embed(self, texts: Sequence[str], *, input_type: str = "document",
                    dims: int | None = None, timeout: float = 30.0) -> np.ndarray:
        """Vectors for ``texts`` (rows L2-normalised), batched with concurrent callers."""
        with anyio.move_on_after(timeout):
            await self._ready.wait()
        if self.embedder is None:
            raise Unavailable(self.load_error or "the embedding model is still loading")
        if any(not text.strip() for text in texts):
            raise BadRequest("cannot embed a blank text; give it some words", code="blank_input")
        job = _Job(texts, input_type, dims)
        try:
            await self._send.send(job)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise Unavailable("the embedding engine has stopped") from None
        await job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def embed_now(self, texts: Sequence[str], *, input_type: str = "document") -> np.ndarray:
        """Embed synchronously in the calling thread (replay of a backlog, tests)."""
        assert self.embedder is not None
        return self.embedder.embed(texts, input_type=input_type)  # type: ignore[arg-type]

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        with self._send, self._receive:
            try:
                self.embedder = await anyio.to_thread.run_sync(self._load)
            except Exception as exc:  # reported by /v1/health and status; the daemon stays up
                self.load_error = f"embedding model failed to load: {exc}"
                log.error("model_load_failed", error=str(exc))
                return
            finally:
                self._ready.set()
            await self._serve()

    async def _serve(self) -> None:
        waiting: list[_Job] = []
        while True:
            if not waiting:
                waiting.append(await self._receive.receive())
            waiting.extend(self._arrived())
            if self._window and sum(len(j.texts) for j in waiting) < self._max_batch:
                await anyio.sleep(self._window)
                waiting.extend(self._arrived())
            batch, waiting = take_batch(waiting, self._max_batch)
            await self._run_pass(batch)

    def _arrived(self) -> list[_Job]:
        jobs = []
        while True:
            try:
                jobs.append(self._receive.receive_nowait())
            except anyio.WouldBlock:
                return jobs

    async def _run_pass(self, batch: list[_Job]) -> None:
        texts = [t for job in batch for t in job.texts]
        embedder = self.embedder
        assert embedder is not None
        first = batch[0]
        try:
            with anyio.CancelScope(shield=True):
                vectors = await anyio.to_thread.run_sync(
                    lambda: embedder.embed(texts, input_type=first.input_type,  # type: ignore[arg-type]
                                           dims=first.dims),
                    limiter=self._limiter)
        except Exception as exc:
            for job in batch:
                job.error = exc
                job.done.set()
            return
        self.passes += 1
        start = 0
        for job in batch:
            job.result = vectors[start:start + len(job.texts)]
            start += len(job.texts)
            job.done.set()


def take_batch(jobs: list[_Job], max_batch: int) -> tuple[list[_Job], list[_Job]]:
    """The oldest job and every waiting job of the same kind that fits beside it; the rest."""
    first = jobs[0]
    batch, rest, size = [], [], 0
    for job in jobs:
        same = (job.input_type, job.dims) == (first.input_type, first.dims)
        if same and (not batch or size + len(job.texts) <= max_batch):
            batch.append(job)
            size += len(job.texts)
        else:
            rest.append(job)
    return batch, rest
