"""The warm embedding engine: loads the model once, then coalesces concurrent requests.

Requests that arrive while a forward pass runs (or within an optional ``window``) share the
next pass (up to ``max_batch`` texts), so twenty hooks firing at once cost about one pass. A
request's texts go shortest first, so that a pass pads little. A bulk pass also stops at
``PASS_BUDGET_S`` of compute, as the passes before predict it
(:mod:`memlane.daemon.domain.pass_cost`: the cap holds for any model and machine), or up to
``TAIL_ALLOWANCE`` past it to finish a request rather than leave its tail to a pass. A request
larger than a pass is served in slices, and after each slice it goes behind the requests that
waited: a big request never holds the engine from others for more than one slice. A request
over ``MAX_REQUEST_TOKENS`` is refused (413 ``embeddings_too_large``).

Two lanes: an interactive request (a search or hook query) goes before every bulk one and
shares its pass only with other interactive requests, so it waits for at most the pass under
way; a bulk request that may be shed (``POST /v1/embeddings``) is refused with 503 ``busy``
while ``BULK_QUEUE_TEXTS`` bulk texts already wait. Requests wait in a bounded memory object
stream owned by the engine's task. Within ``INTERACTIVE_QUIET_S`` of an interactive request,
bulk passes take ``QUIET_PASS_BUDGET_S``: a query then waits for a short pass, while a bulk
import with nobody searching keeps full ones. Passes run one at a time in a thread of their
own (:mod:`memlane.daemon.adapters.pass_thread`): ONNX Runtime already uses the cores it is
given.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Literal

import anyio
import numpy as np
import structlog
from anyio.abc import TaskStatus

from memlane.daemon.adapters.embedder import Embedder
from memlane.daemon.adapters.pass_thread import PassThread
from memlane.daemon.domain.errors import BadRequest, Busy, PayloadTooLarge, Unavailable
from memlane.daemon.domain.pass_cost import PassCost, text_cost

log = structlog.get_logger()
QUEUE = 4096  # embedding requests waiting for a pass; more make callers wait
MAX_REQUEST_TOKENS = 256 * 1024  # inputs x tokens of one request (about 1 MB of text)
BULK_QUEUE_TEXTS = 4096  # bulk texts waiting beyond which a sheddable request gets 503 busy
INTERACTIVE_QUIET_S = 2.0  # bulk passes stay short this long after an interactive request
PASS_BUDGET_S = 0.050  # compute of one bulk pass: what an interactive request may wait behind
QUIET_PASS_BUDGET_S = 0.020  # the same within INTERACTIVE_QUIET_S of an interactive request
# A bulk pass may run this share over its budget to finish a request rather than leave the
# request's tail to a pass of its own: every pass, however small, pays the fixed part again
# (a batch of 20 short texts, ~51 ms of compute, ran as 2 passes taking ~1.3x as long as one).
# An interactive request may wait behind that much more (62.5 ms, or 25 ms when quiet).
TAIL_ALLOWANCE = 0.25
Lane = Literal["interactive", "bulk"]


@dataclass
class _Job:
    texts: Sequence[str]  # shortest first (see :func:`_job`)
    input_type: str
    dims: int | None
    lane: Lane = "bulk"
    done: anyio.Event = field(default_factory=anyio.Event)
    result: np.ndarray | None = None
    tokens: int = 0  # what its texts cost, counted by the passes that embedded them
    error: BaseException | None = None
    taken: int = 0  # texts handed to passes so far
    abandoned: bool = False  # its caller went away (cancelled): no pass is spent on it
    parts: list[np.ndarray] = field(default_factory=list)
    order: list[int] | None = None  # where each text stood in the request, when it moved
    read: int | None = None  # characters of each text the model reads, if not all (a query)
    suffix: list[int] | None = None  # rest_cost of each index, once asked

    @property
    def kind(self) -> tuple[str, int | None, Lane]:
        return self.input_type, self.dims, self.lane

    def cost(self, index: int) -> int:
        return text_cost(self.texts[index], self.read)

    def rest_cost(self, index: int) -> int:
        """What the texts from ``index`` to the end cost."""
        if self.suffix is None:
            costs = [self.cost(i) for i in range(len(self.texts))]
            self.suffix = [*itertools.accumulate(reversed(costs))][::-1] + [0]
        return self.suffix[index]

    def finish(self, part: np.ndarray) -> None:
        """Keep one slice's vectors; the last slice completes the job."""
        self.parts.append(part)
        if sum(len(p) for p in self.parts) == len(self.texts):
            result = self.parts[0] if len(self.parts) == 1 else np.concatenate(self.parts)
            if self.order is not None:  # back to the request's order
                moved = np.empty_like(result)
                moved[self.order] = result
                result = moved
            self.result = result
            self.done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()


def _job(texts: Sequence[str], input_type: str, dims: int | None, lane: Lane) -> _Job:
    """A job with its texts shortest first: the passes that slice it then hold texts of like
    lengths, which pad less (a pass pads each text to its longest; 6-12% less compute for the
    peer benchmark's notes of mixed lengths, in process)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    if order == list(range(len(texts))):
        return _Job(texts, input_type, dims, lane)
    return _Job([texts[i] for i in order], input_type, dims, lane, order=order)


def start_loading(load: Callable[[], Embedder]) -> Callable[[], Embedder]:
    """Start ``load`` in a thread of its own now; the returned call waits for the model (or
    raises what the load raised). The start does its other work meanwhile: ONNX Runtime
    builds a session without holding the GIL, so a second core loads the model while the
    projections open and catch up (issue 16: ready within a second)."""
    future: Future[Embedder] = Future()

    def run() -> None:
        try:
            future.set_result(load())
        except BaseException as exc:  # handed to whoever waits for the model
            future.set_exception(exc)

    threading.Thread(target=run, name="memlane-model-load").start()
    return future.result


class EmbedEngine:
    """Async front of an :class:`Embedder` with micro-batching."""

    def __init__(self, load: Callable[[], Embedder], *, window: float = 0.0,
                 max_batch: int = 64) -> None:
        self._load = load
        self._window = window
        self._max_batch = max_batch
        self._send, self._receive = anyio.create_memory_object_stream[_Job](QUEUE)
        self._ready = anyio.Event()
        self.embedder: Embedder | None = None
        self.load_error: str | None = None
        self.passes = 0
        self.bulk_waiting = 0  # texts of bulk requests not yet embedded
        self._interactive_at = -INTERACTIVE_QUIET_S  # when the last interactive request came
        self.cost = PassCost()

    @property
    def ready(self) -> bool:
        return self.embedder is not None

    async def embed(self, texts: Sequence[str], *, input_type: str = "document",
                    dims: int | None = None, timeout: float = 30.0, lane: Lane = "bulk",
                    shed: bool = False) -> np.ndarray:
        """Vectors for ``texts`` (rows L2-normalised), batched with concurrent callers of its
        lane; ``shed`` refuses a bulk request with :class:`Busy` while the bulk queue is full."""
        return (await self.embed_counted(texts, input_type=input_type, dims=dims,
                                         timeout=timeout, lane=lane, shed=shed))[0]

    async def embed_counted(self, texts: Sequence[str], *, input_type: str = "document",
                            dims: int | None = None, timeout: float = 30.0,
                            lane: Lane = "bulk", shed: bool = False) -> tuple[np.ndarray, int]:
        """As :meth:`embed`, with the tokens the texts cost, as the passes encode them
        (:meth:`Embedder.embed_counted`; only a request too long to take is counted apart)."""
        if not self._ready.is_set():  # waiting on a set event would still cost a loop turn
            with anyio.move_on_after(timeout):
                await self._ready.wait()
        if self.embedder is None:
            raise Unavailable(self.load_error or "the embedding model is still loading")
        if any(not text.strip() for text in texts):
            raise BadRequest("cannot embed a blank text; give it some words", code="blank_input")
        await self._check_size(texts)
        if shed and lane == "bulk" and self.bulk_waiting >= BULK_QUEUE_TEXTS:
            raise Busy(f"{self.bulk_waiting} texts already wait to be embedded; retry shortly")
        job = _job(texts, input_type, dims, lane)
        if input_type == "query":  # the model reads a query's first window only
            job.read = self.embedder.query_chars
        if lane == "interactive":
            self._interactive_at = time.monotonic()
        bulk = len(texts) if lane == "bulk" else 0
        self.bulk_waiting += bulk
        try:
            try:  # a send that cannot block skips send()'s loop turn
                self._send.send_nowait(job)
            except anyio.WouldBlock:
                await self._send.send(job)
            await job.done.wait()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise Unavailable("the embedding engine has stopped") from None
        finally:
            self.bulk_waiting -= bulk
            job.abandoned = not job.done.is_set()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result, job.tokens

    async def _check_size(self, texts: Sequence[str]) -> None:
        """Refuse a request over the token cap (counted only when its characters could be)."""
        if sum(len(text) for text in texts) <= MAX_REQUEST_TOKENS:
            return
        embedder = self.embedder
        assert embedder is not None
        tokens = await anyio.to_thread.run_sync(embedder.count_tokens, texts)
        if tokens > MAX_REQUEST_TOKENS:
            raise PayloadTooLarge(f"{len(texts)} inputs of {tokens} tokens in all exceed the "
                                  f"{MAX_REQUEST_TOKENS} tokens one request may embed; split it",
                                  code="embeddings_too_large")

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
            passes = PassThread()
            try:
                await self._serve(passes)
            finally:
                passes.close()

    async def _serve(self, passes: PassThread) -> None:
        waiting: list[_Job] = []
        while True:
            if not waiting:
                waiting.append(await self._receive.receive())
            waiting.extend(self._arrived())
            if self._window and sum(len(j.texts) for j in waiting) < self._max_batch:
                await anyio.sleep(self._window)
                waiting.extend(self._arrived())
            waiting = [job for job in waiting if not job.abandoned]
            if not waiting:
                continue
            batch, waiting = take_batch(waiting, self._max_batch, self._bulk_budget())
            await self._run_pass(batch, passes)
            waiting = [job for job in waiting if not job.done.is_set()]  # failed mid-way

    def _arrived(self) -> list[_Job]:
        jobs = []
        while True:
            try:
                jobs.append(self._receive.receive_nowait())
            except anyio.WouldBlock:
                return jobs

    def _bulk_budget(self) -> float:
        """The cost units of a bulk pass: shorter while someone is searching or prompting, so
        that a query waits for a short pass, not a full one."""
        quiet = time.monotonic() - self._interactive_at < INTERACTIVE_QUIET_S
        return self.cost.units_within(QUIET_PASS_BUDGET_S if quiet else PASS_BUDGET_S)

    async def _run_pass(self, batch: list[Slice], passes: PassThread) -> None:
        texts = [t for job, start, stop in batch for t in job.texts[start:stop]]
        embedder = self.embedder
        assert embedder is not None
        first = batch[0][0]
        started = time.perf_counter()
        try:
            with anyio.CancelScope(shield=True):
                vectors, tokens = await passes.run(
                    lambda: embedder.embed_counted(
                        texts, input_type=first.input_type, dims=first.dims))  # type: ignore[arg-type]
        except Exception as exc:
            for job, _, _ in batch:
                job.fail(exc)
            return
        self.passes += 1
        units = sum(job.cost(i) for job, start, stop in batch for i in range(start, stop))
        self.cost.observe(units, time.perf_counter() - started)
        offset = 0
        for job, start, stop in batch:
            job.tokens += sum(tokens[offset:offset + stop - start])
            job.finish(vectors[offset:offset + stop - start])
            offset += stop - start


Slice = tuple[_Job, int, int]  # a job and the range of its texts one pass embeds


def take_batch(jobs: list[_Job], max_batch: int,
               bulk_budget: float = math.inf) -> tuple[list[Slice], list[_Job]]:
    """Slices for one pass: the kind of the oldest interactive job, else of the oldest job, in
    queue order, up to ``max_batch`` texts and, for a bulk pass, ``bulk_budget`` cost units
    (one text at least; up to ``TAIL_ALLOWANCE`` more to finish a request); then the jobs to
    wait, those not served first and those only partly served behind them."""
    kind = next((job for job in jobs if job.lane == "interactive"), jobs[0]).kind
    left = bulk_budget if kind[2] == "bulk" else math.inf
    over = TAIL_ALLOWANCE * left  # how far past the budget a pass may go to finish a request
    batch: list[Slice] = []
    untouched: list[_Job] = []
    partial: list[_Job] = []
    room = max_batch
    for job in jobs:
        start = stop = job.taken
        while job.kind == kind and stop < len(job.texts) and room > 0:
            cost = job.cost(stop)
            if cost > left and (batch or stop > start):
                rest, texts = job.rest_cost(stop), len(job.texts) - stop
                if rest <= left + over and texts <= room:  # the request's tail: finish it
                    left, room, stop = left - rest, room - texts, len(job.texts)
                else:
                    room = 0  # the pass is full
                break
            left, room, stop = left - cost, room - 1, stop + 1
        if stop == start:
            untouched.append(job)
            continue
        job.taken = stop
        batch.append((job, start, stop))
        if stop < len(job.texts):
            partial.append(job)
    return batch, untouched + partial
