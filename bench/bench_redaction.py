"""Redaction recall and near-miss alteration on the labelled corpus (tests/data/redaction).

Run: python -m bench.bench_redaction [--corpus PATH] [--fresh PATH] [--split tune] [--markdown]

Per split (tune, heldout, and fresh and unseen: later corpora, fresh.jsonl and unseen.jsonl,
written by bench/redaction_fresh.py and bench/redaction_unseen.py without reading the rules or
the corpus's entries, each scored once held out, then tuned on once its misses were read):
recall is the share of secret entries whose every listed secret is gone from the text and from
every tag after redaction; alteration is the share of near-miss entries whose text or tags
changed at all. Tags are redacted one by one with ``redact`` (the intended store-time
behaviour), so a secret split across two tags is out of scope. Missed kinds are listed for every
split; the ids of missed and altered entries only for the tuning splits (``tune``, ``fresh``,
``unseen``), so that rules are tuned without looking at held-out entries.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memlane.daemon.domain.redaction import redact

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "redaction" / "corpus.jsonl"
FRESH = CORPUS.with_name("fresh.jsonl")
UNSEEN = CORPUS.with_name("unseen.jsonl")
UNSEEN3 = CORPUS.with_name("unseen3.jsonl")
SPLITS = ("tune", "heldout", "fresh", "unseen", "unseen3")


@dataclass
class Score:
    """One split's tallies: entries, misses and alterations, by kind and by id."""

    secrets: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)
    missed_ids: list[str] = field(default_factory=list)
    near_misses: int = 0
    altered_ids: list[str] = field(default_factory=list)


def redacted(entry: dict[str, Any]) -> tuple[str, list[str]]:
    """The entry's text and tags as they would be stored."""
    return redact(entry["text"]).text, [redact(tag).text for tag in entry["tags"]]


def score(entries: list[dict[str, Any]]) -> dict[str, Score]:
    """Tally every entry into its split."""
    scores = {split: Score() for split in SPLITS}
    for entry in entries:
        tally = scores[entry["split"]]
        text, tags = redacted(entry)
        if entry["label"] == "near-miss":
            tally.near_misses += 1
            if text != entry["text"] or tags != entry["tags"]:
                tally.altered_ids.append(entry["id"])
            continue
        tally.secrets[entry["kind"]] += 1
        if any(secret in stored for secret in entry["secrets"] for stored in (text, *tags)):
            tally.missed[entry["kind"]] += 1
            tally.missed_ids.append(entry["id"])
    return scores


def git_sha() -> str:
    """The checkout's commit, marked dirty when the tree has changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True,
                              cwd=CORPUS.parent).stdout.strip()
    dirty = "-dirty" if git("status", "--porcelain") else ""
    return (git("rev-parse", "--short", "HEAD") or "unknown") + dirty


def report(scores: dict[str, Score]) -> None:
    for split, tally in scores.items():
        caught, positives, altered, _ = rates(tally)
        print(f"\n[{split}] recall {caught}/{positives} = {caught / max(positives, 1):.1%}"
              f" over {len(tally.secrets)} kinds; near-miss alteration {altered}/"
              f"{tally.near_misses} = {altered / max(tally.near_misses, 1):.1%}")
        missed = sorted(tally.missed.items(), key=lambda item: (-item[1], item[0]))
        print(f"  missed kinds ({len(missed)}): "
              + (", ".join(f"{kind} {n}/{tally.secrets[kind]}" for kind, n in missed) or "none"))
        if split in ("tune", "fresh", "unseen"):
            print("  missed entries: " + (", ".join(tally.missed_ids) or "none"))
            print("  altered near-misses: " + (", ".join(tally.altered_ids) or "none"))


PROMPT = ("Refactor the session store so it retries on busy; keep the API stable, run the tests"
          " in tests/daemon and update ARCHITECTURE.md. Commit 3f2a9c1e, then deploy. ") * 14


def speed(text: str = PROMPT[:2000], rounds: int = 300) -> float:
    """CPU microseconds per 1,000 characters to redact a prompt without secrets (the common
    case); CPU time, so that other processes on a shared machine do not inflate it."""
    started = time.process_time()
    for _ in range(rounds):
        redact(text)
    return (time.process_time() - started) / rounds * 1e6 / (len(text) / 1000)


def corpus_speed(entries: list[dict[str, Any]]) -> float:
    """CPU microseconds per 1,000 characters over the tune split's texts (secrets and
    near-misses: the rules' gates open and their checks run)."""
    texts = [entry["text"] for entry in entries if entry["split"] == "tune"]
    started = time.process_time()
    for _ in range(10):
        for text in texts:
            redact(text)
    return (time.process_time() - started) / 10 * 1e6 / (sum(map(len, texts)) / 1000)


def rates(tally: Score) -> tuple[int, int, int, int]:
    """Caught secrets, secret entries, altered near-misses, near-misses."""
    positives = sum(tally.secrets.values())
    return (positives - sum(tally.missed.values()), positives, len(tally.altered_ids),
            tally.near_misses)


def markdown(scores: dict[str, Score], *, header: str, speeds: tuple[float, float]) -> str:
    """The BENCHMARKS.md section: both splits' figures, the speed, where they were measured."""
    rows = []
    for split, tally in scores.items():
        caught, positives, altered, near_misses = rates(tally)
        missed = ", ".join(f"{kind} {n}/{tally.secrets[kind]}"
                           for kind, n in sorted(tally.missed.items())) or "none"
        rows.append(f"| {split} | {caught}/{positives} = {caught / max(positives, 1):.1%} | "
                    f"{altered}/{near_misses} = {altered / max(near_misses, 1):.1%} | {missed} |")
    return "\n".join([
        "## Redaction (issue 14)", "", header, "",
        "`python -m bench.bench_redaction --markdown`. Recall: secret entries whose every secret "
        "is gone from the text and from every tag; alteration: near-misses (commit ids, digests, "
        "integrity hashes, UUIDs, fingerprints, base64 images, placeholders, code) changed at all. "
        "Rules were written against `tune`; `heldout` is scored, never read; `fresh` and `unseen` "
        "(fresh.jsonl, unseen.jsonl), later sets written without reading the rules, were each "
        "scored once held out and are now tuned on.", "",
        "| split | recall | near-misses altered | missed kinds |", "|---|---|---|---|", *rows, "",
        f"Speed (CPU time, one core): {speeds[0]:.0f} µs per 1,000 characters for a "
        f"2,000-character prompt without secrets ({speeds[0] * 2 / 1000:.2f} ms a prompt); "
        f"{speeds[1]:.0f} µs per 1,000 characters over the tune texts, short texts full of "
        "secrets where every gate opens.",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--fresh", type=Path, default=FRESH,
                        help="the fresh corpus (split fresh), scored with the corpus")
    parser.add_argument("--split", choices=SPLITS, help="report one split only (tune while tuning)")
    parser.add_argument("--markdown", action="store_true", help="print the BENCHMARKS.md section")
    args = parser.parse_args()
    files = [args.corpus, *(path for path in (args.fresh, UNSEEN, UNSEEN3) if path.exists())]
    raw = b"\n".join(path.read_bytes() for path in files)
    entries = [json.loads(line) for line in raw.splitlines() if line.strip()]
    header = (f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; git {git_sha()}; machine: "
              f"{platform.machine()} {platform.system()} {os.cpu_count()} CPUs, "
              f"python {platform.python_version()}; corpus: "
              f"{'+'.join(path.name for path in files)} sha256 "
              f"{hashlib.sha256(raw).hexdigest()[:12]}, {len(entries)} entries")
    scores = {split: tally for split, tally in score(entries).items()
              if args.split in (None, split)}
    speeds = speed(), corpus_speed(entries)
    if args.markdown:
        print(markdown(scores, header=header, speeds=speeds))
        return
    print(header)
    print(f"speed: {speeds[0]:.0f} µs CPU per 1k chars (a 2,000-char prompt without secrets), "
          f"{speeds[1]:.0f} µs CPU per 1k chars (tune texts)")
    report(scores)


if __name__ == "__main__":
    main()
