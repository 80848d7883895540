"""Bulk import until every memory is embedded and linked, against the embedding floor.

Run: python -m bench.bench_ingest [--memories 10000] [--max-batch 64] [--figures PATH]

The floor is the same texts embedded in process by the daemon's own Embedder, in passes of
``--max-batch`` texts (the daemon's most; its own passes also keep to a compute budget), with
the same ONNX thread count: what ingest would cost if storing,
logging, indexing and linking were free. The daemon imports the texts (``POST /v1/import`` in
chunks of 1,000) and the clock stops when every memory has its vector and its link pass.
Issue 16's target: ingest at ≥ 0.7× the floor.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import memlane.cli
from bench.bench_embed import THREADS, print_header, print_load, running_daemon
from bench.bench_load import TOPICS
from bench.report import Figure, load_average, write_figures
from memlane.cli.client import Client
from memlane.daemon.adapters.embedder import Embedder
from memlane.daemon.domain.models import MINILM

CHUNK = 1000
TARGET = 0.7  # ingest throughput at least this share of the floor's (issue 16)


def notes(count: int) -> list[str]:
    return [f"note {i}: the {TOPICS[i % len(TOPICS)]} needs {TOPICS[(i * 7) % len(TOPICS)]} "
            f"settings, see ticket {i * 7919 % 100_003}" for i in range(count)]


def floor_s(embedder: Embedder, texts: list[str], max_batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(texts), max_batch):
        embedder.embed(texts[start:start + max_batch])
    return time.perf_counter() - started


def figure(memories: int, floor: float, ingest: float, load: float) -> Figure:
    """Ingest throughput judged against the floor's, both in texts per second."""
    return Figure("ingest", f"bulk import of {memories:,} memories, embedded and linked",
                  round(memories / ingest, 1), "texts/s", round(memories / floor, 1),
                  "in-process embed, same texts and passes", f"ratio >= {TARGET}",
                  floor / ingest >= TARGET, load)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--max-batch", type=int, default=64, help="texts per embedding pass")
    parser.add_argument("--figures", type=Path, help="also write the target there (run_all)")
    args = parser.parse_args()
    print_header()
    code = Path(memlane.cli.__file__).parent
    sha = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False).stdout.strip()
    print(f"git {sha}; {args.memories} short notes; passes of at most {args.max_batch} texts")
    texts = notes(args.memories)
    load = load_average()  # before the floor: what runs after it reads its own load
    with running_daemon(MEMLANE_MAX_BATCH=str(args.max_batch)) as daemon:
        embedder = Embedder.load(MINILM, daemon.paths.models_dir, threads=THREADS)
        floor = floor_s(embedder, texts, args.max_batch)
        del embedder
        print_load("after the floor")
        client = Client(daemon.paths, timeout=600)
        started = time.perf_counter()
        for start in range(0, len(texts), CHUNK):
            client.request("POST", "/v1/import", {"memories": [
                {"text": text, "project": "/bench/ingest"} for text in texts[start:start + CHUNK]]})
        while True:
            status = client.request("GET", "/v1/status")
            if status["vectors"] >= args.memories and not status["embedding_backlog"]:
                break
            time.sleep(0.05)
        ingest = time.perf_counter() - started
        print_load("at the end")
    print(f"  floor (in-process embed):      {floor:6.1f} s  {args.memories / floor:6.0f} texts/s")
    print(f"  ingest (embedded and linked):  {ingest:6.1f} s  {args.memories / ingest:6.0f} texts/s")
    judged = figure(args.memories, floor, ingest, load)
    print(f"  ingest at {floor / ingest:.2f}x the floor (target >= {TARGET}x:"
          f" {'met' if judged.met else 'MISSED'})")
    if args.figures is not None:
        write_figures(args.figures, [judged])


if __name__ == "__main__":
    main()
