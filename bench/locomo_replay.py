"""What bench/bench_locomo.py keeps of its daemon for an offline replay (bench/locomo_variants.py):
a copy of the projections' SQLite (FTS5 BM25 as the daemon ran it), every conversation's
memory ids, evidence owners and vectors, and every question's query vector."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.locomo_eval import ADVERSARIAL, ANSWERABLE, SPLITS, Conversation, embed
from memlane.cli.client import Client

DEFAULT_DIR = Path(__file__).resolve().parent / "out" / "locomo_replay"


def save(directory: Path, conn: sqlite3.Connection, client: Client, run: str, model: str,
         loaded: dict[str, list[Conversation]]) -> None:
    """Write the replay of one bench run to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    copy = sqlite3.connect(directory / "projections.sqlite")
    try:
        conn.backup(copy)
    finally:
        copy.close()
    conversations = [c for split in loaded.values() for c in split]
    questions = sorted({q["question"] for c in conversations
                        for q in c.questions((*ANSWERABLE, ADVERSARIAL))})
    arrays = {"questions": embed(client, questions, "query")}
    for c in conversations:
        arrays[f"ids_{c.name}"] = np.asarray(c.ids, dtype=np.int64)
        arrays[f"matrix_{c.name}"] = c.matrix
    np.savez_compressed(directory / "vectors.npz", **arrays)
    (directory / "replay.json").write_text(json.dumps({
        "header": run, "model": model, "questions": questions,
        "conversations": {c.name: {"project": c.project,
                                   "owners": {str(i): sorted(o) for i, o in c.owners.items()}}
                          for c in conversations}}))


@dataclass
class Replay:
    """One bench run, loaded back: its header, model, conversations by split, SQLite copy."""

    header: str
    model: str
    splits: dict[str, list[Conversation]]
    vectors: dict[str, np.ndarray]  # question -> query vector
    conn: sqlite3.Connection


def load(directory: Path, data: Path) -> Replay:
    """A replay written by :func:`save`; the questions come from the LoCoMo files in ``data``."""
    meta = json.loads((directory / "replay.json").read_text())
    arrays = np.load(directory / "vectors.npz")
    splits = {}
    for split, names in SPLITS.items():
        splits[split] = []
        for name in names:
            stored = meta["conversations"][name]
            owners = {int(i): set(o) for i, o in stored["owners"].items()}
            qa = json.loads((data / f"{name}.json").read_text())["qa"]
            splits[split].append(Conversation(
                name, stored["project"], owners, arrays[f"ids_{name}"].tolist(),
                arrays[f"matrix_{name}"], qa))
    vectors = dict(zip(meta["questions"], arrays["questions"], strict=True))
    conn = sqlite3.connect(f"file:{directory / 'projections.sqlite'}?mode=ro", uri=True)
    return Replay(meta["header"], meta["model"], splits, vectors, conn)
