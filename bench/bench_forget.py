"""Forget benchmark: wall time of ``memlane forget`` on a large log, and the event-loop stall
it causes, measured as the worst latency of a concurrent ``GET /v1/health`` loop (target: no
stall over 50 ms).

Run: python -m bench.bench_forget [--memories 100000]

The log is written directly (``Stored`` + ``Embedded`` with random vectors of the model's
pipeline, so the daemon has no embedding backlog), plus recalls of the forgotten memory; then
a real daemon starts on it (a full replay) and forgets that memory while a thread polls its
health; then the daemon restarts from its projections, as a user's would, and forgets three
more. The worst stall over all four is the figure.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from memlane.cli.client import Client
from memlane.daemon.adapters.paths import Paths, resolve_paths
from memlane.daemon.domain.storing import content_hash
from memlane.events.log import EventLog
from memlane.events.model import Embedded, Event, Recalled, Stored

from bench.bench_embed import wait_ready
from bench.report import print_machine

SECRET = "the forgotten bench memory holds walrus-cobalt-5531"


def start(paths: Paths, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(paths.home / "stderr.log", "ab") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "memlane.daemon"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    wait_ready(process, paths, timeout=1800)
    return process


def probe_pipeline(paths: Paths, env: dict[str, str]) -> tuple[str, str, int]:
    """The active model, pipeline and dims, from one real embedding (then the log is reset)."""
    process = start(paths, env)
    client = Client(paths, timeout=60)
    memory = client.request("POST", "/v1/memories", {"text": "probe"})["id"]
    while client.request("GET", "/v1/status")["embedding_backlog"]:
        time.sleep(0.05)
    event = next(e for e in client.request("GET", f"/v1/memories/{memory}/history")["events"]
                 if e["type"] == "embedded")
    process.send_signal(signal.SIGTERM)
    process.wait()
    for name in ("log", "projections"):
        shutil.rmtree(paths.home / name, ignore_errors=True)
    return event["model"], event["pipeline"], int(event["dims"])


def fill(log_dir: Path, count: int, model: str, pipeline: str, dims: int) -> int:
    """``count`` memories with vectors; returns the id of the one to forget."""
    log = EventLog.open(log_dir)
    rng = np.random.default_rng(1)
    target = 0
    for begin in range(0, count, 1000):
        events: list[Event] = []
        for i in range(begin, min(begin + 1000, count)):
            text = SECRET if i == count // 2 else (
                f"memory {i}: the build cache must be cleared after upgrading {i % 97}")
            seq = log.last_seq + len(events) + 1
            target = seq if i == count // 2 else target
            events.append(Stored(id=seq, text=text, project=f"p{i % 5}", kind="note",
                                 content_hash=content_hash(text)))
            events.append(Embedded(memory=seq, vector=rng.standard_normal(dims).astype(
                "<f4").tobytes(), dims=dims, model=model, pipeline=pipeline))
        log.append(events)
    log.append([Recalled(memory=target, query=f"walrus cobalt question {n}", rank=0, score=0.9)
                for n in range(5)])
    log.close()
    return target


def watch_health(paths: Paths, stop: threading.Event, latencies: list[tuple[float, float]]
                 ) -> None:
    """(latency, wall-clock start) of each health request until ``stop``."""
    client = Client(paths, timeout=30)
    while not stop.is_set():
        began, wall = time.perf_counter(), time.time()
        client.request("GET", "/v1/health")
        latencies.append((time.perf_counter() - began, wall))


def measure_idle(paths: Paths, *, seconds: float) -> list[tuple[float, float]]:
    latencies: list[tuple[float, float]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch_health, args=(paths, stop, latencies))
    watcher.start()
    time.sleep(seconds)
    stop.set()
    watcher.join()
    return latencies


def summary(latencies: list[tuple[float, float]]) -> str:
    ordered = sorted(latency * 1000 for latency, _ in latencies)
    return (f"{len(ordered)} requests, p50 {ordered[len(ordered) // 2]:.1f} ms, "
            f"p99 {ordered[int(len(ordered) * 0.99)]:.1f} ms, worst {ordered[-1]:.1f} ms")


def forget_one(paths: Paths, memory: int, when: str) -> float:
    """Forget ``memory`` while a thread polls health; print both; the worst latency (ms)."""
    latencies: list[tuple[float, float]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch_health, args=(paths, stop, latencies))
    watcher.start()
    began = time.perf_counter()
    answer = Client(paths, timeout=1800).request("POST", f"/v1/memories/{memory}/forget")
    wall = time.perf_counter() - began
    stop.set()
    watcher.join()
    print(f"forget of memory {memory} ({when}): {wall:.2f} s wall, "
          f"{answer['segments_rewritten']} segments rewritten, scan "
          f"{answer['verify']['files_scanned']} files, {answer['verify']['needles']} needles, "
          f"{answer['verify']['matches']} matches")
    print(f"  health during it: {summary(latencies)}")
    for latency, at in sorted(latencies, reverse=True)[:3]:
        print(f"  {latency * 1000:.0f} ms at {datetime.datetime.fromtimestamp(at).time()}")
    return max(latency for latency, _ in latencies) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memories", type=int, default=100_000)
    args = parser.parse_args()
    print("memlane forget benchmark")
    print_machine()
    home = Path(tempfile.mkdtemp(prefix="mlf-", dir="/tmp"))
    paths = resolve_paths({"MEMLANE_HOME": str(home)})
    env = {**os.environ, "MEMLANE_HOME": str(home), "MEMLANE_PORT": "0"}
    try:
        model, pipeline, dims = probe_pipeline(paths, env)
        target = fill(paths.log_dir, args.memories, model, pipeline, dims)
        began = time.perf_counter()
        process = start(paths, env)
        print(f"{args.memories:,} memories ({dims}-d vectors), start with full replay "
              f"{time.perf_counter() - began:.1f} s")
        baseline = summary(measure_idle(paths, seconds=3.0))
        print(f"health with no forget running (baseline, 3 s): {baseline}")
        worst = [forget_one(paths, target, "right after the full replay")]
        process.send_signal(signal.SIGTERM)
        process.wait()
        began = time.perf_counter()
        process = start(paths, env)
        print(f"restart from the projections {time.perf_counter() - began:.1f} s; health in "
              f"its first 3 s: {summary(measure_idle(paths, seconds=3.0))}")
        print(f"health after that (baseline, 3 s): {summary(measure_idle(paths, seconds=3.0))}")
        for i in (args.memories // 4, 3 * args.memories // 4, args.memories // 8):
            worst.append(forget_one(paths, 2 * i + 1, "after the restart"))
        print(f"worst stall over {len(worst)} forgets: {max(worst):.1f} ms "
              f"({'within' if max(worst) <= 50 else 'OVER'} the 50 ms target)")
        process.send_signal(signal.SIGTERM)
        process.wait()
        if os.environ.get("BENCH_FORGET_STEPS"):  # the daemon's step log, to place the stalls
            print("".join(line for line in (home / "stderr.log").read_text().splitlines(True)
                          if "forget_step" in line))
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
