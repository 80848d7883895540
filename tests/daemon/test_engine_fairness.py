"""The embedding engine is fair: a huge request is served in slices with other callers'
requests between them, and a request over the token cap is refused with a clear 413."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import numpy as np
import pytest

from memlane.daemon.adapters.engine import MAX_REQUEST_TOKENS, EmbedEngine
from memlane.daemon.domain.errors import PayloadTooLarge

MAX_BATCH = 8
BIG = MAX_BATCH * 40


class CountingEmbedder:
    """An embedder whose vector for a text is its number: order and slicing are checkable."""

    def __init__(self) -> None:
        self.passes: list[int] = []

    def embed(self, texts: Sequence[str], *, input_type: str = "document",
              dims: int | None = None) -> np.ndarray:
        self.passes.append(len(texts))
        return np.array([[float(t.split()[-1])] for t in texts])

    def count_tokens(self, texts: Sequence[str]) -> int:
        return sum(len(t.split()) for t in texts)


@pytest.mark.anyio
async def test_small_requests_keep_being_answered_while_a_huge_one_runs() -> None:
    """While one caller embeds BIG texts, another's single texts are answered between its
    slices; the big answer is complete and in order, and no pass exceeds max_batch."""
    embedder = CountingEmbedder()
    engine = EmbedEngine(lambda: embedder, max_batch=MAX_BATCH)  # type: ignore[arg-type,return-value]
    big_done = anyio.Event()
    small_answers_during_big = 0

    async def small_caller() -> None:
        nonlocal small_answers_during_big
        while not big_done.is_set():
            await engine.embed(["small 7"])
            if not big_done.is_set():
                small_answers_during_big += 1

    async with anyio.create_task_group() as tg:
        await tg.start(engine.run)
        await engine.embed(["warm 0"])
        tg.start_soon(small_caller)
        await anyio.sleep(0)  # let the small caller queue its first text
        vectors = await engine.embed([f"big {i}" for i in range(BIG)])
        big_done.set()
        await anyio.sleep(0)
        tg.cancel_scope.cancel()
    assert vectors[:, 0].tolist() == list(range(BIG))
    assert max(embedder.passes) <= MAX_BATCH
    # Unsliced, the big request runs as one pass and at most one small answer precedes it.
    assert small_answers_during_big >= 5


@pytest.mark.anyio
async def test_a_request_over_the_token_cap_is_a_413() -> None:
    """inputs x tokens beyond the cap: 413 embeddings_too_large, and no pass runs for it."""
    embedder = CountingEmbedder()
    engine = EmbedEngine(lambda: embedder)  # type: ignore[arg-type,return-value]
    words = " ".join(["w"] * 1024) + " 1"
    async with anyio.create_task_group() as tg:
        await tg.start(engine.run)
        with pytest.raises(PayloadTooLarge) as refused:
            await engine.embed([words] * (MAX_REQUEST_TOKENS // 1024 + 1))
        tg.cancel_scope.cancel()
    assert refused.value.code == "embeddings_too_large" and refused.value.status == 413
    assert embedder.passes == []
