"""Event log benchmark: acknowledged appends/s (group commit), replay and rebuild of a real log.

Run: python -m bench.bench_log [--memories 100000]

The replayed log is shaped like the daemon's: the zipf-100k corpus stored in batches of 32,
each batch followed by its 384-d vectors (Embedded), three links per memory to earlier
memories of its project (Linked) and a recall for one memory in four (Recalled). Every event
counts. "Replay" folds the log into SQLite + the vector projection kept flat (no graph);
"rebuild" is what `memlane rebuild` runs (the graph built past 50k vectors), next to the time
the graph alone takes to build in one batch from the same vectors.
"""

from __future__ import annotations

# As the daemon runs (daemon/__main__.py): numpy's settings, before numpy loads.
import memlane.daemon.adapters.numpy_environment  # noqa: F401  isort: skip

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import anyio
import numpy as np

from memlane.daemon.__main__ import GIL_SWITCH_INTERVAL_S
from memlane.daemon.domain.admission import AdmissionIndex
from memlane.daemon.domain.storing import StoreRequest, decide_store
from memlane.daemon.runtime.writer import Writer
from memlane.events.log import EventLog
from memlane.events.model import Embedded, Event, Linked, Recalled, Record, Stored
from memlane.events.vector_codes import held
from memlane.projections import graph_vectors, vector_store
from memlane.projections.catchup import Projections
from bench.corpora import load
from bench.report import Figure, load_average, print_machine


async def _ignore(records: list[Record]) -> None:
    """Nothing consumes the commits: the benchmark measures the log alone."""


async def appends_per_second(directory: Path, writers: int, seconds: float) -> tuple[float, float]:
    """Each writer stores one memory at a time and waits for its ack; returns (acks/s, batch)."""
    log = EventLog.open(directory)
    writer = Writer(log, AdmissionIndex(), on_commit=_ignore)
    acked = 0
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal acked
        i = 0
        while time.perf_counter() < deadline:
            request = StoreRequest(text=f"writer {n} memory {i} about a cache bug", project="bench",
                                   kind="note")
            await writer.submit(lambda view, seq, r=request: decide_store(view, r, seq))
            acked += 1
            i += 1

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        async with anyio.create_task_group() as clients:
            for n in range(writers):
                clients.start_soon(client, n)
        tg.cancel_scope.cancel()
    elapsed = time.perf_counter() - start
    log.close()
    return acked / elapsed, acked / max(writer.batches, 1)


def rebuild_seconds(log_dir: Path, work: Path, *, graph: bool) -> tuple[int, float]:
    """Events replayed and seconds taken by a rebuild into new files (``graph``: the vector
    projection switches to HNSW past its threshold, as in the daemon; else it stays flat)."""
    log = EventLog.open(log_dir)
    last = log.last_seq
    log.close()
    name = "rebuild" if graph else "replay"
    saved = vector_store.EXACT_BELOW
    vector_store.EXACT_BELOW = saved if graph else 10**12
    try:
        projections = Projections(work / f"{name}.sqlite3", work / f"{name}.vectors")
        start = time.perf_counter()
        count = projections.rebuild(log_dir, last)
        elapsed = time.perf_counter() - start
        projections.close()
    finally:
        vector_store.EXACT_BELOW = saved
    return count, elapsed


def graph_build_seconds(vectors: np.ndarray) -> float:
    """One batched HNSW build of ``vectors`` as the rebuild holds them (int8 codes): the
    index-build part of a rebuild."""
    held_rows = held(vectors)
    start = time.perf_counter()
    graph_vectors.graph_of(np.arange(1, len(vectors) + 1, dtype=np.uint64), held_rows)
    return time.perf_counter() - start


def corpus(memories: int) -> list[dict[str, object]]:
    with open(load("zipf-100k") / "memories.jsonl") as lines:
        return [json.loads(line) for _, line in zip(range(memories), lines)]


def fill(log_dir: Path, memories: int, dims: int = 384) -> tuple[dict[str, int], np.ndarray]:
    """Write the realistic log; returns the count of each event kind and the vectors."""
    rows = corpus(memories)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(rows), dims)).astype("<f4")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pick = random.Random(0)
    log = EventLog.open(log_dir)
    view = AdmissionIndex()
    by_project: dict[str, list[int]] = {}
    kinds = {"stored": 0, "embedded": 0, "linked": 0, "recalled": 0}
    for begin in range(0, len(rows), 32):
        stored: list[Event] = []
        for i in range(begin, min(begin + 32, len(rows))):
            row = rows[i]
            request = StoreRequest(text=str(row["text"]), project=str(row["project"]),
                                   kind=str(row["kind"]), tags=tuple(row["tags"]))  # type: ignore[arg-type]
            new, _ = decide_store(view, request, log.last_seq + len(stored) + 1)
            stored.extend(new)
        records = log.append(stored)
        ids = [(r.event.id, r.event.project) for r in records if isinstance(r.event, Stored)]
        log.append([Embedded(memory=memory, vector=vectors[memory % len(vectors)].tobytes(),
                             dims=dims, model="bench", pipeline="bench/384") for memory, _ in ids])
        links: list[Event] = []
        for memory, project in ids:
            earlier = by_project.setdefault(project, [])
            links += [Linked(a=other, b=memory, similarity=0.7)
                      for other in pick.sample(earlier, min(3, len(earlier)))]
            earlier.append(memory)
            if pick.random() < 0.25:
                links.append(Recalled(memory=memory, query="how do I", rank=1, score=0.5))
        log.append(links)
        kinds["stored"] += len(ids)
        kinds["embedded"] += len(ids)
        kinds["linked"] += sum(isinstance(e, Linked) for e in links)
        kinds["recalled"] += sum(isinstance(e, Recalled) for e in links)
    log.close()
    return kinds, vectors


def measure(memories: int = 100_000, seconds: float = 5.0) -> list[Figure]:
    # As the daemon runs: the threads of a replay hand the GIL to each other at its pace.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    figures = []
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        base = Path(tmp)
        for writers in (1, 32):
            rate, batch = anyio.run(appends_per_second, base / f"w{writers}", writers, seconds)
            print(f"appends, {writers:>2} concurrent writers: {rate:>9,.0f} acked/s"
                  f"  (mean batch {batch:.1f} per fdatasync)")
            figures.append(Figure("log", f"appends, {writers} writers", round(rate), "acked/s",
                                  target=">= 20000" if writers == 32 else "",
                                  met=rate >= 20_000 if writers == 32 else None,
                                  load=load_average()))
        kinds, vectors = fill(base / "log", memories)
        events = sum(kinds.values())
        print(f"log of {memories:,} memories: {events:,} events "
              + ", ".join(f"{n:,} {kind}" for kind, n in kinds.items()))
        count, elapsed = rebuild_seconds(base / "log", base, graph=False)
        rate = count / elapsed
        print(f"replay (SQLite + flat vectors), every kind: {rate:>9,.0f} events/s"
              f"  ({count:,} in {elapsed:.2f} s)  load {load_average()}")
        figures.append(Figure("log", "replay of a real log, every event kind", round(rate),
                              "events/s", target=">= 100000", met=rate >= 100_000,
                              load=load_average()))
        count, elapsed = rebuild_seconds(base / "log", base, graph=True)
        build = graph_build_seconds(vectors)
        allowed = count / 100_000 + build
        print(f"rebuild (memlane rebuild: HNSW past 50k): {elapsed:.2f} s; allowed"
              f" {count / 100_000:.2f} s + graph build {build:.2f} s = {allowed:.2f} s"
              f"  load {load_average()}")
        figures.append(Figure("log", f"rebuild of {memories:,} memories", round(elapsed, 2), "s",
                              baseline=round(allowed, 2),
                              baseline_name="events/100k s + one batched graph build",
                              target="<= baseline", met=elapsed <= allowed,
                              load=load_average()))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print_machine()
    measure(args.memories, args.seconds)


if __name__ == "__main__":
    main()
