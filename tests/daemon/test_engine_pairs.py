"""Bulk work in pairs: once enough bulk texts wait and nobody searches, the engine builds a
twin of the model on half the threads and runs bulk passes two at a time on it, answers each
request whole and in order however its slices end, never pairs while someone searches, lets
the twin go (and trims the heap) once pairs stop but not for a search's pause, lets go a twin
whose passes fail (the model embeds their slices), and keeps passes single when no twin can be
made."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import numpy as np
import pytest

from memlane.daemon.adapters import engine as engine_module
from memlane.daemon.adapters.embedder import Embedder
from memlane.daemon.adapters.embed_jobs import Job
from memlane.daemon.adapters.engine import EmbedEngine, TwinMaker, halves
from memlane.daemon.domain.models import MINILM

BULK = [f"bulk {i}" for i in range(10, 10 + 2 * engine_module.TWIN_FROM_TEXTS)]


class PairedEmbedder:
    """An embedder whose vector for a text is its number; its twin records each pass's thread
    and how many of its passes ran at once. The twin's passes on the side thread end first."""

    query_chars = 4096

    def __init__(self, *, is_twin: bool = False, side_s: float = 0.0001,
                 main_s: float = 0.001, broken_twin: bool = False) -> None:
        self.is_twin = is_twin
        self.broken = is_twin and broken_twin  # its passes raise (out of memory, say)
        self.broken_twin = broken_twin
        self.side_s, self.main_s = side_s, main_s  # seconds a text takes in each thread
        self.twins: list[PairedEmbedder] = []
        self.passes: list[tuple[str, list[str]]] = []  # (thread, texts) of each pass
        self._lock = threading.Lock()
        self._running = 0
        self.most_at_once = 0

    def twin(self) -> PairedEmbedder:
        made = PairedEmbedder(is_twin=True, side_s=self.side_s, main_s=self.main_s,
                              broken_twin=self.broken_twin)
        self.twins.append(made)
        return made

    def embed_counted(self, texts: Sequence[str], *, input_type: str = "document",
                      dims: int | None = None) -> tuple[np.ndarray, list[int]]:
        with self._lock:
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        thread = threading.current_thread().name
        time.sleep(len(texts) * (self.side_s if thread == "memlane-embed-side" else self.main_s))
        with self._lock:
            self._running -= 1
            if self.broken:
                raise RuntimeError("Failed to allocate memory for requested buffer")
            self.passes.append((thread, list(texts)))
        return np.array([[float(t.split()[-1])] for t in texts]), [2] * len(texts)

    def count_tokens(self, texts: Sequence[str]) -> int:
        return 2 * len(texts)


@asynccontextmanager
async def running(embedder: PairedEmbedder, twin: TwinMaker | None,
                  trims: list[float] | None = None) -> AsyncIterator[EmbedEngine]:
    engine = EmbedEngine(lambda: embedder, max_batch=64, twin=twin,  # type: ignore[arg-type,return-value]
                         trim=None if trims is None else lambda: trims.append(time.monotonic()))
    async with anyio.create_task_group() as tg:
        await tg.start(engine.run)
        yield engine
        tg.cancel_scope.cancel()


def make_twin(embedder: Embedder) -> Embedder:
    return embedder.twin()  # type: ignore[call-arg,return-value]


@pytest.mark.anyio
async def test_bulk_passes_run_in_pairs_on_the_twin_and_answer_in_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "TWIN_IDLE_S", 0.2)
    embedder, trims = PairedEmbedder(), []
    async with running(embedder, make_twin, trims) as engine:
        vectors = await engine.embed(BULK)
        assert vectors[:, 0].tolist() == [float(t.split()[-1]) for t in BULK]
        twins = embedder.twins  # one, or more if one was let go between pairs
        assert twins and max(t.most_at_once for t in twins) == 2 and engine.twin_passes >= 4
        twin_passes = [one for twin in twins for one in twin.passes]
        assert {thread for thread, _ in twin_passes} == {"memlane-embed-pass",
                                                         "memlane-embed-side"}
        with anyio.fail_after(10):  # let go once no pair ran for TWIN_IDLE_S, heap trimmed
            while engine._twin is not None or not trims:
                await anyio.sleep(0.02)
    embedded = [t for _, texts in embedder.passes + twin_passes for t in texts]
    assert sorted(embedded) == sorted(BULK)  # each text once, whichever session ran it


@pytest.mark.anyio
@pytest.mark.parametrize("callers", [1, 3])
async def test_requests_sent_one_after_another_all_get_answers(callers: int) -> None:
    """A request that arrives while the main lane waits for work and the side lane's pass
    ends (completing the request before it) is served, not lost between the two lanes: here
    the side lane's passes are the slow ones, as an indexer sends batch after batch."""
    embedder = PairedEmbedder(side_s=0.004, main_s=0.001)
    answered = 0

    async def caller(n: int) -> None:
        nonlocal answered
        for round_ in range(6):
            texts = [f"c{n}r{round_} {i}" for i in range(engine_module.TWIN_FROM_TEXTS + n)]
            vectors = await engine.embed(texts)
            assert vectors[:, 0].tolist() == [float(t.split()[-1]) for t in texts]
            answered += 1

    async with running(embedder, make_twin) as engine:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for n in range(callers):
                    tg.start_soon(caller, n)
    assert answered == 6 * callers and engine.twin_passes >= 2


def test_slices_that_end_out_of_order_are_put_back_in_order() -> None:
    job = Job(["a 0", "b 1", "c 2", "d 3"], "document", None)
    job.finish(2, np.array([[2.0], [3.0]]))
    assert not job.done.is_set()
    job.finish(0, np.array([[0.0], [1.0]]))
    assert job.done.is_set() and job.result is not None
    assert job.result[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.anyio
async def test_no_twin_is_built_and_no_pair_runs_while_someone_searches(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "INTERACTIVE_QUIET_S", 60.0)  # the bulk ends within it
    embedder = PairedEmbedder()
    async with running(embedder, make_twin) as engine:
        await engine.embed(["the query 1"], input_type="query", lane="interactive")
        vectors = await engine.embed(BULK)
    assert vectors[:, 0].tolist() == [float(t.split()[-1]) for t in BULK]
    assert embedder.twins == [] and engine.twin_passes == 0
    assert embedder.most_at_once == 1


@pytest.mark.anyio
@pytest.mark.parametrize("outcome", ["declined", "failed"])
async def test_without_a_twin_passes_stay_single_and_the_maker_is_asked_once(
        outcome: str) -> None:
    asked: list[str] = []

    def maker(embedder: Embedder) -> Embedder | None:
        asked.append(outcome)
        if outcome == "failed":
            raise RuntimeError("no memory for a second session")
        return None

    embedder = PairedEmbedder()
    async with running(embedder, maker) as engine:
        for _ in range(2):
            vectors = await engine.embed(BULK)
            assert vectors[:, 0].tolist() == [float(t.split()[-1]) for t in BULK]
    assert asked == [outcome] and engine.twin_passes == 0 and embedder.most_at_once == 1


def test_the_twin_is_the_same_model_on_half_the_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = Embedder.load(MINILM, tmp_path, threads=2)
    assert halves(1) is None
    make = halves(2)
    assert make is not None
    twin = make(embedder)
    assert twin is not None and twin.session is not embedder.session
    assert twin.session.get_session_options().intra_op_num_threads == 1
    texts = ["the daemon listens on a unix socket", "use pnpm, never npm, in this repo"]
    np.testing.assert_allclose(twin.embed(texts), embedder.embed(texts), atol=1e-5)
    monkeypatch.setattr(engine_module, "TWIN_UP_TO_BYTES", 1024)  # a model too big to double
    assert make(embedder) is None


@pytest.mark.anyio
async def test_a_twin_whose_passes_fail_is_let_go_and_its_slices_run_on_the_model() -> None:
    embedder = PairedEmbedder(broken_twin=True)
    async with running(embedder, make_twin) as engine:
        for _ in range(3):  # an indexer's batches
            vectors = await engine.embed(BULK)
            assert vectors[:, 0].tolist() == [float(t.split()[-1]) for t in BULK]
        assert not engine.twin_held
    assert len(embedder.twins) == 1  # not built again
    assert sorted(t for _, texts in embedder.passes for t in texts) == sorted(3 * BULK)


@pytest.mark.anyio
async def test_a_search_during_a_bulk_import_pauses_the_pairs_but_keeps_the_twin(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairs stop while someone searches; the twin waits out the pause instead of being let
    go and built again for the same import."""
    for name, value in (("TWIN_IDLE_S", 0.2), ("INTERACTIVE_QUIET_S", 0.2),
                        ("PASS_BUDGET_S", 0.005), ("QUIET_PASS_BUDGET_S", 0.002)):
        monkeypatch.setattr(engine_module, name, value)
    embedder = PairedEmbedder(side_s=0.0002, main_s=0.0002)

    async def bulk() -> None:
        for round_ in range(30):  # an import: batch after batch
            await engine.embed([f"r{round_} {i}" for i in range(128)])

    async with running(embedder, make_twin) as engine:
        async with anyio.create_task_group() as work:
            work.start_soon(bulk)
            with anyio.fail_after(10):
                while not embedder.twins:
                    await anyio.sleep(0.01)
            await engine.embed(["one search 1"], input_type="query", lane="interactive")
    assert len(embedder.twins) == 1

