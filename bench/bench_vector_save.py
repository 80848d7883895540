"""How long saving and loading the HNSW vector index holds Python's GIL (issue 13's forget
stall, and every vector snapshot above 50k vectors).

Run: python -m bench.bench_vector_save [--vectors 100000]

A thread ticks every millisecond while the main thread saves, reads and restores a usearch
index of random 384-d vectors; the worst lateness of a tick is how long the event loop of a
daemon doing the same would have stood still.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.report import print_machine
from memlane.projections import vector_store  # loads onnxruntime before usearch, as the daemon

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vectors", type=int, default=100_000)
    args = parser.parse_args()
    print_machine()
    index = vector_store._new_index(DIMS)
    rows = np.random.default_rng(0).standard_normal((args.vectors, DIMS)).astype(np.float32)
    index.add(np.arange(args.vectors, dtype=np.uint64), rows, threads=2)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "vectors.usearch"
        for name, action in (("usearch save", lambda: index.save(str(path))),
                             ("read the saved file", path.read_bytes),
                             ("usearch restore", lambda: type(index).restore(str(path)))):
            took, worst = worst_tick(action)
            print(f"{args.vectors:,} vectors, {name:<20} {took * 1000:7.1f} ms, "
                  f"worst tick lateness {worst * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
