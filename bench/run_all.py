"""Run every benchmark, write bench/results.json and the tables of BENCHMARKS.md.

Run: python -m bench.run_all [--quick: skip the benchmarks that start daemons]
                            [--memlane PATH: the CLI the hook benchmark runs]   (`make bench`)

Each benchmark module with a ``measure()`` returns :class:`bench.report.Figure` rows
(bench_peer and bench_saturation start daemons, and bench_peer needs the peer's venv: see its
docstring; without it the peer figures are left out and the reason printed); the others
(bench_embed, bench_ingest, bench_hooks, bench_restart at 100k, bench_locomo) print their
own tables and run as subprocesses, their output kept in results.json and their figures in
the table (a benchmark that failed or handed over no figure is named under it). BENCHMARKS.md
keeps its prose: only the text between ``<!-- bench:table -->`` and ``<!-- /bench:table -->``
is replaced. Before each benchmark the runner waits (up to a minute) until the CPUs stay 90%
idle over 2 s, so that none is measured while the one before winds down.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import bench_log, bench_peer, bench_saturation, bench_search, bench_usage
from bench.report import (
    QUIET, Figure, load_average, machine, print_machine, read_figures, wait_quiet)

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results.json"
BENCHMARKS = ROOT.parent / "BENCHMARKS.md"
START, END = "<!-- bench:table -->", "<!-- /bench:table -->"
# Benchmarks run in a process of their own: (module, arguments). Each prints its own table
# and hands its targets over in a figures file.
PRINTING = (("bench.bench_embed", ()), ("bench.bench_ingest", ()),
            ("bench.bench_hooks", ()), ("bench.bench_restart", ("--direct", "100000")),
            ("bench.bench_locomo", ()))


def run_printing(module: str, arguments: tuple[str, ...]) -> tuple[dict[str, Any], list[Figure]]:
    """A benchmark that prints its own table: its output, the load average around it, and its
    figures (none when it failed: its exit code and error stay in results.json)."""
    before = load_average()
    with tempfile.TemporaryDirectory() as scratch:
        handed = Path(scratch) / "figures.json"
        done = subprocess.run([sys.executable, "-m", module, *arguments, "--figures",
                               str(handed)], capture_output=True, text=True, check=False,
                              cwd=ROOT.parent)
        found = read_figures(handed) if done.returncode == 0 and handed.exists() else []
    print(done.stdout, end="")
    if done.returncode or not found:
        print(f"{module} exited {done.returncode} with {len(found)} figures:"
              f" {done.stderr[-2000:]}", file=sys.stderr)
    return ({"module": module, "arguments": list(arguments), "exit": done.returncode,
             "figures": len(found),
             "output": done.stdout, "error": done.stderr[-2000:], "load_before": before,
             "load_after": load_average()}, found)


def settle(name: str) -> dict[str, Any]:
    """Let what the benchmark before left running wind down (see :func:`wait_quiet`); how
    idle the CPUs were when ``name`` started, and after how long."""
    started = time.monotonic()
    share = wait_quiet()
    waited = time.monotonic() - started
    print(f"-- {name}: CPUs {share:.0%} idle after {waited:.0f} s of waiting", flush=True)
    return {"bench": name, "idle": round(share, 3), "waited_s": round(waited, 1)}


def table(figures: list[Figure]) -> str:
    lines = ["| bench | figure | value | floor / baseline (same run) | ratio | target | met | load |",
             "|---|---|---:|---|---:|---|---|---:|"]
    for f in figures:
        base = "" if f.baseline is None else f"{f.baseline:g} ({f.baseline_name})"
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
        met = {True: "met", False: "**missed**", None: ""}[f.met]
        lines.append(f"| {f.bench} | {f.name} | {f.value:g} {f.unit} | {base} | {ratio} |"
                     f" {f.target} | {met} | {f.load:.1f} |")
    return "\n".join(lines)


def write_tables(facts: dict[str, Any], figures: list[Figure], failed: list[str],
                 settled: Sequence[dict[str, Any]] = ()) -> None:
    """The table between the markers of BENCHMARKS.md, naming under it what failed and what
    started before the CPUs were quiet (``settled``: :func:`settle`'s records)."""
    text = BENCHMARKS.read_text()
    body = (f"Measured {facts['date']} on {facts['cpu']}, {facts['cores']} cores,"
            f" {facts['memory_gib']} GiB, Python {facts['python']}, git {facts['git_sha']};"
            f" load average at start {facts['load_average']}.\n\n{table(figures)}")
    if failed:
        body += ("\n\nNot measured in this run (failed: see bench/results.json):"
                 f" {', '.join(failed)}.")
    if busy := [s for s in settled if s["idle"] < QUIET]:
        body += ("\n\nStarted before the CPUs were quiet (idle share over 2 s, after a minute's"
                 " wait): " + ", ".join(f"{s['bench']} ({s['idle']:.0%})" for s in busy) + ".")
    block = f"{START}\n{body}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## All figures: `make bench` (bench/run_all.py)\n\n" + block + "\n"
    BENCHMARKS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true",
                        help="only the in-process benchmarks (no daemon, no subprocess)")
    parser.add_argument("--memlane", help="the memlane executable of the hook benchmark's CLI"
                                          " rows (default: this environment's)")
    args = parser.parse_args()
    print_machine()
    facts = machine()
    figures: list[Figure] = []
    settled = []
    for bench in (bench_log, bench_search, bench_usage,
                  *(() if args.quick else (bench_peer, bench_saturation))):
        settled.append(settle(bench.__name__))
        figures += bench.measure()
    printed = []
    for module, arguments in () if args.quick else PRINTING:
        if module == "bench.bench_hooks" and args.memlane:
            arguments = (*arguments, "--memlane", args.memlane)
        settled.append(settle(module))
        output, found = run_printing(module, arguments)
        printed.append(output)
        figures += found
    RESULTS.write_text(json.dumps({"machine": facts, "figures": [f.as_dict() for f in figures],
                                   "settled": settled, "printed": printed}, indent=2) + "\n")
    write_tables(facts, figures, [p["module"] for p in printed if p["exit"] or not p["figures"]],
                 settled)
    print(f"wrote {RESULTS} and the tables of {BENCHMARKS}")


if __name__ == "__main__":
    main()
