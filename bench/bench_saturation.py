"""Saturation throughput on a fixed request mix, 60% of it, bulk clients beside an owner, RSS.

Run: python -m bench.bench_saturation [--memories 3000] [--projects 5] [--seconds 8]
                                      [--levels 1,2,4,8,16,32] [--steady 20] [--clients 16]
                                      [--hooks 100] [--settle 60]

A real daemon on the offline model holds ``--memories`` memories over ``--projects`` projects
(bench_load's fill; each project a directory with ``.git``). The fixed mix, in turn, over the
projects: store one memory (``POST /v1/memories``), search (``POST /v1/search``), the
UserPromptSubmit hook (``POST /hooks/UserPromptSubmit``, 300-character prompts, cwd in a project)
and a 1-text ``POST /v1/embeddings``; every request on a new TCP connection, as Claude Code
sends hooks.

1. Saturation: closed loop, ``--levels`` concurrent clients, ``--seconds`` each; the ramp stops
   when throughput stops rising (two levels in a row under 1.05x the best so far); saturation
   is the best level's throughput.
2. Steady load at 60% of it: requests started at a fixed rate (open loop, so a slow answer
   does not slow the sender) for ``--steady`` seconds: errors, p50/p99 per kind.
3. ``--clients`` bulk clients send embedding batches of 32 and stores back to back (bench_load's
   BulkClients) while one owner sends ``--hooks`` hooks from a project: hook p50/p99.
4. RSS: warmed up and idle before the load (after the fill, one search per project, then
   ``--idle`` quiet seconds; the same daemon, not a restarted one), and ``--settle`` seconds
   after the load ends; their ratio.

Issue 16's targets: at 60%, 0 errors and store/search/hook p50 <= 30 ms; under bulk clients,
hook p50 <= 50 ms and p99 <= 200 ms; RSS within 1.3x of the idle figure.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.bench_embed import Daemon, running_daemon
from bench.bench_load import TOPICS
from bench.bench_load import fill, hook_body, hooks_beside_bulk, post
from bench.report import Figure, load_average, print_machine

KINDS = ("store", "search", "hook", "embed")
Request = tuple[str, dict[str, Any]]


class Mix:
    """The fixed request mix: request ``n`` is kind ``KINDS[n % 4]`` in project ``n // 4``."""

    def __init__(self, projects: list[Path]) -> None:
        self.projects = projects
        self._numbers = itertools.count()
        self._lock = threading.Lock()

    def next(self) -> tuple[str, Request]:
        with self._lock:
            n = next(self._numbers)
        kind = KINDS[n % len(KINDS)]
        project = self.projects[(n // len(KINDS)) % len(self.projects)]
        topic = TOPICS[n % len(TOPICS)]
        requests: dict[str, Request] = {
            "store": ("/v1/memories", {"text": f"saturation note {n}: the {topic} needs a retry",
                                       "project": str(project)}),
            "search": ("/v1/search", {"query": f"why does the {topic} break after the upgrade",
                                      "project": str(project)}),
            "hook": ("/hooks/UserPromptSubmit", hook_body(n, project)),
            "embed": ("/v1/embeddings", {"input": f"one short text about the {topic}"})}
        return kind, requests[kind]


@dataclass
class Tally:
    """Latencies and failures per kind, shared by the sending threads."""

    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, daemon: Daemon, kind: str, request: Request,
             started: float | None = None) -> None:
        """One request; its latency counts from ``started`` (when it was due) if given."""
        started = time.perf_counter() if started is None else started
        try:
            status, _ = post(daemon, *request)
        except (OSError, http.client.HTTPException) as exc:
            status, error = 0, type(exc).__name__
        else:
            error = "" if status == 200 else str(status)
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.ms[kind].append(elapsed)
            if error:
                self.errors[f"{kind} {error}"] += 1

    @property
    def done(self) -> int:
        return sum(len(samples) for samples in self.ms.values())


def closed_loop(daemon: Daemon, mix: Mix, clients: int, seconds: float) -> tuple[float, Tally]:
    """Requests per second with ``clients`` each sending the next request as one answers."""
    tally, stop = Tally(), threading.Event()

    def client() -> None:
        while not stop.is_set():
            tally.send(daemon, *mix.next())

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return tally.done / (time.perf_counter() - started), tally


def saturation(daemon: Daemon, mix: Mix, levels: list[int], seconds: float) -> float:
    """The best throughput over a ramp that stops when two levels in a row no longer raise it
    by 5% (one level alone is too noisy on a shared machine)."""
    best, flat = 0.0, 0
    for clients in levels:
        rate, tally = closed_loop(daemon, mix, clients, seconds)
        errors = sum(tally.errors.values())
        print(f"  {clients:3d} clients: {rate:7.1f} requests/s, {errors} errors,"
              f" load average {load_average()}")
        flat = flat + 1 if rate < 1.05 * best else 0
        best = max(best, rate)
        if flat == 2:
            break
    return best


def open_loop(daemon: Daemon, mix: Mix, rate: float, seconds: float) -> Tally:
    """Start a request every 1/rate s whatever the answers take (no coordinated omission)."""
    tally = Tally()
    count = int(rate * seconds)
    with ThreadPoolExecutor(max_workers=128) as pool:
        started = time.perf_counter()
        for i in range(count):
            due = started + i / rate
            if (delay := due - time.perf_counter()) > 0:
                time.sleep(delay)
            pool.submit(tally.send, daemon, *mix.next(), due)
    return tally


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[round(q * (len(ordered) - 1))]


def warm_up(daemon: Daemon, projects: list[Path]) -> None:
    """Model loaded and one search per project: the issue's warmed-up idle daemon."""
    for project in projects:
        status, _ = post(daemon, "/v1/search", {"query": "warm up", "project": str(project)})
        assert status == 200, status


@dataclass
class Result:
    saturation: float = 0.0
    steady: Tally = field(default_factory=Tally)
    steady_rate: float = 0.0
    hooks: list[float] = field(default_factory=list)
    bulk: str = ""
    rss_idle: float = 0.0
    rss_after: float = 0.0


def run(args: argparse.Namespace) -> Result:
    result = Result()
    env = {} if args.max_batch is None else {"MEMLANE_MAX_BATCH": str(args.max_batch)}
    with tempfile.TemporaryDirectory(prefix="mlsat-") as root, running_daemon(**env) as daemon:
        projects = [Path(root) / f"project{p}" for p in range(args.projects)]
        for project in projects:
            (project / ".git").mkdir(parents=True)
        started = time.perf_counter()
        fill(daemon, args.memories, projects)
        print(f"filled and embedded {args.memories} memories"
              f" in {time.perf_counter() - started:.0f} s")
        warm_up(daemon, projects)
        time.sleep(args.idle)  # past the daemon's give-back of freed memory after a request
        result.rss_idle = daemon.rss_mib()
        print(f"warmed-up idle RSS {result.rss_idle:.0f} MiB, load average {load_average()}")
        mix = Mix(projects)
        print("saturation ramp (closed loop, fixed mix store/search/hook/embed):")
        result.saturation = saturation(daemon, mix, args.levels, args.seconds)
        result.steady_rate = 0.6 * result.saturation
        result.steady = open_loop(daemon, mix, result.steady_rate, args.steady)
        print(f"steady load at {result.steady_rate:.1f} requests/s done,"
              f" load average {load_average()}")
        result.hooks, result.bulk = hooks_beside_bulk(
            daemon, projects[0], bulk_clients=args.clients, bulk_project=projects[-1],
            runs=args.hooks)
        time.sleep(args.settle)
        result.rss_after = daemon.rss_mib()
    return result


def report(result: Result, args: argparse.Namespace) -> None:
    steady = result.steady
    print(f"\nsaturation: {result.saturation:.1f} requests/s (fixed mix)")
    print(f"at 60% ({result.steady_rate:.1f} requests/s for {args.steady:g} s, open loop):"
          f" {steady.done} requests, {sum(steady.errors.values())} errors"
          f" {dict(steady.errors) if steady.errors else ''}")
    for kind in KINDS:
        samples = steady.ms[kind]
        if samples:
            met = "met" if pct(samples, 0.5) <= 30 else "MISSED"
            verdict = "" if kind == "embed" else f"  (p50 target <= 30 ms: {met})"
            print(f"  {kind:<7} n={len(samples):5d}  p50 {pct(samples, 0.5):7.1f} ms"
                  f"  p99 {pct(samples, 0.99):7.1f} ms{verdict}")
    p50, p99 = pct(result.hooks, 0.5), pct(result.hooks, 0.99)
    print(f"owner's hook beside {args.clients} bulk clients: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
          f" (targets <= 50 / <= 200 ms: {'met' if p50 <= 50 and p99 <= 200 else 'MISSED'})")
    print(f"  meanwhile: {result.bulk}; load average {load_average()}")
    ratio = result.rss_after / result.rss_idle
    print(f"RSS: warmed-up idle {result.rss_idle:.0f} MiB, {args.settle:g} s after the load"
          f" {result.rss_after:.0f} MiB, ratio {ratio:.2f}"
          f" (target <= 1.3: {'met' if ratio <= 1.3 else 'MISSED'})")


def figures(result: Result) -> list[Figure]:
    steady, load = result.steady, load_average()
    rows = [Figure("saturation", "throughput, fixed mix", round(result.saturation, 1), "req/s",
                   load=load),
            Figure("saturation", "errors at 60%", sum(steady.errors.values()), "", target="== 0",
                   met=not steady.errors, load=load)]
    rows += [Figure("saturation", f"{kind} p50 at 60%", round(pct(steady.ms[kind], 0.5), 1), "ms",
                    target="<= 30", met=pct(steady.ms[kind], 0.5) <= 30, load=load)
             for kind in ("store", "search", "hook") if steady.ms[kind]]
    rows += [Figure("saturation", f"{kind} p99 at 60%", round(pct(steady.ms[kind], 0.99), 1),
                    "ms", load=load) for kind in KINDS if steady.ms[kind]]
    hook50, hook99 = pct(result.hooks, 0.5), pct(result.hooks, 0.99)
    rows += [Figure("saturation", "owner hook p50, bulk clients", round(hook50, 1), "ms",
                    target="<= 50", met=hook50 <= 50, load=load),
             Figure("saturation", "owner hook p99, bulk clients", round(hook99, 1), "ms",
                    target="<= 200", met=hook99 <= 200, load=load),
             Figure("saturation", "RSS after load", round(result.rss_after), "MiB",
                    baseline=round(result.rss_idle), baseline_name="warmed-up idle, same run",
                    target="ratio <= 1.3", met=result.rss_after <= 1.3 * result.rss_idle,
                    load=load)]
    return rows


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=3000)
    parser.add_argument("--projects", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8, help="per ramp level")
    parser.add_argument("--levels", type=lambda s: [int(n) for n in s.split(",")],
                        default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--steady", type=float, default=20, help="seconds at 60%%")
    parser.add_argument("--clients", type=int, default=16, help="bulk clients")
    parser.add_argument("--hooks", type=int, default=100, help="owner's hooks beside them")
    parser.add_argument("--idle", type=float, default=12,
                        help="seconds idle before the warmed-up RSS")
    parser.add_argument("--max-batch", type=int, help="the daemon's max_batch (default: its own)")
    parser.add_argument("--settle", type=float, default=60,
                        help="seconds after the load before the second RSS")
    return parser.parse_args(argv)


def measure(argv: list[str] | None = None) -> list[Figure]:
    """Figures for bench.run_all at the default size."""
    args = parse(argv or [])
    result = run(args)
    report(result, args)
    return figures(result)


def main() -> None:
    args = parse()
    print_machine()
    result = run(args)
    report(result, args)
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
