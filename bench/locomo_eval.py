"""Helpers of bench/bench_locomo.py: the fixed split, loading a conversation into a daemon,
the baseline rankings and the metrics."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from memlane.cli.client import Client
from memlane.daemon.domain.ranking import fts_query
from memlane.projections.fulltext import search_fts

# memlane's fusion weight, neighbour share, stopwords and relevance floor were chosen on the
# tuning split (issue 17).
SPLITS = {"tuning": ("26", "30"), "test": ("41", "42", "43")}
ANSWERABLE = (1, 2, 3, 4)
ADVERSARIAL = 5
CANDIDATES = 100


@dataclass
class Conversation:
    """One LoCoMo conversation stored as one project, with its exact dense matrix."""

    name: str
    project: str
    owners: dict[int, set[str]]  # memory id -> the dia_ids it holds
    ids: list[int]
    matrix: np.ndarray  # one unit row per id
    qa: list[dict]
    rows: dict[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.rows = {memory_id: j for j, memory_id in enumerate(self.ids)}

    def cosine(self, memory_id: int, query: np.ndarray) -> float:
        return float(self.matrix[self.rows[memory_id]] @ query)

    def questions(self, categories: tuple[int, ...]) -> list[dict]:
        return [q for q in self.qa if q["category"] in categories and q.get("evidence")]


def header() -> str:
    """Machine, date, git revision and load average of a run."""
    root = Path(__file__).resolve().parents[1]
    sha = _git(root, "rev-parse", "--short", "HEAD")
    dirty = "-dirty" if _git(root, "status", "--porcelain") else ""
    return (f"machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} cpus,"
            f" python {platform.python_version()}\n"
            f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, git {sha}{dirty},"
            f" load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True).stdout.strip()


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


def load(client: Client, path: Path, project: str) -> Conversation:
    """Store every turn of a conversation file in ``project`` (identical turns share one
    memory) and embed the stored texts for the exact dense scan."""
    data = json.loads(path.read_text())
    turns = turns_of(data)
    answer = client.request("POST", "/v1/import", {"memories": [
        {"text": text, "project": project, "source": "bench"} for _, text in turns]})
    owners: dict[int, set[str]] = {}
    for (dia_id, _), memory_id in zip(turns, answer["ids"], strict=True):
        owners.setdefault(memory_id, set()).add(dia_id)
    ids = sorted(owners)
    texts = [client.request("GET", f"/v1/memories/{i}")["text"] for i in ids]
    return Conversation(path.stem, project, owners, ids, embed(client, texts, "document"),
                        data["qa"])


def embed(client: Client, texts: list[str], input_type: str) -> np.ndarray:
    rows = []
    for start in range(0, len(texts), 256):
        answer = client.request("POST", "/v1/embeddings", {
            "input": texts[start:start + 256], "input_type": input_type})
        rows += [d["embedding"] for d in answer["data"]]
    return np.asarray(rows, dtype=np.float32)


def dense_exact(conversation: Conversation, query: np.ndarray) -> list[tuple[int, float]]:
    """(id, cosine) of the project's best memories by an exact scan."""
    scores = conversation.matrix @ query
    best = np.argsort(-scores, kind="stable")[:CANDIDATES]
    return [(conversation.ids[j], float(scores[j])) for j in best]


def bm25(conn: sqlite3.Connection, question: str, project: str) -> list[tuple[int, float]]:
    """(id, BM25) in its fair form: memlane's tokenisation, stopwords dropped from the query."""
    match = fts_query(question)
    return [] if match is None else search_fts(conn, match, project=project, limit=CANDIDATES)


def rrf(rankings: list[list[int]], k: int = 60) -> list[int]:
    """Plain reciprocal-rank fusion."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, memory_id in enumerate(ranking):
            scores[memory_id] = scores.get(memory_id, 0.0) + 1 / (k + rank + 1)
    return sorted(scores, key=lambda i: (-scores[i], i))


def recall_at(k: int, hits: list[int], owners: dict[int, set[str]], evidence: list[str]) -> float:
    """Share of the evidence turns held by the first ``k`` hits."""
    found: set[str] = set().union(*(owners.get(h, set()) for h in hits[:k]))
    return len(found & set(evidence)) / len(set(evidence))


def reciprocal_rank(k: int, hits: list[int], owners: dict[int, set[str]],
                    evidence: list[str]) -> float:
    """1/rank of the first of the ``k`` first hits holding an evidence turn, else 0."""
    wanted = set(evidence)
    for rank, memory_id in enumerate(hits[:k], start=1):
        if owners.get(memory_id, set()) & wanted:
            return 1 / rank
    return 0.0


def percentiles(values: list[float]) -> dict[str, float]:
    points = (10, 25, 50, 75, 90)
    return {f"p{p}": float(v) for p, v in zip(points, np.percentile(values, points))}


def auc(positives: list[float], negatives: list[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos = np.asarray(positives)[:, None]
    neg = np.asarray(negatives)[None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))
