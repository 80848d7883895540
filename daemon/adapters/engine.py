"""The warm embedding engine: loads the model once, then coalesces concurrent requests.

Requests that arrive while a forward pass runs (or within an optional ``window``) share the
next pass (up to ``max_batch`` texts), so twenty hooks firing at once cost about one pass. A
request's texts go shortest first, so that a pass pads little. A bulk pass also stops at
``PASS_BUDGET_S`` of compute, as the passes before predict it
(:mod:`memlane.daemon.domain.pass_cost`: the cap holds for any model and machine), or up to
``TAIL_ALLOWANCE`` past it to finish a request rather than leave its tail to a pass
(:mod:`memlane.daemon.adapters.embed_jobs`). A request larger than a pass is served in
slices, and after each slice it goes behind the requests that waited: a big request never holds
the engine from others for more than one slice. A request over ``MAX_REQUEST_TOKENS`` is
refused (413 ``embeddings_too_large``).

Two lanes: an interactive request (a search or hook query) goes before every bulk one and
shares its pass only with other interactive requests, so it waits for at most the pass under
way; a bulk request that may be shed (``POST /v1/embeddings``) is refused with 503 ``busy``
while ``BULK_QUEUE_TEXTS`` bulk texts already wait. Requests wait in a bounded memory object
stream owned by the engine's task. Within ``INTERACTIVE_QUIET_S`` of an interactive request,
bulk passes take ``QUIET_PASS_BUDGET_S``: a query then waits for a short pass, while a bulk
import with nobody searching keeps full ones. Passes run in a thread of their own
(:mod:`memlane.daemon.adapters.pass_thread`), one at a time on the model's threads; or, while
much bulk work waits and nobody searches, two at a time (the second in a side thread) on a
twin session of the model with half the threads (``TWIN_FROM_TEXTS``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import anyio
import numpy as np
import structlog
from anyio.abc import TaskGroup, TaskStatus

from memlane.daemon.adapters.embed_jobs import Job, Lane, Slice, new_job, take_batch
from memlane.daemon.adapters.embedder import Embedder
from memlane.daemon.adapters.pass_thread import PassThread
from memlane.daemon.domain.errors import BadRequest, Busy, PayloadTooLarge, Unavailable
from memlane.daemon.domain.pass_cost import PassCost

log = structlog.get_logger()
QUEUE = 4096  # embedding requests waiting for a pass; more make callers wait
MAX_REQUEST_TOKENS = 256 * 1024  # inputs x tokens of one request (about 1 MB of text)
BULK_QUEUE_TEXTS = 4096  # bulk texts waiting beyond which a sheddable request gets 503 busy
INTERACTIVE_QUIET_S = 2.0  # bulk passes stay short this long after an interactive request
PASS_BUDGET_S = 0.050  # compute of one bulk pass: what an interactive request may wait behind
QUIET_PASS_BUDGET_S = 0.020  # the same within INTERACTIVE_QUIET_S of an interactive request
# Bulk work in pairs: two passes side by side on a twin session with half the threads (one
# each, on 2 cores) embed ~12% more texts a second than one pass on both (in process: 195-200
# against 165-180 short notes/s): one pass's threads no longer wait for each other. The twin
# holds its own copy of the model (~110 MB for MiniLM), so it is built only once this many
# bulk texts wait, and let go after TWIN_IDLE_S without a pair; none for a larger model.
TWIN_FROM_TEXTS = 128
TWIN_IDLE_S = 2.0
TWIN_UP_TO_BYTES = 100 * 1024 * 1024  # model files past this keep one session
TwinMaker = Callable[[Embedder], "Embedder | None"]  # None: this model keeps one session


def halves(threads: int) -> TwinMaker | None:
    """The twin maker for a model given ``threads`` compute threads: a twin with half of them
    (none below two threads, or for a model file past ``TWIN_UP_TO_BYTES``)."""
    if threads < 2:
        return None

    def make(embedder: Embedder) -> Embedder | None:
        source = embedder.source
        if source is None or source.stat().st_size > TWIN_UP_TO_BYTES:
            return None
        return embedder.twin(threads // 2)

    return make


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
                 max_batch: int = 64, twin: TwinMaker | None = None,
                 trim: Callable[[], object] | None = None) -> None:
        self._load = load
        self._trim = trim  # gives freed heap memory back (after the twin is let go)
        self._make_twin = twin  # the model on half the threads, for passes in pairs
        self._twin: Embedder | None = None
        self._twin_building = False
        self._twin_used = 0.0  # when a pass on the twin last began or ended
        self._side_wake = anyio.Event()  # set when pairs pay: the side lane takes slices too
        self._side_busy = False  # a side pass is under way
        self._waiting: list[Job] = []  # received, not yet wholly taken by passes
        self.twin_cost = PassCost()
        self.twin_passes = 0
        self._window = window
        self._max_batch = max_batch
        self._send, self._receive = anyio.create_memory_object_stream[Job](QUEUE)
        self._ready = anyio.Event()
        self.embedder: Embedder | None = None
        self.load_error: str | None = None
        self.passes = 0
        self.bulk_waiting = 0  # texts of bulk requests not yet embedded
        self._interactive_at = -INTERACTIVE_QUIET_S  # when the last interactive request came
        self.cost = PassCost()

    @property
    def twin_held(self) -> bool:
        """Whether the twin of the model is built (bulk passes may run two at a time)."""
        return self._twin is not None

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
        job = new_job(texts, input_type, dims, lane)
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
            passes, side = PassThread(), PassThread("memlane-embed-side")
            try:
                async with anyio.create_task_group() as tg:
                    await self._serve(passes, side, tg)
            finally:
                passes.close()
                side.close()

    async def _serve(self, passes: PassThread, side: PassThread, tg: TaskGroup) -> None:
        tg.start_soon(self._side_lane, side)
        while True:
            if not self._waiting:
                job = await self._receive.receive()  # the side lane may replace the list
                self._waiting.append(job)
            self._waiting.extend(self._arrived())
            if self._window and sum(len(j.texts) for j in self._waiting) < self._max_batch:
                await anyio.sleep(self._window)
                self._waiting.extend(self._arrived())
            if self._twin_wanted():
                self._twin_building = True
                tg.start_soon(self._lend_twin, side)
            # On the twin when two full passes wait, or beside a side pass under way (the
            # model's threads would crowd it); else on the model.
            if self._twin_passes_wait(2 - self._side_busy):
                self._side_wake.set()
                await self._take_and_run(passes, twin=True)
            else:
                await self._take_and_run(passes, twin=False)

    async def _side_lane(self, side: PassThread) -> None:
        """Twin passes in the side thread, beside the main thread's, while a full one waits:
        each thread takes its next slice as soon as its pass ends."""
        while True:
            await self._side_wake.wait()
            self._side_wake = anyio.Event()
            while self._twin_passes_wait(1):
                self._side_busy = True
                try:
                    await self._take_and_run(side, twin=True)
                finally:
                    self._side_busy = False

    async def _take_and_run(self, thread: PassThread, *, twin: bool) -> None:
        """Take the next slices from the waiting jobs and embed them in ``thread``: on the
        twin, or on the model with a bulk pass's budget for now. A twin pass that fails lets
        the twin go, and its slices are embedded on the model instead."""
        self._waiting = [job for job in self._waiting if not job.abandoned]
        if not self._waiting:  # every caller went away
            return
        if twin:
            embedder, cost = self._twin, self.twin_cost
            budget = cost.units_within(PASS_BUDGET_S)
            self._twin_used = time.monotonic()
            self.twin_passes += 1
        else:
            embedder, cost, budget = self.embedder, self.cost, self._bulk_budget()
        batch, self._waiting = take_batch(self._waiting, self._max_batch, budget)
        error = await self._run_pass(batch, thread, embedder, cost, fail=not twin)
        if error is not None:
            log.warning("embedding_twin_failed", error=str(error))
            self._twin = self._make_twin = None
            await self._run_pass(batch, thread, self.embedder, self.cost)
        elif twin:
            self._twin_used = time.monotonic()
        self._waiting = [job for job in self._waiting if not job.done.is_set()]  # failed

    def _twin_idle_from(self) -> float:
        """When the twin fell idle: its last pass, or, while bulk work waits, the end of the
        pause a search or prompt made (kept, not built again once it ends)."""
        if self.bulk_waiting:
            return max(self._twin_used, self._interactive_at + INTERACTIVE_QUIET_S)
        return self._twin_used

    def _twin_wanted(self) -> bool:
        """Whether to build the twin now: none is there or on its way, enough bulk work waits,
        and nobody searched or prompted lately (pairs would not run meanwhile)."""
        return (self._make_twin is not None and self._twin is None and not self._twin_building
                and self.bulk_waiting >= TWIN_FROM_TEXTS and not self._quiet())

    async def _lend_twin(self, side: PassThread) -> None:
        """Build the twin in the side thread while passes go on, then keep it until no pair
        has run on it for ``TWIN_IDLE_S``. A failure leaves passes single (logged)."""
        embedder, make = self.embedder, self._make_twin
        assert embedder is not None and make is not None
        try:
            with anyio.CancelScope(shield=True):
                twin = await side.run(lambda: make(embedder))
        except Exception as exc:
            twin = None
            log.warning("embedding_twin_failed", error=str(exc))
        finally:
            self._twin_building = False
        if twin is None:
            self._make_twin = None
            return
        self._twin, self._twin_used = twin, time.monotonic()
        del twin
        log.info("embedding_twin_ready")
        while (idle_for := self._twin_idle_from() + TWIN_IDLE_S - time.monotonic()) > 0:
            await anyio.sleep(idle_for)
        self._twin = None  # freed now, or when a pass still under way on it ends
        if self._trim is not None:  # its memory goes back to the system at once
            await anyio.to_thread.run_sync(self._trim)
        log.info("embedding_twin_released", passes=self.twin_passes)

    def _twin_passes_wait(self, passes: int) -> bool:
        """Whether a twin is held and the bulk work waiting fills ``passes`` twin passes
        (one text at least), with nobody searching or prompting lately."""
        waiting = [job for job in self._waiting if not job.abandoned]
        if (self._twin is None or self._quiet()
                or any(job.lane == "interactive" for job in waiting)):
            return False
        units = sum(job.rest_cost(job.taken) for job in waiting)
        return (units >= passes * self.twin_cost.units_within(PASS_BUDGET_S)
                and any(job.taken < len(job.texts) for job in waiting))

    def _arrived(self) -> list[Job]:
        jobs = []
        while True:
            try:
                jobs.append(self._receive.receive_nowait())
            except anyio.WouldBlock:
                return jobs

    def _bulk_budget(self) -> float:
        """The cost units of a bulk pass: shorter while someone is searching or prompting, so
        that a query waits for a short pass, not a full one."""
        return self.cost.units_within(QUIET_PASS_BUDGET_S if self._quiet() else PASS_BUDGET_S)

    def _quiet(self) -> bool:
        """Whether an interactive request came within ``INTERACTIVE_QUIET_S``."""
        return time.monotonic() - self._interactive_at < INTERACTIVE_QUIET_S

    async def _run_pass(self, batch: list[Slice], passes: PassThread, embedder: Embedder | None,
                        cost: PassCost, *, fail: bool = True) -> Exception | None:
        """Embed the slices; an error fails their jobs (``fail``) or is returned."""
        texts = [t for job, start, stop in batch for t in job.texts[start:stop]]
        assert embedder is not None
        first = batch[0][0]
        started = time.perf_counter()
        try:
            with anyio.CancelScope(shield=True):
                vectors, tokens = await passes.run(
                    lambda: embedder.embed_counted(
                        texts, input_type=first.input_type, dims=first.dims))  # type: ignore[arg-type]
        except Exception as exc:
            if not fail:
                return exc
            for job, _, _ in batch:
                job.fail(exc)
            return None
        self.passes += 1
        units = sum(job.cost(i) for job, start, stop in batch for i in range(start, stop))
        cost.observe(units, time.perf_counter() - started)
        offset = 0
        for job, start, stop in batch:
            job.tokens += sum(tokens[offset:offset + stop - start])
            job.finish(start, vectors[offset:offset + stop - start])
            offset += stop - start
        return None
