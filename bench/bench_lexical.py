"""Lexical (BM25) search on the fixed corpora: latency and quality, before and after the bound.

Run: python -m bench.bench_lexical [--runs 3] [--budgets 3000,6000,12000]

SQLite projections (FTS5) are built from the corpora's memories, in process, without vectors.

- hooks-20k: the prompts (300 and 2,000 characters) of the largest project and of a new one,
  through ``lexical_evidence`` (what the UserPromptSubmit hook and a search run: the words'
  document counts, then BM25): p50/p95 ms, and the top-10 overlap with unbounded BM25 (the
  whole query, every match scored, the project filter).
- zipf-100k: the 200 labelled queries, recall@10 (``relevant`` are 0-based lines of
  memories.jsonl) and p50/p95 ms.
- LoCoMo (``--locomo DIR``, the evaluation data of bench/bench_locomo.py, read in place):
  each turn stored as one memory, one project per conversation; the BM25 candidate lists of
  the answerable questions, before and after: how many differ, and BM25's recall@5/@10 per
  split (tuning and test apart). Identical lists leave every figure of bench_locomo as it was.

"before" is the bound of main at 7ec151c, reproduced here (``(rarest words) AND (whole
query)`` past 12,000 postings); "after" is memlane's code, every query counting its words
afresh; "after, counts kept" reuses the counts of words an earlier query looked up (the index
does not change during the run), as prompts of a session do; "after, not narrowed" is "after"
without the narrowing to the rarest words together (when even the rarest word is past the
budget, each document holding it is scored). The methods run interleaved, query by query, so
that the machine's load falls on both alike; each figure is printed with the load average.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_search import build, percentile
from bench.corpora import load
from bench.report import load_average, print_machine
from memlane.daemon.domain.ranking import CANDIDATES, bm25_strength, fts_query
from memlane.daemon.service.candidates import lexical_evidence
from memlane.events.model import Record, Stored
from memlane.projections import fulltext
from memlane.projections.catchup import Projections
from memlane.projections.queries import indexed_count

AT = datetime(2026, 12, 3, tzinfo=UTC)
Search = Callable[[sqlite3.Connection, str, str], list[tuple[int, float]]]
BEFORE_BUDGET = 12_000


def unbounded(conn: sqlite3.Connection, query: str, project: str) -> list[tuple[int, float]]:
    """BM25 over every match of the whole query (stopwords dropped), in the project."""
    match = fts_query(query)
    if match is None:
        return []
    return [(r[0], float(r[1])) for r in conn.execute(
        "SELECT m.id, -bm25(memories_fts) FROM memories_fts JOIN memories m"
        " ON m.id = memories_fts.rowid WHERE memories_fts MATCH ?"
        " AND m.state IN ('active', 'proven') AND m.project = ?"
        " ORDER BY bm25(memories_fts) LIMIT ?", (match, project, CANDIDATES))]


def before(conn: sqlite3.Connection, query: str, project: str) -> list[tuple[int, float]]:
    """``lexical_evidence`` of main at 7ec151c: counts, the joined bound, BM25, strength."""
    match = fts_query(query)
    if match is None:
        return []
    words = re.findall(r'"([^"]+)"', match)
    counts = fulltext.count_documents(conn, words)
    chosen: list[str] = []
    total = 0
    for word in sorted((w for w in words if counts.get(w)), key=lambda w: counts[w]):
        if chosen and total + counts[word] > BEFORE_BUDGET:
            break
        chosen.append(word)
        total += counts[word]
    if chosen and len(chosen) != len(words) and len(words) > 1:
        match = f"({' OR '.join(f'{chr(34)}{w}{chr(34)}' for w in chosen)}) AND ({match})"
    found = [(r[0], float(r[1])) for r in conn.execute(
        "SELECT m.id, -bm25(memories_fts) FROM memories_fts JOIN memories m"
        " ON m.id = memories_fts.rowid WHERE memories_fts MATCH ?"
        " AND m.state IN ('active', 'proven') AND m.project = ?"
        " ORDER BY bm25(memories_fts) LIMIT ?", (match, project, CANDIDATES))]
    if found:
        bm25_strength(found[0][1], counts.values(), indexed_count(conn))
    return found


def after(conn: sqlite3.Connection, query: str, project: str) -> list[tuple[int, float]]:
    """``lexical_evidence`` with no document count kept from an earlier query."""
    fulltext.COUNTS.clear()
    return lexical_evidence(conn, query, project)[0]


def after_warm(conn: sqlite3.Connection, query: str, project: str) -> list[tuple[int, float]]:
    """``lexical_evidence`` as a session runs it: the counts of words seen before are kept
    (until the index changes; it does not change here)."""
    return lexical_evidence(conn, query, project)[0]


def not_narrowed(conn: sqlite3.Connection, query: str, project: str) -> list[tuple[int, float]]:
    """``after`` without the narrowing to documents holding the rarest words together: when
    even the rarest word is past the budget, every document holding it is scored."""
    bound_query = fulltext.bound_query

    def rarest_alone(*args: Any) -> fulltext.Bound | None:
        bound = bound_query(*args)
        if bound is None or bound.wider is None:
            return bound
        return fulltext.Bound(bound.match, bound.wider)

    fulltext.bound_query = rarest_alone
    try:
        return after(conn, query, project)
    finally:
        fulltext.bound_query = bound_query


def with_budget(budget: int) -> Search:
    def search(conn: sqlite3.Connection, query: str, project: str) -> list[tuple[int, float]]:
        kept = fulltext.POSTINGS_BUDGET
        fulltext.POSTINGS_BUDGET = budget
        try:
            return after(conn, query, project)
        finally:
            fulltext.POSTINGS_BUDGET = kept
    return search


def timed(search: Search, conn: sqlite3.Connection, query: str,
          project: str) -> tuple[float, list[int]]:
    started = time.perf_counter()
    found = search(conn, query, project)
    return (time.perf_counter() - started) * 1000, [i for i, _ in found]


def run_methods(conn: sqlite3.Connection, asked: list[dict[str, Any]],
                methods: dict[str, Search], runs: int) -> dict[str, dict[str, list[float]]]:
    """Per method: times (ms), top-10 overlap with unbounded, recall@10 (when labelled)."""
    out: dict[str, dict[str, list[float]]] = {
        name: {"ms": [], "overlap": [], "recall": []} for name in methods}
    for q in asked:
        reference = [i for i, _ in unbounded(conn, q["query"], q["project"])][:10]
        for _ in range(runs):
            for name, search in methods.items():  # interleaved: one query, every method
                ms, found = timed(search, conn, q["query"], q["project"])
                out[name]["ms"].append(ms)
        for name, search in methods.items():
            found = [i for i, _ in search(conn, q["query"], q["project"])][:10]
            overlap = len(set(found) & set(reference)) / len(reference) if reference else 1.0
            out[name]["overlap"].append(overlap)
            if q.get("relevant"):
                wanted = {i + 1 for i in q["relevant"]}
                out[name]["recall"].append(len(wanted & set(found)) / len(wanted))
    return out


def report(title: str, results: dict[str, dict[str, list[float]]]) -> None:
    print(f"  {title}  (load {load_average()})")
    for name, r in results.items():
        recall = f"  recall@10 {statistics.mean(r['recall']):.3f}" if r["recall"] else ""
        print(f"    {name:<22} p50 {statistics.median(r['ms']):7.2f} ms  p95"
              f" {percentile(r['ms'], 0.95):7.2f} ms  top-10 overlap with unbounded"
              f" {statistics.mean(r['overlap']):.3f}{recall}")


def projection(root: Path, corpus: str) -> sqlite3.Connection:
    with open(load(corpus) / "memories.jsonl") as lines:
        memories = [json.loads(line) for line in lines]
    build(root, memories, np.zeros((0, 384), np.float32)).close()
    return sqlite3.connect(root / "p.sqlite3")


def hooks(root: Path, methods: dict[str, Search], runs: int, per_group: int) -> None:
    conn = projection(root, "hooks-20k")
    with open(load("hooks-20k") / "prompts.jsonl") as lines:
        prompts = [json.loads(line) for line in lines]
    sizes = dict(conn.execute("SELECT project, count(*) FROM memories GROUP BY project"))
    print(f"hooks-20k: {sum(sizes.values()):,} memories, {len(sizes)} projects, the largest"
          f" {max(sizes.values()):,}; {per_group} prompts a group, {runs} runs each")
    for size in sorted({p["size"] for p in prompts}):
        for project in sorted({p["project"] for p in prompts}):
            asked = [{"query": p["prompt"], "project": p["project"]} for p in prompts
                     if p["size"] == size and p["project"] == project][:per_group]
            words = statistics.median(len(re.findall(r'"', fts_query(q["query"]) or "")) // 2
                                      for q in asked)
            report(f"{size}-char prompts, {project} ({sizes.get(project, 0):,} memories,"
                   f" {words:.0f} query words)", run_methods(conn, asked, methods, runs))
    long = {"query": " ".join(p["prompt"] for p in prompts if "payments" in p["project"]),
            "project": next(p["project"] for p in prompts if "payments" in p["project"])}
    report(f"worst case: one {len(long['query']):,}-char prompt (every payments prompt)",
           run_methods(conn, [long], methods, runs))


def zipf(root: Path, methods: dict[str, Search], runs: int) -> None:
    conn = projection(root, "zipf-100k")
    with open(load("zipf-100k") / "queries.jsonl") as lines:
        asked = [json.loads(line) for line in lines]
    report(f"zipf-100k: {indexed_count(conn):,} memories, {len(asked)} labelled queries,"
           f" {runs} runs each", run_methods(conn, asked, methods, runs))


def locomo(root: Path, data: Path) -> None:
    from bench.locomo_eval import ANSWERABLE, SPLITS, recall_at, turns_of

    projections = Projections(root / "p.sqlite3", root / "v.vectors")
    records: list[Record] = []
    owners: dict[int, set[str]] = {}
    asked = []
    for split, names in SPLITS.items():
        for name in names:
            conversation = json.loads((data / f"{name}.json").read_text())
            ids: dict[str, int] = {}  # identical turns share one memory, as an import does
            for dia_id, text in turns_of(conversation):
                if text not in ids:
                    ids[text] = len(records) + 1
                    records.append(Record(seq=ids[text], at=AT, event=Stored(
                        id=ids[text], text=text, project=name, kind="note",
                        content_hash=f"{ids[text]:032x}")))
                owners.setdefault(ids[text], set()).add(dia_id)
            asked += [(split, name, q) for q in conversation["qa"]
                      if q["category"] in ANSWERABLE and q.get("evidence")]
    projections.apply(records)
    projections.close()
    conn = sqlite3.connect(root / "p.sqlite3")
    recalls: dict[tuple[str, str], list[tuple[float, float]]] = {}
    differ = 0
    for split, project, q in asked:
        lists = {name: [i for i, _ in search(conn, q["question"], project)]
                 for name, search in (("before", before), ("after", after))}
        differ += lists["before"] != lists["after"]
        for name, hits in lists.items():
            recalls.setdefault((split, name), []).append(
                (recall_at(5, hits, owners, q["evidence"]),
                 recall_at(10, hits, owners, q["evidence"])))
    print(f"LoCoMo: {len(records):,} memories, {len(asked)} answerable questions;"
          f" BM25 candidate lists that differ before/after: {differ}")
    for (split, name), pairs in sorted(recalls.items(),
                                       key=lambda kv: (kv[0][0] != "tuning", kv[0])):
        print(f"    {split:<7} bm25 {name:<7} n={len(pairs)}  recall@5"
              f" {statistics.mean(p[0] for p in pairs):.4f}  recall@10"
              f" {statistics.mean(p[1] for p in pairs):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=50, help="hooks-20k prompts per group")
    parser.add_argument("--budgets", default="", help="also run these POSTINGS_BUDGET values")
    parser.add_argument("--locomo", type=Path, default=None,
                        help="LoCoMo conversations (e.g. ../shared/bench/locomo)")
    args = parser.parse_args()
    print_machine()
    methods: dict[str, Search] = {"unbounded": lambda c, q, p: unbounded(c, q, p),
                                  "before (7ec151c)": before,
                                  f"after ({fulltext.POSTINGS_BUDGET:,})": after,
                                  "after, counts kept": after_warm,
                                  "after, not narrowed": not_narrowed}
    for budget in filter(None, args.budgets.split(",")):
        methods[f"after, budget {int(budget):,}"] = with_budget(int(budget))
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        (Path(tmp) / "hooks").mkdir()
        (Path(tmp) / "zipf").mkdir()
        hooks(Path(tmp) / "hooks", methods, args.runs, args.prompts)
        zipf(Path(tmp) / "zipf", methods, args.runs)
        if args.locomo is not None:
            (Path(tmp) / "locomo").mkdir()
            locomo(Path(tmp) / "locomo", args.locomo)
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
