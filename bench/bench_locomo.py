"""Retrieval-only recall@10 on LoCoMo (../shared/bench/locomo): memlane's search against an
exact dense scan, BM25 alone and a plain reciprocal-rank fusion of the two.

Every turn is stored as a memory (`[<session date>] <speaker>: <text>`, one project per
conversation) in a real daemon; each question of categories 1-4 is asked; recall@10 is the
share of its evidence turns among the hits, averaged over questions.

Run: python -m bench.bench_locomo [--data ../shared/bench/locomo]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from memlane.cli.client import Client
from memlane.daemon.domain.ranking import fts_query
from memlane.projections.queries import search_fts
from tests.e2e.daemon import DaemonProcess

K = 10
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "bench" / "locomo"


def turns_of(conversation: dict) -> list[tuple[str, str]]:
    """(dia_id, memory text) for every turn, in order."""
    turns = []
    session = 1
    while f"session_{session}" in conversation:
        date = conversation.get(f"session_{session}_date_time", "")
        for turn in conversation[f"session_{session}"]:
            text = turn["text"]
            if turn.get("blip_caption"):
                text += f" [shares a photo: {turn['blip_caption']}]"
            turns.append((turn["dia_id"], f"[{date}] {turn['speaker']}: {text}"))
        session += 1
    return turns


def load(client: Client, project: str, turns: list[tuple[str, str]]) -> dict[int, set[str]]:
    """Store the turns; map memory id -> the dia_ids it holds (identical turns share one)."""
    answer = client.request("POST", "/v1/import", {"memories": [
        {"text": text, "project": project, "source": "bench"} for _, text in turns]})
    owners: dict[int, set[str]] = {}
    for (dia_id, _), memory_id in zip(turns, answer["ids"]):
        owners.setdefault(memory_id, set()).add(dia_id)
    return owners


def recall(hits: list[int], owners: dict[int, set[str]], evidence: list[str]) -> float:
    found = set().union(*(owners.get(h, set()) for h in hits[:K])) if hits else set()
    wanted = set(evidence)
    return len(found & wanted) / len(wanted)


def rrf(rankings: list[list[int]], k: int = 60) -> list[int]:
    """Plain reciprocal-rank fusion (the baseline memlane's fusion must beat)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, memory_id in enumerate(ranking):
            scores[memory_id] = scores.get(memory_id, 0.0) + 1 / (k + rank + 1)
    return sorted(scores, key=lambda i: (-scores[i], i))


def embed(client: Client, texts: list[str], input_type: str) -> np.ndarray:
    rows = []
    for start in range(0, len(texts), 256):
        answer = client.request("POST", "/v1/embeddings", {
            "input": texts[start:start + 256], "input_type": input_type})
        rows += [d["embedding"] for d in answer["data"]]
    return np.asarray(rows, dtype=np.float32)


def evaluate(data: Path) -> dict[str, float]:
    methods: dict[str, list[float]] = {"dense exact": [], "bm25": [], "rrf(dense, bm25)": [],
                                       "memlane search": []}
    with tempfile.TemporaryDirectory(prefix="ml-locomo-", dir="/tmp") as tmp:
        daemon = DaemonProcess(Path(tmp)).start()
        try:
            client = daemon.client
            for path in sorted(data.glob("*.json")):
                conversation = json.loads(path.read_text())
                project = f"locomo-{path.stem}"
                owners = load(client, project, turns_of(conversation))
                ids = sorted(owners)
                texts = [client.request("GET", f"/v1/memories/{i}")["text"] for i in ids]
                matrix = embed(client, texts, "document")
                questions = [q for q in conversation["qa"]
                             if q["category"] in (1, 2, 3, 4) and q.get("evidence")]
                queries = embed(client, [q["question"] for q in questions], "query")
                conn = sqlite3.connect(f"file:{daemon.paths.sqlite}?mode=ro", uri=True)
                for question, qvec in zip(questions, queries):
                    dense = [ids[j] for j in np.argsort(-(matrix @ qvec), kind="stable")[:100]]
                    match = fts_query(question["question"], drop_stopwords=False)
                    lexical = [] if match is None else [
                        i for i, _ in search_fts(conn, match, project=project, limit=100)]
                    hits = client.request("POST", "/v1/search", {
                        "query": question["question"], "project": project, "k": K})["hits"]
                    ranked: dict[str, Callable[[], list[int]]] = {
                        "dense exact": lambda: dense,
                        "bm25": lambda: lexical,
                        "rrf(dense, bm25)": lambda: rrf([dense, lexical]),
                        "memlane search": lambda: [h["id"] for h in hits],
                    }
                    for name, ranking in ranked.items():
                        methods[name].append(recall(ranking(), owners, question["evidence"]))
                conn.close()
        finally:
            daemon.stop()
    return {name: float(np.mean(values)) for name, values in methods.items()} | {
        "questions": len(methods["bm25"])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    start = time.perf_counter()
    results = evaluate(args.data)
    questions = results.pop("questions")
    print(f"LoCoMo retrieval recall@{K} over {questions:.0f} questions (categories 1-4):")
    for name, value in results.items():
        print(f"  {name:<18} {value:.4f}")
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
