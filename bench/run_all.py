"""Run every benchmark, write bench/results.json and the tables of BENCHMARKS.md.

Run: python -m bench.run_all [--quick: skip the benchmarks that start daemons]
                            [--memlane PATH: the CLI the hook benchmark runs]   (`make bench`)

Every benchmark runs in a process of its own. A module with a ``measure()`` (bench_log,
bench_search, bench_usage, bench_peer and bench_saturation, which start daemons; bench_peer
needs the peer's venv, see its docstring) returns :class:`bench.report.Figure` rows; the
others (bench_embed, bench_ingest, bench_hooks, bench_restart at 100k, bench_locomo) print
their own tables and write their figures to ``--figures``. Each one's output is kept in
results.json and its figures in the table (a benchmark that failed or handed over no figure
is named under it). BENCHMARKS.md keeps its prose: only the text between
``<!-- bench:table -->`` and ``<!-- /bench:table -->`` is replaced. Before each benchmark
the runner waits (up to a minute) until the CPUs stay 90% idle over 2 s, so that none is
measured while the one before winds down.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report import (
    QUIET, Figure, load_average, machine, print_machine, read_figures, wait_quiet, write_figures)

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results.json"
BENCHMARKS = ROOT.parent / "BENCHMARKS.md"
START, END = "<!-- bench:table -->", "<!-- /bench:table -->"
# Every benchmark runs in a process of its own, so that none inherits the heap or the threads
# of the one before (search at 100k read 8.6 and 11.1 ms p50 run after the log benchmark in
# one process, 7.7 and 8.6 ms alone). Those with a ``measure()`` run through ``--measure``;
# the others take ``--figures`` themselves. In this order:
MEASURED = ("bench.bench_log", "bench.bench_search", "bench.bench_usage", "bench.bench_peer",
            "bench.bench_saturation")
QUICK = MEASURED[:3]  # no daemon started
PRINTING = (("bench.bench_embed", ()), ("bench.bench_ingest", ()),
            ("bench.bench_hooks", ()), ("bench.bench_restart", ("--direct", "100000")),
            ("bench.bench_locomo", ()))


def run_benchmark(module: str, arguments: tuple[str, ...]) -> tuple[dict[str, Any], list[Figure]]:
    """One benchmark in a process of its own: its output, the load average around it, and its
    figures (none when it failed: its exit code and error stay in results.json)."""
    before = load_average()
    command = ["bench.run_all", "--measure", module] if module in MEASURED else [module]
    with tempfile.TemporaryDirectory() as scratch:
        handed = Path(scratch) / "figures.json"
        done = subprocess.run([sys.executable, "-m", *command, *arguments, "--figures",
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


def measure_one(module: str, figures: Path) -> None:
    """Run ``module.measure()`` (in this process) and hand its figures over in ``figures``."""
    write_figures(figures, importlib.import_module(module).measure())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true",
                        help="only the benchmarks that start no daemon: log, search, usage")
    parser.add_argument("--memlane", help="the memlane executable of the hook benchmark's CLI"
                                          " rows (default: this environment's)")
    parser.add_argument("--measure", help="(internal) run this module's measure() alone")
    parser.add_argument("--figures", type=Path, help="(internal) where --measure writes")
    args = parser.parse_args()
    if args.measure:
        measure_one(args.measure, args.figures)
        return
    print_machine()
    facts = machine()
    figures: list[Figure] = []
    settled = []
    printed = []
    steps = [(module, ()) for module in (QUICK if args.quick else MEASURED)]
    for module, arguments in [*steps, *(() if args.quick else PRINTING)]:
        if module == "bench.bench_hooks" and args.memlane:
            arguments = (*arguments, "--memlane", args.memlane)
        settled.append(settle(module))
        output, found = run_benchmark(module, arguments)
        printed.append(output)
        figures += found
    RESULTS.write_text(json.dumps({"machine": facts, "figures": [f.as_dict() for f in figures],
                                   "settled": settled, "printed": printed}, indent=2) + "\n")
    write_tables(facts, figures, [p["module"] for p in printed if p["exit"] or not p["figures"]],
                 settled)
    print(f"wrote {RESULTS} and the tables of {BENCHMARKS}")


if __name__ == "__main__":
    main()
