"""Search latency over a large collection: the dense candidates (usearch) and the fused ranking.

Run: python -m bench.bench_search [--memories 100000]

Builds real projections (SQLite with FTS5, a usearch index) from Stored and Embedded records
with 384-d vectors (random, unit length) and varied texts, then times the search path the
daemon runs after embedding the query: dense candidates, BM25 candidates, fusion.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from memlane.daemon.service.candidates import EXACT_BELOW, dense_candidates, lexical_candidates, rank
from memlane.events.model import Embedded, Record, Stored
from memlane.projections.catchup import Projections

WORDS = ("cache build postgres pool uv install docker layer pytest fixture react render "
         "terraform state kubernetes probe rust lifetime rebase runner flag limit").split()


def build(root: Path, count: int, dims: int = 384) -> tuple[Projections, np.ndarray]:
    rng = np.random.default_rng(0)
    at = datetime(2026, 11, 27, tzinfo=UTC)
    projections = Projections(root / "p.sqlite3", root / "v.usearch")
    projections.sqlite.bulk_mode()
    vectors = rng.normal(size=(count, dims)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    seq = 0
    for start in range(0, count, 5000):
        records = []
        for i in range(start, min(start + 5000, count)):
            seq += 1
            words = " ".join(rng.choice(WORDS, 6))
            records.append(Record(seq=seq, at=at, event=Stored(
                id=seq, text=f"note {i}: {words}", project=f"p{i % 5}", kind="note",
                content_hash=f"{i:032x}")))
        for record in list(records):
            seq += 1
            records.append(Record(seq=seq, at=at, event=Embedded(
                memory=record.seq, vector=vectors[record.seq // 2].tobytes(), dims=dims,
                model="bench", pipeline="bench/384")))
        projections.apply(records)
    return projections, vectors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memories", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        started = time.perf_counter()
        projections, vectors = build(Path(tmp), args.memories)
        print(f"{args.memories} memories indexed in {time.perf_counter() - started:.1f} s "
              f"(usearch HNSW; exact scan below {EXACT_BELOW} vectors)")
        conn = projections.sqlite.conn
        rng = np.random.default_rng(1)
        timings: dict[str, list[float]] = {"dense candidates": [], "bm25 candidates": [],
                                           "fused top 10": []}
        for _ in range(200):
            query = vectors[rng.integers(len(vectors))] + rng.normal(scale=0.05, size=384)
            query = (query / np.linalg.norm(query)).astype(np.float32)
            project = f"p{rng.integers(5)}"
            t0 = time.perf_counter()
            dense = dense_candidates(projections.vectors, conn, query, project)
            t1 = time.perf_counter()
            lexical = lexical_candidates(conn, "postgres pool cache", project)
            t2 = time.perf_counter()
            rank(conn, dense, lexical, 10)
            t3 = time.perf_counter()
            for name, ms in zip(timings, ((t1 - t0), (t2 - t1), (t3 - t2))):
                timings[name].append(ms * 1000)
        for name, samples in timings.items():
            ordered = sorted(samples)
            print(f"  {name:<18} p50 {statistics.median(ordered):6.2f} ms   "
                  f"p95 {ordered[int(0.95 * (len(ordered) - 1))]:6.2f} ms")
        projections.close()


if __name__ == "__main__":
    main()
