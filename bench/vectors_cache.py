"""Real MiniLM vectors of a benchmark corpus, embedded once and cached under bench/.cache.

Run: python -m bench.vectors_cache [--corpus zipf-100k] [--limit N]

The cache is a raw float32 file filled in corpus order and resumable: a run that is stopped
keeps what it embedded, and ``vectors(corpus)`` returns the rows done so far (benchmarks say
how many they used).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.corpora import CACHE, load
from memlane.daemon.adapters.embedder import Embedder
from memlane.daemon.domain.models import MINILM

BATCH = 64


def cache_path(corpus: str) -> Path:
    return CACHE / f"{corpus}.{MINILM.name}.f32"


def texts(corpus: str) -> list[str]:
    with open(load(corpus) / "memories.jsonl") as lines:
        return [json.loads(line)["text"] for line in lines]


def vectors(corpus: str, dims: int = 384) -> np.ndarray:
    """The cached rows (the first ``len`` memories of the corpus)."""
    path = cache_path(corpus)
    if not path.exists():
        return np.zeros((0, dims), dtype=np.float32)
    data = np.fromfile(path, dtype="<f4")
    return data[: len(data) // dims * dims].reshape(-1, dims)


def ensured(corpus: str, count: int) -> np.ndarray:
    """The first ``count`` rows, embedded first where the cache holds fewer (a fresh machine:
    100k short texts take a few minutes)."""
    if len(vectors(corpus)) < count:
        print(f"embedding {corpus}'s first {count:,} memories into {cache_path(corpus)}",
              flush=True)
        fill(corpus, count, threads=2)
    return vectors(corpus)[:count]


def fill(corpus: str, limit: int, threads: int) -> None:
    all_texts = texts(corpus)[:limit]
    embedder = Embedder.load(MINILM, CACHE / "models", threads=threads)
    done = len(vectors(corpus))
    started, first = time.perf_counter(), done
    with open(cache_path(corpus), "ab") as out:
        out.truncate(done * 384 * 4)
        for begin in range(done, len(all_texts), BATCH):
            rows = embedder.embed(all_texts[begin:begin + BATCH])
            out.write(np.asarray(rows, dtype="<f4").tobytes())
            out.flush()
            done = begin + len(rows)
            if done % 6400 < BATCH:
                rate = (done - first) / (time.perf_counter() - started)
                print(f"{done:,} embedded ({rate:.0f}/s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default="zipf-100k")
    parser.add_argument("--limit", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    fill(args.corpus, args.limit, args.threads)


if __name__ == "__main__":
    main()
