"""The warm embedding engine: loads the model once, then coalesces concurrent requests.

Requests that arrive while a forward pass runs (or within an optional ``window``) share the
next pass (up to ``max_batch`` texts), so twenty hooks firing at once cost about one
pass. Inference runs in a worker thread behind a limiter of one: ONNX Runtime already uses the
cores it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio
import numpy as np
import structlog
from anyio.abc import TaskStatus

from memlane.daemon.embedder import Embedder
from memlane.daemon.errors import BadRequest, Unavailable

log = structlog.get_logger()


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
        self._jobs: list[_Job] = []
        self._wake = anyio.Event()
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
        self._jobs.append(job)
        self._wake.set()
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
        try:
            self.embedder = await anyio.to_thread.run_sync(self._load)
        except Exception as exc:  # reported by /v1/health and status; the daemon stays up
            self.load_error = f"embedding model failed to load: {exc}"
            log.error("model_load_failed", error=str(exc))
            return
        finally:
            self._ready.set()
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            if self._window and sum(len(j.texts) for j in self._jobs) < self._max_batch:
                await anyio.sleep(self._window)
            while self._jobs:
                await self._run_pass(self._take_batch())

    def _take_batch(self) -> list[_Job]:
        """The oldest job and every queued job of the same kind that fits beside it."""
        first = self._jobs[0]
        batch, rest, size = [], [], 0
        for job in self._jobs:
            same = (job.input_type, job.dims) == (first.input_type, first.dims)
            if same and (not batch or size + len(job.texts) <= self._max_batch):
                batch.append(job)
                size += len(job.texts)
            else:
                rest.append(job)
        self._jobs = rest
        return batch

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
