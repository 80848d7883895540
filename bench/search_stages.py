"""Where a fused search's time goes, stage by stage, over the zipf-100k corpus.

Run: python -m bench.search_stages [--memories 100000 | --hooks 300] [--rounds 3] [--keep DIR]

The stages of ``Search.ranked`` (daemon/service/search.py) with the query already embedded,
each timed apart: the lexical evidence (FTS5 word counts, the foreign words, the BM25
search, the strength), the dense candidates (project count, vector search, placement of the
hits), and the ranking (fusion, the neighbours' placement, the hits' rows, the cosines of
BM25-only hits). Queries are embedded once, before timing; each round asks every query
once. ``--hooks 300``: the UserPromptSubmit hook's search instead (hooks-20k, its largest
project's prompts).
"""

from __future__ import annotations

# As the daemon runs (daemon/__main__.py): numpy's settings, before numpy loads.
import memlane.daemon.adapters.numpy_environment  # noqa: F401  isort: skip

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bench import vectors_cache
from bench.bench_search import build, held_postings, percentile
from bench.corpora import load
from bench.report import load_average, print_machine
from memlane.daemon.adapters.embedder import Embedder
from memlane.daemon.domain.models import MINILM
from memlane.daemon.service import candidates
from memlane.daemon.service.hooks import PROMPT_QUERY_CHARS
from memlane.projections import fulltext, queries
from memlane.projections.catchup import Projections
from memlane.projections.postings import PostingsCache

T = TypeVar("T")


class Stages:
    """Milliseconds per stage name, one sample per call."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.cpu: dict[str, list[float]] = defaultdict(list)

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            return self.time(label, lambda: original(*args, **kwargs))
        setattr(owner, name, timed)

    def time(self, label: str, action: Callable[[], T]) -> T:
        """``action()``, its wall and CPU (this thread's) milliseconds recorded."""
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return action()
        finally:
            self.samples[label].append((time.perf_counter() - started) * 1000)
            self.cpu[label].append((time.thread_time() - cpu) * 1000)


def instrument(stages: Stages) -> None:
    """Time the functions the search path calls (each where the caller looks it up)."""
    stages.wrap(fulltext, "document_counts", "  lexical: document_counts")
    stages.wrap(fulltext, "_search", "  lexical: bm25 (fts5 finds, postings score)")
    stages.wrap(fulltext, "has_live", "  lexical: has_live")
    stages.wrap(fulltext, "foreign_count", "  lexical: foreign_count")
    stages.wrap(queries, "live_count", "  dense: live_count")
    stages.wrap(queries, "placement", "  rank: placement (no project)")
    stages.wrap(queries, "get_memories", "  rank: get_memories")
    stages.wrap(queries, "live_ids", "  dense: live_ids")
    stages.wrap(queries, "live_among", "  live_among (dense, then bm25)")


def run(projections: Any, asked: list[dict[str, Any]], vectors: list[Any], rounds: int,
        stages: Stages) -> None:
    conn = projections.sqlite.conn
    store = projections.vectors
    postings = held_postings(projections)
    stages.wrap(store, "search", "  dense: vector search")
    stages.wrap(store, "vectors", "  vectors by key (scan / cosines)")
    for _ in range(rounds):
        for q, vector in zip(asked, vectors, strict=True):
            stages.time("total", lambda q=q, v=vector: ask(conn, store, q, v, stages,
                                                           postings=postings))


def ask(conn: Any, store: Any, q: dict[str, Any], vector: Any, stages: Stages, *,
        postings: PostingsCache) -> None:
    evidence = stages.time("lexical_evidence", lambda: (
        candidates.lexical_evidence(conn, q["query"], q["project"], postings=postings)))
    dense = stages.time("dense_candidates", lambda: (
        candidates.dense_candidates(store, conn, vector, q["project"], postings=postings)))
    stages.time("rank", lambda: candidates.rank(
        conn, dense, evidence, 10, cosine_of=candidates.cosines(store, vector),
        project=q["project"]))


def report(stages: Stages) -> None:
    """Per stage: wall p50/p95, CPU p50 (steadier than wall on a loaded machine), CPU share."""
    total = sum(stages.cpu["total"])
    for label, samples in stages.samples.items():
        cpu = stages.cpu[label]
        print(f"  {label:<42} n {len(samples):5d}  wall p50 {statistics.median(samples):7.3f}"
              f"  p95 {percentile(samples, 0.95):7.3f}  cpu p50 {statistics.median(cpu):7.3f} ms"
              f"  share {sum(cpu) / total:5.1%}")
    print(f"  load {load_average()}")


def opened(root: Path, corpus: list[dict[str, Any]], rows: Any) -> Projections:
    """The projections kept at ``root`` if they hold the corpus, else built there (and saved)."""
    if (root / "p.sqlite3").exists():
        projections = Projections(root / "p.sqlite3", root / "v.vectors")
        if queries.indexed_count(projections.sqlite.conn) == len(corpus) == \
                len(projections.vectors) + len(corpus) - len(rows):
            return projections
        projections.close()
        for path in root.iterdir():
            path.unlink()
    root.mkdir(parents=True, exist_ok=True)
    projections = build(root, corpus, rows)
    projections.save_vectors()
    return projections


def zipf(memories: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], np.ndarray]:
    """The first ``memories`` of zipf-100k, its 200 queries, their cached MiniLM vectors."""
    root = load("zipf-100k")
    with open(root / "memories.jsonl") as lines:
        corpus = [json.loads(line) for _, line in zip(range(memories), lines)]
    with open(root / "queries.jsonl") as lines:
        asked = [json.loads(line) for line in lines]  # every query, whatever the size
    return corpus, asked, vectors_cache.ensured("zipf-100k", len(corpus))


def hooks(size: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], np.ndarray]:
    """hooks-20k, its prompts of ``size`` characters from the largest project (as the hook
    asks them), and random unit vectors for its memories (none are cached): the dense stages'
    cost, not their answers."""
    root = load("hooks-20k")
    with open(root / "memories.jsonl") as lines:
        corpus = [json.loads(line) for line in lines]
    largest = Counter(m["project"] for m in corpus).most_common(1)[0][0]
    with open(root / "prompts.jsonl") as lines:
        asked = [{"query": p["prompt"][:PROMPT_QUERY_CHARS], "project": largest}
                 for p in map(json.loads, lines)
                 if p["project"] == largest and p["size"] == size]
    rows = np.random.default_rng(16).standard_normal((len(corpus), 384)).astype(np.float32)
    return corpus, asked, rows / np.linalg.norm(rows, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memories", type=int, default=100_000, help="zipf-100k's first N")
    parser.add_argument("--hooks", type=int, metavar="CHARS",
                        help="hooks-20k's prompts of this size (300 or 2000) instead")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the projections here once, reuse them")
    args = parser.parse_args()
    print_machine()
    corpus, asked, rows = hooks(args.hooks) if args.hooks else zipf(args.memories)
    embedder = Embedder.load(MINILM, vectors_cache.CACHE / "models", threads=2)
    embedded = [embedder.embed([q["query"]], input_type="query")[0] for q in asked]
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        projections = opened(args.keep or Path(tmp), corpus, rows)
        print(f"{len(corpus):,} memories, {len(projections.vectors):,} vectors"
              f" ({projections.vectors.mode}), {len(asked)} queries x {args.rounds}")
        stages = Stages()
        instrument(stages)
        run(projections, asked, embedded, args.rounds, stages)
        report(stages)
        projections.close()

if __name__ == "__main__":
    main()
