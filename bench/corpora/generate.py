"""Deterministic generator of the fixed benchmark corpora (issue 16).

Run: python -m bench.corpora.generate OUT_DIR [NAME ...] [--manifest]

Writes each corpus as JSONL files in OUT_DIR/NAME/ and prints line counts and sha256. With
``--manifest`` it also rewrites bench/corpora/MANIFEST.json from what it wrote: do that only
when the corpora are meant to change, in the commit that changes them.

Corpora:

- ``zipf-100k``: 100,000 memories over five projects (40/25/15/12/8 %) and 200 queries, 40 per
  project, each with the indices (0-based lines of memories.jsonl) of its relevant memories.
- ``hooks-20k``: 20,000 memories over the same projects, and 200 prompts: 50 of about 300 and
  50 of about 2,000 characters from the largest project, the same from a project with no
  memories.

memories.jsonl lines are ``{"text", "project", "kind", "tags"}``, queries.jsonl lines
``{"query", "project", "relevant"}``, prompts.jsonl lines ``{"prompt", "project", "size"}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

from bench.corpora import MANIFEST
from bench.corpora.memories import Draft, generate
from bench.corpora.queries import prompts, queries
from bench.corpora.vocab import NEW_PROJECT, PROJECTS

Files = dict[str, list[dict[str, object]]]


def records(memories: list[tuple[str, Draft]]) -> list[dict[str, object]]:
    return [{"text": m.text, "project": project, "kind": m.kind, "tags": list(m.tags)}
            for project, m in memories]


def zipf_100k() -> Files:
    memories = generate(random.Random(16), PROJECTS, 100_000)
    return {"memories.jsonl": records(memories),
            "queries.jsonl": queries(random.Random(17), memories, PROJECTS, 40)}


def hooks_20k() -> Files:
    memories = generate(random.Random(20), PROJECTS, 20_000)
    return {"memories.jsonl": records(memories),
            "prompts.jsonl": prompts(random.Random(21), (PROJECTS[0], NEW_PROJECT),
                                     (300, 2000), 50)}


CORPORA: dict[str, Callable[[], Files]] = {"zipf-100k": zipf_100k, "hooks-20k": hooks_20k}


def write(name: str, directory: Path) -> dict[str, dict[str, object]]:
    """Generate corpus ``name`` into ``directory``; its manifest entry (lines, sha256 a file)."""
    directory.mkdir(parents=True, exist_ok=True)
    entry = {}
    for filename, lines in CORPORA[name]().items():
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        (directory / filename).write_bytes(data)
        entry[filename] = {"lines": len(lines), "sha256": hashlib.sha256(data).hexdigest()}
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("names", nargs="*", help=f"default: all of {', '.join(CORPORA)}")
    parser.add_argument("--manifest", action="store_true", help="rewrite MANIFEST.json")
    args = parser.parse_args()
    if unknown := set(args.names) - set(CORPORA):
        parser.error(f"unknown corpus {', '.join(sorted(unknown))}")
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    for name in args.names or CORPORA:
        started = time.perf_counter()
        manifest[name] = write(name, args.out / name)
        print(f"{name}: {time.perf_counter() - started:.1f} s")
        for filename, facts in manifest[name].items():
            print(f"  {filename}: {facts['lines']} lines, sha256 {facts['sha256']}")
    if args.manifest:
        MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
