"""The HNSW layout of the vector projection: a usearch graph of the int8 codes.

A graph holds each vector's codes (:mod:`memlane.events.vector_codes`) and compares them by
cosine: a quarter of the memory of floats, and built faster (100k vectors in one batch on 2
cores: 38 s against 88 s, bench/bench_log.py). Its answers are scored again from the held
rows (the codes at unit length), so a vector gets the cosine a flat scan would give it; the
graph only picks the candidates. A graph saved by an older memlane holds the model's floats
(or held rows, as floats) and is used as it is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

# usearch's wheel carries its own copy of libstdc++; loaded before onnxruntime, it makes
# `import onnxruntime` crash (SIGSEGV; usearch 2.26, onnxruntime 1.32). Load onnxruntime first.
import onnxruntime  # type: ignore[import-untyped]  # noqa: F401  isort: skip
from usearch.compiled import ScalarKind  # isort: skip
from usearch.index import Index  # isort: skip

from memlane.events.vector_codes import held, quantise, unit

THREADS = os.cpu_count() or 1
BUILD_CHUNK = 32_768  # rows quantised and inserted at a time by a one-batch build (memory)
MARGIN = 16  # an exact search fetches twice the candidates asked and this many, then cuts
PARALLEL_FROM = 4096  # a batch this large is inserted on every core (smaller ones: one thread,
# which builds the same graph as inserting one at a time, so answers stay reproducible)
FILLER_KEY = 2**63 - 1  # throwaway keys count down from here, far above any memory id (a seq)


def new_graph(dims: int) -> Index:
    return Index(ndim=dims, metric="cos", dtype="i8")


def graph_of(keys: np.ndarray, rows: np.ndarray) -> Index:
    """A graph of held ``rows`` (unit-length codes), built in large batches on every core
    (quantised a chunk at a time: no full-size float temporaries)."""
    graph = new_graph(rows.shape[1])
    for start in range(0, len(keys), BUILD_CHUNK):
        chunk = slice(start, start + BUILD_CHUNK)
        graph.add(keys[chunk], quantise(rows[chunk])[0], threads=_threads(len(keys)))
    return graph


def holds_codes(index: Index) -> bool:
    """Whether a graph holds int8 codes (one saved by an older memlane holds floats)."""
    return bool(index.dtype == ScalarKind.I8)


def add(index: Index, keys: Sequence[int], codes: np.ndarray) -> None:
    """Insert or replace the vectors of ``keys`` given as codes (a later duplicate wins)."""
    latest = {key: i for i, key in enumerate(keys)}
    for key in latest:
        if key in index:
            index.remove(key)
    picked = list(latest.values())
    rows = codes[picked] if holds_codes(index) else unit(codes[picked])
    index.add(np.asarray(list(latest), dtype=np.uint64), rows, threads=_threads(len(picked)))


def held_in(index: Index, keys: list[int], *, floats_held: bool) -> np.ndarray:
    """The held float32 rows of ``keys`` (each present); ``floats_held``: an older graph of
    floats holds them already quantised (else the model's floats, quantised here)."""
    if holds_codes(index):
        return unit(np.asarray(index.get(keys, dtype="i8")).reshape(len(keys), -1))
    rows = np.asarray(index.get(keys), dtype=np.float32).reshape(len(keys), -1)
    return rows if floats_held else held(rows)


def candidates(index: Index, query: np.ndarray, k: int, *, exact: bool) -> list[int]:
    """Keys among which the ``k`` nearest vectors are (approximately, unless ``exact``). The
    graph compares the query's codes: an exact search asks for twice as many and a margin, to
    be re-scored (a vector at the edge of the top ``k`` by the codes may be in it by the
    floats); an approximate one asks for ``k``, its misses those of any graph search (asking
    for more doubled the fused search's p50 at 100k: 7.9 to 12-15 ms, bench/bench_search.py)."""
    if not holds_codes(index):
        return _keys(index.search(query, min(k, len(index)), exact=exact).keys)
    asked = quantise(query[None])[0][0]
    wanted = 2 * k + MARGIN if exact else k
    return _keys(index.search(asked, min(wanted, len(index)), exact=exact).keys)


def scored(keys: list[int], rows: np.ndarray, query: np.ndarray,
           k: int) -> list[tuple[int, float]]:
    """The best ``k`` of ``keys`` by the cosine of their held ``rows`` to ``query``."""
    norm = np.float32(np.linalg.norm(query))
    scores = rows @ query / (norm if norm > 0 else np.float32(1))
    return [(keys[i], float(scores[i])) for i in np.argsort(-scores, kind="stable")[:k]]


def _keys(found: np.ndarray) -> list[int]:
    return [int(key) for key in np.asarray(found)]


def overwrite_free_slots(index: Index) -> bool:
    """Overwrite the bytes of removed vectors (usearch keeps one in its slot, and in the saved
    file, until an add reuses the slot): one throwaway vector per free slot, added and removed
    again. True when there was any."""
    free = int(index.stats.nodes) - len(index)
    if free <= 0:
        return False
    keys = np.arange(FILLER_KEY - free + 1, FILLER_KEY + 1, dtype=np.uint64)
    filler = np.full((free, index.ndim), 1, dtype=np.int8) if holds_codes(index) \
        else np.full((free, index.ndim), 1e-3, dtype=np.float32)
    index.add(keys, filler)
    for key in keys:
        index.remove(int(key))
    return True


def _threads(rows: int) -> int:
    return THREADS if rows >= PARALLEL_FROM else 1
