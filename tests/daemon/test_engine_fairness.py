"""The embedding engine is fair: a huge request is served in slices with other callers'
requests between them, a bulk pass keeps to a compute budget (shorter while someone searches),
an interactive query goes before queued bulk work, bulk work that may
be shed is refused with 503 busy past its queue limit, and a request over the token cap is
refused with a clear 413."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio
import numpy as np
import pytest
from anyio.abc import TaskGroup

from memlane.daemon.adapters import engine as engine_module
from memlane.daemon.adapters.embed_jobs import TAIL_ALLOWANCE, Job, take_batch
from memlane.daemon.adapters.engine import (MAX_REQUEST_TOKENS, PASS_BUDGET_S,
                                            QUIET_PASS_BUDGET_S, EmbedEngine)
from memlane.daemon.api.embeddings_api import EmbeddingsBody, create_embeddings
from memlane.daemon.domain.errors import Busy, PayloadTooLarge
from memlane.daemon.domain.models import MINILM
from memlane.daemon.domain.pass_cost import FORGET, PassCost, text_cost

MAX_BATCH = 8
BIG = MAX_BATCH * 40


class CountingEmbedder:
    """An embedder whose vector for a text is its number: order and slicing are checkable."""

    query_chars = 4096  # what the engine reads of it: how much of a query the model reads

    def __init__(self) -> None:
        self.passes: list[int] = []
        self.texts: list[list[str]] = []  # each pass's texts

    def embed(self, texts: Sequence[str], *, input_type: str = "document",
              dims: int | None = None) -> np.ndarray:
        self.passes.append(len(texts))
        self.texts.append(list(texts))
        return np.array([[float(t.split()[-1])] for t in texts])

    def embed_counted(self, texts: Sequence[str], *, input_type: str = "document",
                      dims: int | None = None) -> tuple[np.ndarray, list[int]]:
        return (self.embed(texts, input_type=input_type, dims=dims),
                [len(t.split()) for t in texts])

    def count_tokens(self, texts: Sequence[str]) -> int:
        return sum(len(t.split()) for t in texts)


@asynccontextmanager
async def running(embedder: CountingEmbedder, max_batch: int = MAX_BATCH,
                  ) -> AsyncIterator[tuple[TaskGroup, EmbedEngine]]:
    """An engine serving ``embedder`` in a task group, stopped when the block ends."""
    engine = EmbedEngine(lambda: embedder, max_batch=max_batch)  # type: ignore[arg-type,return-value]
    async with anyio.create_task_group() as tg:
        await tg.start(engine.run)
        yield tg, engine
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_small_requests_keep_being_answered_while_a_huge_one_runs() -> None:
    """While one caller embeds BIG texts, another's single texts are answered between its
    slices; the big answer is complete and in order, and no pass exceeds max_batch."""
    embedder = CountingEmbedder()
    big_done = anyio.Event()
    small_answers_during_big = 0

    async def small_caller() -> None:
        nonlocal small_answers_during_big
        while not big_done.is_set():
            await engine.embed(["small 7"])
            if not big_done.is_set():
                small_answers_during_big += 1

    async with running(embedder) as (tg, engine):
        await engine.embed(["warm 0"])
        tg.start_soon(small_caller)
        await anyio.sleep(0)  # let the small caller queue its first text
        vectors = await engine.embed([f"big {i}" for i in range(BIG)])
        big_done.set()
        await anyio.sleep(0)
    assert vectors[:, 0].tolist() == list(range(BIG))
    assert max(embedder.passes) <= MAX_BATCH
    # Unsliced, the big request runs as one pass and at most one small answer precedes it.
    assert small_answers_during_big >= 5


@pytest.mark.anyio
async def test_a_request_over_the_token_cap_is_a_413() -> None:
    """inputs x tokens beyond the cap: 413 embeddings_too_large, and no pass runs for it."""
    embedder = CountingEmbedder()
    words = " ".join(["w"] * 1024) + " 1"
    async with running(embedder) as (_, engine):
        with pytest.raises(PayloadTooLarge) as refused:
            await engine.embed([words] * (MAX_REQUEST_TOKENS // 1024 + 1))
    assert refused.value.code == "embeddings_too_large" and refused.value.status == 413
    assert embedder.passes == []


class GatedEmbedder(CountingEmbedder):
    """Each pass waits for the gate: requests pile up behind the pass under way."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def embed(self, texts: Sequence[str], *, input_type: str = "document",
              dims: int | None = None) -> np.ndarray:
        assert self.gate.wait(10)
        return super().embed(texts, input_type=input_type, dims=dims)


async def queued_behind_a_pass(tg: TaskGroup, engine: EmbedEngine, embedder: GatedEmbedder,
                               bulk: list[list[str]]) -> None:
    """Start the bulk requests in ``tg`` while a pass is held; return once all of them wait
    in the queue."""
    embedder.gate.clear()
    for texts in bulk:
        tg.start_soon(engine.embed, texts)
    with anyio.fail_after(10):
        while engine.bulk_waiting < sum(len(texts) for texts in bulk):
            await anyio.sleep(0.01)


@pytest.mark.anyio
async def test_an_interactive_query_goes_before_queued_bulk_work() -> None:
    """Sixteen bulk requests of 3 passes' worth each wait behind a pass; a query sent after
    them is embedded in the next pass, alone, not behind the 48 bulk passes."""
    embedder = GatedEmbedder()
    async with running(embedder) as (tg, engine):
        await engine.embed(["warm 0"])
        await queued_behind_a_pass(tg, engine, embedder, [
            [f"bulk{caller} {i}" for i in range(3 * MAX_BATCH)] for caller in range(16)])
        embedder.gate.set()
        await engine.embed(["the query 1"], input_type="query", lane="interactive")
    at = next(i for i, texts in enumerate(embedder.texts) if "the query 1" in texts)
    assert embedder.texts[at] == ["the query 1"]
    assert at <= 2  # the warm pass, at most the bulk pass under way, then the query


@pytest.mark.anyio
async def test_sheddable_bulk_work_is_refused_busy_past_its_queue(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the bulk queue limit a sheddable request is refused (503 busy, Retry-After);
    internal bulk work still waits its turn and an interactive query is still served."""
    monkeypatch.setattr(engine_module, "BULK_QUEUE_TEXTS", 2 * MAX_BATCH)
    embedder = GatedEmbedder()
    async with running(embedder) as (tg, engine):
        await engine.embed(["warm 0"])
        await queued_behind_a_pass(tg, engine, embedder, [
            [f"bulk{caller} {i}" for i in range(MAX_BATCH)] for caller in range(3)])
        with pytest.raises(Busy) as refused:
            await engine.embed(["more 1"], shed=True)
        embedder.gate.set()
        internal = await engine.embed(["internal 2"])
        query = await engine.embed(["query 3"], lane="interactive", shed=True)
    assert (refused.value.status, refused.value.code, refused.value.retry_after_s) == (
        503, "busy", 1)
    assert internal[0, 0] == 2 and query[0, 0] == 3


@pytest.mark.anyio
async def test_a_request_whose_caller_went_away_costs_no_pass() -> None:
    """A bulk caller cancelled while its request waits (a client that disconnected): its
    texts are never embedded, and the bulk queue no longer counts them."""
    embedder = GatedEmbedder()
    async with running(embedder) as (_, engine):
        await engine.embed(["warm 0"])
        async with anyio.create_task_group() as callers:
            await queued_behind_a_pass(callers, engine, embedder, [
                [f"gone{caller} {i}" for i in range(MAX_BATCH)] for caller in range(3)])
            callers.cancel_scope.cancel()
        assert engine.bulk_waiting == 0
        embedder.gate.set()
        await engine.embed(["after 1"])
    embedded = [text for texts in embedder.texts for text in texts]
    # The pass under way when the callers left finishes; nothing queued behind it runs.
    assert sum(text.startswith("gone") for text in embedded) <= MAX_BATCH
    assert embedded[-1] == "after 1"


class TimedEmbedder(CountingEmbedder):
    """A pass takes ``FIXED_S`` plus ``PER_UNIT_S`` per cost unit of its texts (sleeping)."""

    FIXED_S, PER_UNIT_S = 0.002, 0.0002

    def embed(self, texts: Sequence[str], *, input_type: str = "document",
              dims: int | None = None) -> np.ndarray:
        time.sleep(self.FIXED_S + self.PER_UNIT_S * sum(map(text_cost, texts)))
        return super().embed(texts, input_type=input_type, dims=dims)


def within(budget_s: float) -> int:
    """Texts like ``bulk 12`` a TimedEmbedder pass holds within ``budget_s``."""
    return int((budget_s - TimedEmbedder.FIXED_S) / TimedEmbedder.PER_UNIT_S
               // text_cost("bulk 12"))


@pytest.mark.anyio
async def test_bulk_passes_keep_to_a_compute_budget_shorter_while_someone_searches(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Learnt from the passes before, a bulk pass stays within PASS_BUDGET_S of compute, and
    within QUIET_PASS_BUDGET_S after an interactive request (either up to TAIL_ALLOWANCE more
    to finish a request); an interactive pass is not cut.
    (Sleeps only overrun, which makes passes smaller: only the upper bounds are exact.)"""
    monkeypatch.setattr(engine_module, "INTERACTIVE_QUIET_S", 0.0)
    embedder = TimedEmbedder()
    bulk = [f"bulk {i}" for i in range(10, 70)]
    full, quiet = within(PASS_BUDGET_S), within(QUIET_PASS_BUDGET_S)
    assert 2 <= quiet < full < MAX_BATCH * 4
    async with running(embedder, max_batch=MAX_BATCH * 4) as (_tg, engine):
        await engine.embed(bulk[:1])  # what one text costs
        await engine.embed(bulk[:12])  # and what more texts add
        embedder.passes.clear()
        await engine.embed(bulk)
        full_passes = list(embedder.passes)
        monkeypatch.setattr(engine_module, "INTERACTIVE_QUIET_S", 60.0)
        await engine.embed([f"the query {i}" for i in range(10, 40)], input_type="query",
                           lane="interactive")
        assert embedder.passes[-1] == 30
        embedder.passes.clear()
        await engine.embed(bulk)
        quiet_passes = list(embedder.passes)
    assert sum(full_passes) == sum(quiet_passes) == len(bulk)
    # quiet < full, above; a pass may finish a request TAIL_ALLOWANCE over its budget
    assert max(full_passes) <= full * (1 + TAIL_ALLOWANCE)
    assert max(quiet_passes) <= quiet * (1 + TAIL_ALLOWANCE)
    # sleeps that overran would make passes smaller still: these bounds allow for that
    assert max(full_passes) >= quiet and len(quiet_passes) >= len(full_passes)


@pytest.mark.anyio
async def test_passes_hold_texts_of_like_lengths_answered_in_the_requests_order() -> None:
    embedder = CountingEmbedder()
    texts = [("word " * (1 + 20 * (i % 2))) + str(i) for i in range(2 * MAX_BATCH)]
    async with running(embedder) as (_tg, engine):
        await engine.embed(["warm 0"])
        vectors = await engine.embed(texts)
    assert vectors[:, 0].tolist() == list(range(2 * MAX_BATCH))
    assert [{len(t) > 50 for t in texts} for texts in embedder.texts[1:]] == [{False}, {True}]


def test_a_pass_takes_texts_up_to_its_budget_and_always_one() -> None:
    """A bulk pass stops before the text that would pass its budget, but takes one text even
    over it; an interactive pass is not cut by the bulk budget."""
    def job(texts: list[str], lane: str = "bulk") -> Job:
        return Job(texts, "document", None, lane)  # type: ignore[arg-type]

    one = text_cost("aaaa")
    a, b = job(["aaaa"] * 5), job(["aaaa"] * 5)
    batch, waiting = take_batch([a, b], 64, one * 7)
    assert [(start, stop) for _, start, stop in batch] == [(0, 5), (0, 2)]
    assert waiting == [b]
    huge = job(["x" * 10_000, "aaaa"])
    batch, waiting = take_batch([huge], 64, one)
    assert [(start, stop) for _, start, stop in batch] == [(0, 1)] and waiting == [huge]
    query = job(["aaaa"] * 20, lane="interactive")
    batch, _ = take_batch([job(["aaaa"]), query], 64, one)
    assert [(j.lane, start, stop) for j, start, stop in batch] == [("interactive", 0, 20)]


def test_the_pass_cost_recovers_a_fixed_and_a_per_unit_part() -> None:
    """Exact timings give back the fixed and per-unit parts; before any pass, no budget."""
    cost = PassCost()
    assert cost.fit() is None and cost.units_within(0.05) == 0  # one text, to learn from
    cost.observe(100, 0.003 + 100 * 2e-5)
    fixed, per_unit = cost.fit() or (0, 0)
    assert fixed == 0 and per_unit == pytest.approx(5e-5)  # one size: all taken per unit
    for units in (500, 2000, 100, 1200):
        cost.observe(units, 0.003 + units * 2e-5)
    fixed, per_unit = cost.fit() or (0, 0)
    assert fixed == pytest.approx(0.003) and per_unit == pytest.approx(2e-5)
    assert cost.units_within(0.05) == pytest.approx(2350)
    assert cost.units_within(0.001) == 0


def test_a_fit_that_goes_negative_falls_back_to_time_per_unit() -> None:
    """Noisy passes can give a negative slope or a negative fixed part: then the whole time
    counts per unit (an overestimate: passes get smaller, never longer than the budget)."""
    falling = PassCost()
    falling.observe(100, 0.010)
    falling.observe(1000, 0.005)  # a bigger pass that took less time
    assert falling.fit() == (0.0, pytest.approx((FORGET * 0.010 + 0.005) / (FORGET * 100 + 1000)))
    steep = PassCost()
    steep.observe(100, 0.001)
    steep.observe(1000, 0.020)  # the line through them crosses zero time above zero units
    assert steep.fit() == (0.0, pytest.approx((FORGET * 0.001 + 0.020) / (FORGET * 100 + 1000)))


def test_a_query_costs_what_the_model_reads_of_it() -> None:
    """A query is embedded from its first window only: a 50k-character one costs that window,
    so one long search does not teach the model that characters are cheap."""
    assert text_cost("x" * 50_000, 4096) == text_cost("x" * 4096) == 4096 + 32
    assert text_cost("short", 4096) == text_cost("short")
    job = Job(["x" * 50_000, "short"], "query", None, "interactive", read=4096)
    assert (job.cost(0), job.cost(1)) == (4096 + 32, text_cost("short"))


def test_a_pass_finishes_a_request_a_little_over_its_budget_rather_than_leave_a_tail() -> None:
    """A request whose last texts would need a small pass of their own is finished in this one,
    up to TAIL_ALLOWANCE over the budget; a longer rest waits for the next pass."""
    def job(count: int) -> Job:
        return Job(["aaaa"] * count, "document", None, "bulk")  # type: ignore[arg-type]

    one = text_cost("aaaa")
    assert TAIL_ALLOWANCE == 0.25
    finished = job(5)
    batch, waiting = take_batch([finished], 64, one * 4)  # 5 texts: 1.25 x the budget
    assert [(start, stop) for _, start, stop in batch] == [(0, 5)] and waiting == []
    longer = job(6)
    batch, waiting = take_batch([longer], 64, one * 4)
    assert [(start, stop) for _, start, stop in batch] == [(0, 4)] and waiting == [longer]
    batch, waiting = take_batch([job(3), job(2)], 64, one * 4)  # a whole small request too
    assert [(start, stop) for _, start, stop in batch] == [(0, 3), (0, 2)] and waiting == []
    third = job(3)
    batch, waiting = take_batch([job(3), third], 64, one * 4)
    assert [(start, stop) for _, start, stop in batch] == [(0, 3), (0, 1)] and waiting == [third]
    capped = job(10)  # its last 2 texts fit the allowance, not the one text of room left
    batch, waiting = take_batch([capped], 9, one * 8)
    assert [(start, stop) for _, start, stop in batch] == [(0, 8)] and waiting == [capped]
    first, second = job(5), job(1)  # the first's tail uses the whole allowance up
    batch, waiting = take_batch([first, second], 64, one * 4)
    assert [(start, stop) for _, start, stop in batch] == [(0, 5)] and waiting == [second]


@pytest.mark.anyio
async def test_a_sliced_request_counts_the_tokens_of_every_slice() -> None:
    embedder = CountingEmbedder()
    async with running(embedder) as (_, engine):
        vectors, tokens = await engine.embed_counted([f"word word {i}" for i in range(BIG)])
    assert len(embedder.passes) > 1 and len(vectors) == BIG
    assert tokens == 3 * BIG


class UncountedEmbedder(CountingEmbedder):
    """Refuses to tokenise outside a pass (the route must not count on the request loop)."""

    spec, dims = MINILM, 1

    def count_tokens(self, texts: Sequence[str]) -> int:
        raise AssertionError("texts tokenised a second time")


@pytest.mark.anyio
async def test_the_embeddings_route_takes_its_usage_from_the_passes() -> None:
    async with running(UncountedEmbedder()) as (_, engine):
        answer = await create_embeddings(engine, EmbeddingsBody(input=["a 1", "b c 2"]))
    assert answer["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    assert [row["embedding"] for row in answer["data"]] == [[1.0], [2.0]]
