"""Precision and recall of the usage detector on labelled turns (tests/data/usage/*.jsonl).

Each line: a memory shown for ``prompt``, the assistant's ``reply`` (and the user's ``later``
prompts, if any), and ``used``: whether the memory was used, labelled by hand. The detector is
the one the daemon runs at Stop/SessionEnd (``domain/usage.detect_use``), lexical part only:
the embedding-closeness relaxation needs the model and is not measured here.

    python -m bench.bench_usage        (``measure()``: its figures for ``make bench``)
"""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import Figure, load_average
from memlane.daemon.domain.usage import detect_use

DATA = Path(__file__).parents[1] / "tests" / "data" / "usage"


def load(folder: Path = DATA) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(folder.glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def predict(turn: dict[str, Any]) -> bool:
    return detect_use(0, turn["memory"], prompt=turn["prompt"], replies=[turn["reply"]],
                      later_prompts=turn.get("later", [])) is not None


def score(turns: list[dict[str, Any]]) -> dict[str, float]:
    """Counts, precision and recall of the detector against the labels."""
    tp = sum(1 for t in turns if t["used"] and predict(t))
    fp = sum(1 for t in turns if not t["used"] and predict(t))
    fn = sum(1 for t in turns if t["used"] and not predict(t))
    return {"turns": len(turns), "tp": tp, "fp": fp, "fn": fn,
            "precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0}


def measure() -> list[Figure]:
    """Precision and recall on every labelled turn (no target: the issue asks for them)."""
    result = score(load())
    name = f"usage detector (lexical part) on {result['turns']:.0f} labelled turns"
    average = load_average()
    return [Figure("usage", f"{name}, {share}", round(result[share], 3), "", load=average)
            for share in ("precision", "recall")]


def main() -> None:
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, cwd=DATA, check=False).stdout.strip()
    print(f"machine: {platform.platform()}, python {platform.python_version()}; "
          f"date {datetime.now(UTC):%Y-%m-%d}; sha {sha or 'unknown'}")
    turns = load()
    result = score(turns)
    print(f"labelled turns: {result['turns']} ({sum(t['used'] for t in turns)} used)")
    print(f"precision {result['precision']:.3f}  recall {result['recall']:.3f}  "
          f"(tp {result['tp']}, fp {result['fp']}, fn {result['fn']})")
    for turn in turns:
        if predict(turn) != turn["used"]:
            kind = "missed" if turn["used"] else "false use"
            print(f"  {kind}: {turn['memory'][:60]!r} / {turn['reply'][:60]!r}")


if __name__ == "__main__":
    main()
