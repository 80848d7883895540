"""Retrieval-only evaluation on LoCoMo (../shared/bench/locomo), tuning and test splits apart.

Every turn is stored as a memory (`[<session date>] <speaker>: <text>`, one project per
conversation) in a real daemon. Split: tuning = conversations 26 and 30 (memlane's fusion
weight and stopwords were chosen on them), test = 41, 42 and 43; no figure pools the two.

- Positives: each question of categories 1-4, asked in its own project. recall@k is the share
  of its evidence turns among the first k hits; MRR@10 the mean of 1/rank of the first hit
  holding an evidence turn (0 when none of the first 10 does). Methods: an exact dense scan,
  BM25 in its fair form (memlane's tokenisation, stopwords dropped from the query), plain RRF
  of the two, and memlane's own search through the daemon.
- Clean negatives: each question of categories 1-4 asked in the project of every OTHER
  conversation of its split (its answer is not there).
- Adversarial: LoCoMo's category 5 (a false premise), asked in its own project.

For all three, memlane's top hit (its fused score, its cosine to the query) is recorded per
query in bench/out/locomo_scores.json, for calibrating a relevance floor.

Run: python -m bench.bench_locomo [--data ../shared/bench/locomo] [--out bench/out/...]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.locomo_eval import (
    ADVERSARIAL, ANSWERABLE, SPLITS, Conversation, auc, bm25, dense_exact, embed, header, load,
    percentiles, recall_at, reciprocal_rank, rrf)
from memlane.cli.client import Client
from tests.e2e.daemon import DaemonProcess

K = 10
METHODS = ("dense exact", "bm25 (fair)", "rrf(dense, bm25)", "memlane search")
KINDS = ("positive", "clean negative", "adversarial")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "bench" / "locomo"
DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "locomo_scores.json"


def settle(daemon: DaemonProcess, attempts: int = 20) -> None:
    """Wait (a minute per attempt) until the daemon has a vector for every memory."""
    for _ in range(attempts):
        try:
            daemon.wait_idle()
            return
        except TimeoutError:
            continue
    raise TimeoutError("the daemon did not finish embedding")


def ask(client: Client, conn: sqlite3.Connection, target: Conversation, question: str,
        vector: np.ndarray) -> tuple[dict[str, list[int]], dict[str, Any]]:
    """Ask ``question`` in ``target``'s project: every method's ranking, and memlane's top hit."""
    dense = dense_exact(target, vector)
    lexical = bm25(conn, question, target.project)
    hits = client.request("POST", "/v1/search", {
        "query": question, "project": target.project, "k": K})["hits"]
    rankings = {
        "dense exact": [i for i, _ in dense],
        "bm25 (fair)": [i for i, _ in lexical],
        "rrf(dense, bm25)": rrf([[i for i, _ in dense], [i for i, _ in lexical]]),
        "memlane search": [h["id"] for h in hits],
    }
    top = hits[0] if hits else {}
    return rankings, {
        "asked_in": target.name, "hits": len(hits),
        "top_id": top.get("id"), "fused": top.get("score"),
        "cosine": target.cosine(top["id"], vector) if top else None,
        "dense_max": dense[0][1] if dense else None,
        "bm25_max": lexical[0][1] if lexical else None,
    }


def positive(client: Client, conn: sqlite3.Connection, conversation: Conversation, q: dict,
             vector: np.ndarray) -> dict[str, Any]:
    """A question asked in its own project, with every method's metrics."""
    rankings, row = ask(client, conn, conversation, q["question"], vector)
    evidence, owners = q["evidence"], conversation.owners
    row["metrics"] = {name: {"recall@5": recall_at(5, hits, owners, evidence),
                             "recall@10": recall_at(K, hits, owners, evidence),
                             "mrr@10": reciprocal_rank(K, hits, owners, evidence)}
                      for name, hits in rankings.items()}
    row["top_is_evidence"] = bool(owners.get(row["top_id"], set()) & set(evidence))
    return row


def evaluate_split(client: Client, conn: sqlite3.Connection, split: str,
                   conversations: list[Conversation]) -> list[dict[str, Any]]:
    """Per-query rows (positives, clean negatives, adversarial) of one split."""
    rows = []
    for conversation in conversations:
        answerable = conversation.questions(ANSWERABLE)
        adversarial = conversation.questions((ADVERSARIAL,))
        vectors = embed(client, [q["question"] for q in answerable + adversarial], "query")
        others = [c for c in conversations if c is not conversation]
        for q, vector in zip(answerable, vectors[:len(answerable)], strict=True):
            rows.append(_label(split, "positive", conversation, q)
                        | positive(client, conn, conversation, q, vector))
            rows += [_label(split, "clean negative", conversation, q)
                     | ask(client, conn, other, q["question"], vector)[1] for other in others]
        for q, vector in zip(adversarial, vectors[len(answerable):], strict=True):
            rows.append(_label(split, "adversarial", conversation, q)
                        | ask(client, conn, conversation, q["question"], vector)[1])
    return rows


def _label(split: str, kind: str, conversation: Conversation, q: dict) -> dict[str, Any]:
    return {"split": split, "kind": kind, "conversation": conversation.name,
            "category": q["category"], "question": q["question"]}


def evaluate(data: Path) -> tuple[str, list[dict[str, Any]]]:
    """The model's name and the per-query rows of both splits, from one real daemon."""
    with tempfile.TemporaryDirectory(prefix="ml-locomo-", dir="/tmp") as tmp:
        daemon = DaemonProcess(Path(tmp)).start()
        try:
            client = daemon.client
            model = client.request("GET", "/v1/health")["model"]
            loaded = {split: [load(client, data / f"{name}.json") for name in names]
                      for split, names in SPLITS.items()}
            settle(daemon)
            conn = sqlite3.connect(f"file:{daemon.paths.sqlite}?mode=ro", uri=True)
            try:
                rows = [row for split, conversations in loaded.items()
                        for row in evaluate_split(client, conn, split, conversations)]
            finally:
                conn.close()
        finally:
            daemon.stop()
    return model, rows


def report_retrieval(rows: list[dict[str, Any]]) -> None:
    print(f"\nPositives (categories 1-4, own project): evidence recall@5, recall@{K}, MRR@{K}")
    print(f"  {'split':<7} {'questions':>9}  {'method':<18} {'recall@5':>8} {'recall@10':>9}"
          f" {'MRR@10':>7}")
    for split in SPLITS:
        positives = [r for r in rows if r["split"] == split and r["kind"] == "positive"]
        for name in METHODS:
            means = [np.mean([r["metrics"][name][m] for r in positives])
                     for m in ("recall@5", "recall@10", "mrr@10")]
            print(f"  {split:<7} {len(positives):>9}  {name:<18} {means[0]:>8.4f}"
                  f" {means[1]:>9.4f} {means[2]:>7.4f}")


def report_negatives(rows: list[dict[str, Any]]) -> None:
    print("\nNegatives: share of queries memlane search answers with nothing (k=10)")
    print(f"  {'split':<7} {'kind':<28} {'queries':>7} {'empty':>7}")
    for split in SPLITS:
        for kind, label in (("clean negative", "clean (other conversation)"),
                            ("adversarial", "adversarial (category 5)")):
            chosen = [r for r in rows if r["split"] == split and r["kind"] == kind]
            empty = sum(r["hits"] == 0 for r in chosen) / max(len(chosen), 1)
            print(f"  {split:<7} {label:<28} {len(chosen):>7} {empty:>7.1%}")


def report_scores(rows: list[dict[str, Any]]) -> None:
    print("\nmemlane's top hit: cosine to the query / fused score, percentiles p10 p25 p50 p75 p90")
    for split in SPLITS:
        groups = {kind: [r for r in rows if r["split"] == split and r["kind"] == kind]
                  for kind in KINDS}
        groups["positive, top is evidence"] = [r for r in groups["positive"]
                                               if r["top_is_evidence"]]
        for kind, chosen in groups.items():
            scored = [r for r in chosen if r["hits"]]
            print(f"  {split:<7} {kind:<26} n={len(scored):<5}"
                  f" cosine {_spread([r['cosine'] for r in scored])}"
                  f"  fused {_spread([r['fused'] for r in scored])}")
        print(f"  {split:<7} AUC positive vs clean negative:"
              + "".join(f" {key} {_auc(groups, key):.3f}"
                        for key in ("cosine", "fused", "dense_max")))


def _spread(values: list[float]) -> str:
    return " ".join(f"{v:.3f}" for v in percentiles(values).values())


def _auc(groups: dict[str, list[dict[str, Any]]], key: str) -> float:
    return auc([r[key] for r in groups["positive"] if r["hits"]],
               [r[key] for r in groups["clean negative"] if r["hits"]])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    start = time.perf_counter()
    run = header()
    print(run)
    model, rows = evaluate(args.data)
    print(f"model: {model}; split: " + ", ".join(
        f"{split} = {' '.join(names)}" for split, names in SPLITS.items()))
    report_retrieval(rows)
    report_negatives(rows)
    report_scores(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"header": run, "model": model, "queries": rows}))
    print(f"\nper-query top-hit scores: {args.out} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
