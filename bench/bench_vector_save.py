"""How long saving and loading the HNSW vector index holds Python's GIL (issue 13's forget
stall, and every vector snapshot above 50k vectors), in process and in a forked child.

Run: python -m bench.bench_vector_save [--vectors 100000] [--rss-mb 1000] [--index FILE]

A thread ticks every millisecond while the main thread saves, reads and restores a usearch
index of random 384-d vectors; the worst lateness of a tick is how long the event loop of a
daemon doing the same would have stood still. "usearch save" is the save in process (as
before); "forked save" is the daemon's save (:mod:`memlane.projections.graph_save`), whose
GIL hold is the fork itself: its cost grows with the process's resident memory, so the
process is first grown to ``--rss-mb`` (small pages, like a daemon's heap) and "fork alone"
shows that part. ``--index FILE`` keeps the built index there for the next run (building
100k vectors takes minutes on two cores).
"""

from __future__ import annotations

# As the daemon runs (daemon/__main__.py): numpy's settings, before numpy loads.
import memlane.daemon.adapters.numpy_environment  # noqa: F401  isort: skip

import argparse
import mmap
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.report import print_machine
from memlane.events.vector_codes import held
from memlane.projections import graph_save, graph_vectors  # onnxruntime before usearch

DIMS = 384


def worst_tick(action: Callable[[], object]) -> tuple[float, float]:
    """(seconds the action took, worst lateness of a 1 ms ticker thread meanwhile)."""
    worst, stop = [0.0], threading.Event()

    def tick() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            time.sleep(0.001)
            worst[0] = max(worst[0], time.perf_counter() - began - 0.001)

    ticker = threading.Thread(target=tick)
    ticker.start()
    began = time.perf_counter()
    try:
        action()
    finally:
        stop.set()
        ticker.join()
    return time.perf_counter() - began, worst[0]


def built_index(vectors: int, cache: Path | None) -> graph_vectors.Index:
    if cache is not None and cache.exists():
        return graph_vectors.Index.restore(str(cache))
    rows = np.random.default_rng(0).standard_normal((vectors, DIMS)).astype(np.float32)
    index = graph_vectors.graph_of(np.arange(vectors, dtype=np.uint64), held(rows))
    if cache is not None:
        index.save(str(cache))
    return index


def grow_to(rss_mb: int) -> mmap.mmap | None:
    """Touch anonymous memory (4 KiB pages: no huge-page advice) until the process holds about
    ``rss_mb`` MiB; the mapping must be kept alive by the caller."""
    missing = rss_mb * 2**20 - resident_bytes()
    if missing <= 0:
        return None
    ballast = mmap.mmap(-1, missing)
    np.frombuffer(ballast, dtype=np.uint8)[::mmap.PAGESIZE] = 1
    return ballast


def resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * mmap.PAGESIZE


def fork_alone() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--rss-mb", type=int, default=1000,
                        help="grow the process to this resident size first (a daemon's)")
    parser.add_argument("--index", type=Path, help="reuse (or keep) the built index here")
    args = parser.parse_args()
    print_machine()
    index = built_index(args.vectors, args.index)
    ballast = grow_to(args.rss_mb)
    print(f"{len(index):,} vectors, resident {resident_bytes() / 2**20:,.0f} MiB")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "vectors.usearch"
        for name, action in (("usearch save", lambda: index.save(str(path))),
                             ("fork alone", fork_alone),
                             ("forked save", lambda: graph_save.start(index, path).finish()),
                             ("forked save, again", lambda: graph_save.start(index, path).finish()),
                             ("checksum in chunks", lambda: graph_save.checksum(path)),
                             ("read the saved file", path.read_bytes),
                             ("usearch restore", lambda: type(index).restore(str(path)))):
            took, worst = worst_tick(action)
            print(f"{name:<20} {took * 1000:7.1f} ms, worst tick lateness {worst * 1000:7.1f} ms")
    del ballast


if __name__ == "__main__":
    main()
