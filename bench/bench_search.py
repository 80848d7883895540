"""Search over the zipf-100k corpus: latency and recall, lexical bounding before/after.

Run: python -m bench.bench_search [--memories 100000]

Real projections (SQLite + FTS5, the vector projection) are built from the corpus's memories
(``--memories N``: its first N, e.g. 10000 for issue 17's figure). Every query is asked, in its
project, whatever the size; recall counts only the queries whose relevant memories are all in.
Lexical: the 200 corpus queries' BM25 candidates over all memories, scored on every match
(unbounded, as before) and bounded to the rarest words (``fulltext.search_fts``): latency
and recall@10 of the relevant memories, and bounded with FTS5 finding the documents and numpy
scoring them from the in-memory postings (``projections.postings``, as the daemon does).
Fused: dense + BM25 over the same memories with their real MiniLM vectors, cached in
bench/.cache (``bench.vectors_cache``; embedded first where the cache is short of them),
each query embedded with the same model, then ranked by the calls ``Search.ranked`` makes
(BM25 evidence, dense candidates, ranking with the cosines of BM25-only hits); p50/p95
excluding and including the query embed. Where that time goes: ``bench.search_stages``.
"""

from __future__ import annotations

# As the daemon runs (daemon/__main__.py): numpy's settings, before numpy loads.
import memlane.daemon.adapters.numpy_environment  # noqa: F401  isort: skip

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench import vectors_cache
from bench.corpora import load
from bench.report import Figure, load_average, print_machine
from memlane.daemon.adapters.embedder import Embedder
from memlane.daemon.domain.models import MINILM
from memlane.daemon.domain.ranking import CANDIDATES, fts_query
from memlane.daemon.service.candidates import (
    Ranking, cosines, dense_candidates, lexical_evidence, rank)
from memlane.events.model import Embedded, Record, Stored
from memlane.projections import fulltext, queries
from memlane.projections.catchup import Projections
from memlane.projections.postings import PostingsCache

AT = datetime(2026, 11, 27, tzinfo=UTC)


def build(root: Path, memories: list[dict[str, Any]], vectors: np.ndarray) -> Projections:
    """Projections of ``memories`` (ids from 1), the first ``len(vectors)`` with a vector."""
    projections = Projections(root / "p.sqlite3", root / "v.vectors")
    projections.sqlite.bulk_mode()
    seq = 0
    for start in range(0, len(memories), 5000):
        records = []
        for i in range(start, min(start + 5000, len(memories))):
            seq += 1
            m = memories[i]
            records.append(Record(seq=seq, at=AT, event=Stored(
                id=i + 1, text=m["text"], project=m["project"], kind=m["kind"],
                tags=tuple(m["tags"]), content_hash=f"{i:032x}")))
        for i in range(start, min(start + 5000, len(vectors))):
            seq += 1
            records.append(Record(seq=seq, at=AT, event=Embedded(
                memory=i + 1, vector=vectors[i].tobytes(), dims=vectors.shape[1], model="m",
                pipeline="minilm/384")))
        projections.apply(records)
    return projections


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[int(q * (len(ordered) - 1))]


def answerable(query: dict[str, Any], size: int) -> bool:
    """Whether all of ``query``'s relevant memories are among the first ``size``."""
    return all(i < size for i in query["relevant"])


def recall_at_10(found: list[int], relevant: list[int]) -> float:
    wanted = {i + 1 for i in relevant}
    return len(wanted & set(found[:10])) / len(wanted)


def lexical(projections: Projections, asked: list[dict[str, Any]], size: int) -> list[Figure]:
    conn = projections.sqlite.conn
    figures = []
    results: dict[str, tuple[list[float], list[float]]] = {}
    copy = held_postings(projections)
    for name, bound in (("unbounded", False), ("bounded", True), ("postings", True)):
        times, recalls = [], []
        for q in asked:
            match = fts_query(q["query"])
            if match is None:
                continue
            t0 = time.perf_counter()
            hits = (fulltext.search_fts(conn, match, project=q["project"], limit=CANDIDATES,
                                        postings=copy if name == "postings" else None)
                    if bound else _unbounded_fts(conn, match, q["project"]))
            times.append((time.perf_counter() - t0) * 1000)
            if answerable(q, size):
                recalls.append(recall_at_10([i for i, _ in hits], q["relevant"]))
        results[name] = (times, recalls)
        print(f"  bm25 {name:<10} p50 {statistics.median(times):6.2f} ms  p95"
              f" {percentile(times, 0.95):6.2f} ms  max {max(times):6.2f} ms"
              f"  recall@10 {statistics.mean(recalls):.3f}  load {load_average()}")
    before, after = results["unbounded"], results["bounded"]
    figures.append(Figure("search", "bm25 candidates p50, bounded, scored from postings",
                          round(statistics.median(results["postings"][0]), 2), "ms",
                          baseline=round(statistics.median(after[0]), 2),
                          baseline_name="scored by FTS5, same run", load=load_average()))
    figures.append(Figure("search", "bm25 candidates p95, bounded", round(percentile(after[0], 0.95), 2),
                          "ms", baseline=round(percentile(before[0], 0.95), 2),
                          baseline_name="unbounded, same run", load=load_average()))
    figures.append(Figure("search", "bm25 recall@10, bounded", round(statistics.mean(after[1]), 4),
                          "", baseline=round(statistics.mean(before[1]), 4),
                          baseline_name="unbounded, same run", target="ratio >= 0.98",
                          met=statistics.mean(after[1]) >= 0.98 * statistics.mean(before[1]),
                          load=load_average()))
    return figures


def held_postings(projections: Projections) -> PostingsCache:
    """The projections' in-memory postings, built now (the daemon builds them in the
    background at its first search); the build time printed."""
    started = time.perf_counter()
    projections.postings.current(projections.sqlite.conn)
    if not projections.postings.wait_built(120):
        raise SystemExit("the postings were not built")
    print(f"  postings of {queries.indexed_count(projections.sqlite.conn):,} documents built in"
          f" {time.perf_counter() - started:.2f} s")
    return projections.postings


def _unbounded_fts(conn: Any, match: str, project: str) -> list[tuple[int, float]]:
    sql = ("SELECT m.id, -bm25(memories_fts) FROM memories_fts JOIN memories m"
           " ON m.id = memories_fts.rowid WHERE memories_fts MATCH ?"
           " AND m.state IN ('active', 'proven') AND m.project = ?"
           " ORDER BY bm25(memories_fts) LIMIT ?")
    return [(r[0], float(r[1])) for r in conn.execute(sql, (match, project, CANDIDATES))]


def ranked(projections: Projections, q: dict[str, Any], vector: np.ndarray) -> Ranking:
    """What ``Search.ranked`` computes once the query is embedded (the same calls)."""
    conn, vectors = projections.sqlite.conn, projections.vectors
    evidence = lexical_evidence(conn, q["query"], q["project"], postings=projections.postings)
    dense = dense_candidates(vectors, conn, vector, q["project"],
                             postings=projections.postings)
    return rank(conn, dense, evidence, 10, cosine_of=cosines(vectors, vector),
                project=q["project"])


def fused(projections: Projections, asked: list[dict[str, Any]], size: int) -> list[Figure]:
    conn = projections.sqlite.conn
    embedder = Embedder.load(MINILM, vectors_cache.CACHE / "models", threads=2)
    held_postings(projections)
    embed_ms, search_ms, recalls = [], [], []
    for q in asked:
        t0 = time.perf_counter()
        vector = embedder.embed([q["query"]], input_type="query")[0]
        t1 = time.perf_counter()
        ranking = ranked(projections, q, vector)
        t2 = time.perf_counter()
        embed_ms.append((t1 - t0) * 1000)
        search_ms.append((t2 - t1) * 1000)
        if answerable(q, size):
            recalls.append(recall_at_10([h["id"] for h in ranking.hits], q["relevant"]))
    total = [a + b for a, b in zip(embed_ms, search_ms)]
    p50 = statistics.median(search_ms)
    print(f"  fused top 10 over {size:,} vectors ({projections.vectors.mode}), {len(asked)} queries:"
          f" p50 {p50:.2f} ms  p95 {percentile(search_ms, 0.95):.2f} ms excluding the embed;"
          f" p50 {statistics.median(total):.2f}  p95 {percentile(total, 0.95):.2f} ms including"
          f" it  recall@10 {statistics.mean(recalls):.3f} ({len(recalls)} answerable)"
          f"  load {load_average()}")
    return [Figure("search", f"fused top-10 p50 excl. embed, {size:,} vectors", round(p50, 2),
                   "ms", target="<= 10 (at 100k; issue 17: at 10k)",
                   met=p50 <= 10 and size in (10_000, 100_000), load=load_average()),
            Figure("search", f"fused top-10 p50 incl. embed, {size:,} vectors",
                   round(statistics.median(total), 2), "ms", load=load_average()),
            Figure("search", f"fused recall@10, {size:,} vectors",
                   round(statistics.mean(recalls), 4), "", load=load_average())]


def measure(memories: int = 100_000) -> list[Figure]:
    root = load("zipf-100k")
    with open(root / "memories.jsonl") as lines:
        corpus = [json.loads(line) for _, line in zip(range(memories), lines)]
    with open(root / "queries.jsonl") as lines:
        asked = [json.loads(line) for line in lines]
    vectors = vectors_cache.ensured("zipf-100k", len(corpus))
    figures = []
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        started = time.perf_counter()
        projections = build(Path(tmp) / "all", corpus, np.zeros((0, 384), np.float32))
        print(f"{len(corpus):,} memories indexed (text only) in"
              f" {time.perf_counter() - started:.1f} s; {len(asked)} queries"
              f" ({sum(answerable(q, len(corpus)) for q in asked)} answerable)")
        figures += lexical(projections, asked, len(corpus))
        projections.close()
        projections = build(Path(tmp) / "dense", corpus, vectors)
        figures += fused(projections, asked, len(corpus))
        projections.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memories", type=int, default=100_000)
    args = parser.parse_args()
    print_machine()
    measure(args.memories)


if __name__ == "__main__":
    main()
