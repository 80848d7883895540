"""Retrieval-only evaluation on LoCoMo (../shared/bench/locomo), tuning and test splits apart.

Every turn is stored as a memory (`[<session date>] <speaker>: <text>`, one project per
conversation: a temporary directory with a `.git`, as the hooks derive projects from the
session's cwd) in a real daemon. Split: tuning = conversations 26 and 30 (memlane's fusion
weight, neighbour share and relevance floor were chosen on them), test = 41, 42 and 43; no
figure pools the two.

- Positives: each question of categories 1-4, asked in its own project. recall@k is the share
  of its evidence turns among the first k hits; MRR@10 the mean of 1/rank of the first hit
  holding an evidence turn (0 when none of the first 10 does). Methods: an exact dense scan,
  BM25 in its fair form (memlane's tokenisation, stopwords dropped from the query), plain RRF
  of the two, and memlane's own search through the daemon.
- Clean negatives: each question of categories 1-4 asked in the project of every OTHER
  conversation of its split (its answer is not there).
- Adversarial: LoCoMo's category 5 (a false premise), asked in its own project.

memlane's search is asked once with `floor: false` (every hit, those below the relevance floor
marked): its ranking without the floor, and with it (the marked hits left out). Every query is
also sent as a prompt to the UserPromptSubmit hook (cwd = the project's directory, a session
of its own), which injects at most 3 memories.

For all three, memlane's top hit (its fused score, its cosine to the query) is recorded per
query in bench/out/locomo_scores.json, for calibrating a relevance floor.

It also keeps what an offline replay of the rankings and floors needs (bench/locomo_replay.py,
read by bench/locomo_variants.py) in bench/out/locomo_replay/.

Run: python -m bench.bench_locomo [--data ../shared/bench/locomo] [--out bench/out/...]
     [--replay bench/out/locomo_replay] [--figures PATH: memlane's search against fair BM25
     and the exact dense scan, per split, for ``make bench``]
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import locomo_replay
from bench.report import Figure, load_average, write_figures
from bench.locomo_eval import (
    ADVERSARIAL, ANSWERABLE, SPLITS, Conversation, auc, bm25, dense_exact, embed, header, load,
    percentiles, recall_at, reciprocal_rank, rrf)
from memlane.cli.client import Client
from tests.e2e.daemon import DaemonProcess

K = 10
SESSIONS = itertools.count()
METHODS = ("dense exact", "bm25 (fair)", "rrf(dense, bm25)", "memlane search",
           "memlane search, floor", "prompt hook (<=3)")
HOOK_ID = re.compile(r"^- \[(\d+)\]", re.MULTILINE)
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
        "query": question, "project": target.project, "k": K, "floor": False})["hits"]
    floored = [h["id"] for h in hits if not h.get("below_floor")]
    hooked = hook_ids(client, target.project, question)
    rankings = {
        "dense exact": [i for i, _ in dense],
        "bm25 (fair)": [i for i, _ in lexical],
        "rrf(dense, bm25)": rrf([[i for i, _ in dense], [i for i, _ in lexical]]),
        "memlane search": [h["id"] for h in hits],
        "memlane search, floor": floored,
        "prompt hook (<=3)": hooked,
    }
    top = hits[0] if hits else {}
    return rankings, {
        "asked_in": target.name, "hits": len(floored), "hook_hits": len(hooked),
        "top_id": top.get("id"), "fused": top.get("score"),
        "cosine": target.cosine(top["id"], vector) if top else None,
        "dense_max": dense[0][1] if dense else None,
        "bm25_max": lexical[0][1] if lexical else None,
    }


def hook_ids(client: Client, project: str, prompt: str) -> list[int]:
    """The memories the UserPromptSubmit hook injects for ``prompt`` in a fresh session."""
    answer = client.request("POST", "/hooks/UserPromptSubmit", {
        "session_id": f"bench-{next(SESSIONS)}", "hook_event_name": "UserPromptSubmit",
        "cwd": project, "prompt": prompt})
    context = answer.get("hookSpecificOutput", {}).get("additionalContext", "")
    return [int(i) for i in HOOK_ID.findall(context)]


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


def evaluate(data: Path, run: str, replay: Path) -> tuple[str, list[dict[str, Any]]]:
    """The model's name and the per-query rows of both splits, from one real daemon (its
    replay saved in ``replay``)."""
    with tempfile.TemporaryDirectory(prefix="ml-locomo-", dir="/tmp") as tmp:
        daemon = DaemonProcess(Path(tmp)).start()
        try:
            client = Client(daemon.paths, timeout=120.0)  # a shared machine: slow batches
            model = client.request("GET", "/v1/health")["model"]
            loaded = {split: [load(client, data / f"{name}.json", project(Path(tmp), name))
                              for name in names]
                      for split, names in SPLITS.items()}
            settle(daemon)
            conn = sqlite3.connect(f"file:{daemon.paths.sqlite}?mode=ro", uri=True)
            try:
                rows = [row for split, conversations in loaded.items()
                        for row in evaluate_split(client, conn, split, conversations)]
                locomo_replay.save(replay, conn, client, run, model, loaded)
            finally:
                conn.close()
        finally:
            daemon.stop()
    return model, rows


def project(root: Path, name: str) -> str:
    """A directory the hooks see as a git repository: its path is the project's name."""
    directory = root / f"locomo-{name}"
    (directory / ".git").mkdir(parents=True)
    return str(directory)


def report_retrieval(rows: list[dict[str, Any]]) -> None:
    print(f"\nPositives (categories 1-4, own project): evidence recall@5, recall@{K}, MRR@{K}"
          " (the hook shows at most 3 memories)")
    print(f"  {'split':<7} {'questions':>9}  {'method':<21} {'recall@5':>8} {'recall@10':>9}"
          f" {'MRR@10':>7}")
    for split in SPLITS:
        positives = [r for r in rows if r["split"] == split and r["kind"] == "positive"]
        for name in METHODS:
            means = [np.mean([r["metrics"][name][m] for r in positives])
                     for m in ("recall@5", "recall@10", "mrr@10")]
            print(f"  {split:<7} {len(positives):>9}  {name:<21} {means[0]:>8.4f}"
                  f" {means[1]:>9.4f} {means[2]:>7.4f}")


def report_negatives(rows: list[dict[str, Any]]) -> None:
    print("\nNegatives: share of queries answered with nothing, relevance floor on"
          " (search: k=10; hook: what it injects)")
    print(f"  {'split':<7} {'kind':<28} {'queries':>7} {'search':>7} {'hook':>7}")
    for split in SPLITS:
        for kind, label in (("clean negative", "clean (other conversation)"),
                            ("adversarial", "adversarial (category 5)"),
                            ("positive", "positive (own conversation)")):
            chosen = [r for r in rows if r["split"] == split and r["kind"] == kind]
            empty = sum(r["hits"] == 0 for r in chosen) / max(len(chosen), 1)
            hook = sum(r["hook_hits"] == 0 for r in chosen) / max(len(chosen), 1)
            print(f"  {split:<7} {label:<28} {len(chosen):>7} {empty:>7.1%} {hook:>7.1%}")
    print("\nCost of the floor: memlane search recall@10 without -> with the floor")
    for split in SPLITS:
        positives = [r for r in rows if r["split"] == split and r["kind"] == "positive"]
        off, on = (np.mean([r["metrics"][name]["recall@10"] for r in positives])
                   for name in ("memlane search", "memlane search, floor"))
        print(f"  {split:<7} {off:.4f} -> {on:.4f} ({on - off:+.4f})")


def report_scores(rows: list[dict[str, Any]]) -> None:
    print("\nmemlane's top hit without the floor: cosine to the query / fused score,"
          " percentiles p10 p25 p50 p75 p90")
    for split in SPLITS:
        groups = {kind: [r for r in rows if r["split"] == split and r["kind"] == kind]
                  for kind in KINDS}
        groups["positive, top is evidence"] = [r for r in groups["positive"]
                                               if r["top_is_evidence"]]
        for kind, chosen in groups.items():
            scored = [r for r in chosen if r["top_id"] is not None]
            print(f"  {split:<7} {kind:<26} n={len(scored):<5}"
                  f" cosine {_spread([r['cosine'] for r in scored])}"
                  f"  fused {_spread([r['fused'] for r in scored])}")
        print(f"  {split:<7} AUC positive vs clean negative:"
              + "".join(f" {key} {_auc(groups, key):.3f}"
                        for key in ("cosine", "fused", "dense_max")))


def _spread(values: list[float]) -> str:
    return " ".join(f"{v:.3f}" for v in percentiles(values).values())


def _auc(groups: dict[str, list[dict[str, Any]]], key: str) -> float:
    return auc([r[key] for r in groups["positive"] if r["top_id"] is not None],
               [r[key] for r in groups["clean negative"] if r["top_id"] is not None])


def figures(rows: list[dict[str, Any]], load: float) -> list[Figure]:
    """memlane's search against fair BM25 (recall@10, MRR@10) and the exact dense scan
    (recall@10), each split apart: the tuning split's figures are not held out."""
    found = []
    for split, names in SPLITS.items():
        positives = [r for r in rows if r["split"] == split and r["kind"] == "positive"]
        held = "weights chosen on it" if split == "tuning" else "held out"
        for metric, baseline in (("recall@10", "bm25 (fair)"), ("mrr@10", "bm25 (fair)"),
                                 ("recall@10", "dense exact")):
            found.append(Figure(
                "locomo", f"{split} split ({' '.join(names)}: {held}), memlane search {metric}"
                f" against {baseline}",
                _mean(positives, "memlane search", metric), "",
                _mean(positives, baseline, metric), f"{baseline}, same run", load=load))
    return found


def _mean(positives: list[dict[str, Any]], method: str, metric: str) -> float:
    return round(float(np.mean([r["metrics"][method][metric] for r in positives])), 4)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--replay", type=Path, default=locomo_replay.DEFAULT_DIR)
    parser.add_argument("--figures", type=Path, help="also write the figures there (run_all)")
    args = parser.parse_args()
    start = time.perf_counter()
    load = load_average()
    run = header()
    print(run)
    model, rows = evaluate(args.data, run, args.replay)
    print(f"model: {model}; split: " + ", ".join(
        f"{split} = {' '.join(names)}" for split, names in SPLITS.items()))
    report_retrieval(rows)
    report_negatives(rows)
    report_scores(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"header": run, "model": model, "queries": rows}))
    print(f"\nper-query top-hit scores: {args.out}; replay: {args.replay}"
          f" ({time.perf_counter() - start:.0f} s)")
    if args.figures is not None:
        write_figures(args.figures, figures(rows, load))


if __name__ == "__main__":
    main()
