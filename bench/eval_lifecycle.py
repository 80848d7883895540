"""Evaluate the lifecycle on the labelled corpus (tests/data/corpus.jsonl) with a real daemon.

Prints link precision/recall against the labelled groups, cluster purity and coverage,
cross-project links (must be 0), protected memories expired (must be 0) and expiry precision.
Run: python -m bench.eval_lifecycle [--corpus PATH] [--age-limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Any

from memlane.cli.client import Client, DaemonUnavailable
from memlane.daemon.adapters.paths import resolve_paths

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "corpus.jsonl"


def start_daemon(home: Path, age_limit: int) -> tuple[subprocess.Popen[bytes], Client]:
    env = {**os.environ, "MEMLANE_HOME": str(home), "MEMLANE_PORT": "0",
           "MEMLANE_AGE_LIMIT": str(age_limit), "MEMLANE_JOBS_INTERVAL_S": "86400"}
    process = subprocess.Popen([sys.executable, "-m", "memlane.daemon"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = Client(resolve_paths({"MEMLANE_HOME": str(home)}), timeout=120)
    for _ in range(3000):
        try:
            if client.request("GET", "/v1/health")["status"] == "ready":
                return process, client
        except DaemonUnavailable:
            pass
        time.sleep(0.02)
    raise RuntimeError("the daemon did not become ready")


def wait_idle(client: Client) -> None:
    while True:
        status = client.request("GET", "/v1/status")
        if status["embedding_backlog"] == 0 and status["vectors"] >= sum(status["memories"].values()):
            return
        time.sleep(0.05)


def load(client: Client, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Import in corpus order; returns key → memory id (duplicates map to their original)."""
    bodies = [{"text": r["text"], "project": r["project"], "kind": r["kind"], "tags": r["tags"],
               "source": "eval"} for r in rows]
    ids = client.request("POST", "/v1/import", {"memories": bodies})["ids"]
    return {row["key"]: memory_id for row, memory_id in zip(rows, ids)}


def true_pairs(rows: list[dict[str, Any]], ids: dict[str, int]) -> set[tuple[int, int]]:
    groups: dict[str, set[int]] = {}
    for row in rows:
        if row["group"]:
            groups.setdefault(row["group"], set()).add(ids[row["key"]])
    return {(a, b) for members in groups.values() for a, b in combinations(sorted(members), 2)}


def evaluate(client: Client, rows: list[dict[str, Any]], ids: dict[str, int]) -> dict[str, Any]:
    by_id: dict[int, dict[str, Any]] = {}
    for row in rows:
        by_id.setdefault(ids[row["key"]], row)
    links = set()
    for memory_id in by_id:
        for link in client.request("GET", f"/v1/memories/{memory_id}/links")["links"]:
            links.add(tuple(sorted((memory_id, link["other"]))))
    truth = true_pairs(rows, ids)
    cross = sum(by_id[a]["project"] != by_id[b]["project"] for a, b in links)
    found = client.request("POST", "/v1/jobs/cluster", {})["clusters"]
    labels = [[by_id[m]["group"] or f"solo-{m}" for m in c["members"]] for c in found]
    purity = (sum(Counter(ls).most_common(1)[0][1] for ls in labels) / sum(map(len, labels))
              if labels else 0.0)
    groups = {r["group"] for r in by_id.values() if r["group"]}
    covered = {Counter(ls).most_common(1)[0][0] for ls in labels} & groups
    aged = client.request("POST", "/v1/jobs/age", {})["decisions"]
    expired = [by_id[d["id"]] for d in aged if d["action"] == "expire"]
    noise = [r for r in by_id.values() if r["noise"]]
    return {
        "memories": len(by_id), "links": len(links),
        "link_precision": len(links & truth) / max(len(links), 1),
        "link_recall": len(links & truth) / max(len(truth), 1),
        "cross_project_links": cross,
        "clusters": len(found), "cluster_purity": purity,
        "groups_clustered": f"{len(covered)}/{len(groups)}",
        "expired": len(expired), "reprieved": sum(d["action"] == "reprieve" for d in aged),
        "expiry_precision": sum(r["noise"] for r in expired) / max(len(expired), 1),
        "noise_expired": f"{sum(r['noise'] for r in expired)}/{len(noise)}",
        "protected_expired": sum(r["protected"] for r in expired),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--age-limit", type=int, default=20)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.corpus.read_text().splitlines() if line.strip()]
    home = Path(tempfile.mkdtemp(prefix="ml-eval-", dir="/tmp"))
    process, client = start_daemon(home, args.age_limit)
    try:
        ids = load(client, rows)
        wait_idle(client)
        model = client.request("GET", "/v1/health")["model"]
        calibration = client.request("POST", "/v1/calibrate", {})
        result = evaluate(client, rows, ids)
    finally:
        process.terminate()
        process.wait(30)
        shutil.rmtree(home, ignore_errors=True)
    print(f"machine: {platform.machine()} python {platform.python_version()}; model {model}; "
          f"corpus {args.corpus.name}; age limit {args.age_limit} stores")
    print(f"  calibrate: nearest-neighbour {calibration['nearest_neighbour']}")
    print(f"  calibrate: current {calibration['current']} suggested {calibration['suggested']}")
    for key, value in result.items():
        print(f"  {key:<20} {value:.3f}" if isinstance(value, float) else f"  {key:<20} {value}")


if __name__ == "__main__":
    main()
