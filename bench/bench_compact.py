"""Compaction benchmark: a year of a busy machine's history, compacted by a real daemon.

Prints the log's size by event kind before and after, the ratio (target: at least 5x), the
compaction's wall time, the worst latency of a request loop (``GET /v1/health`` and
``GET /v1/memories/{id}``) while it runs (target: no stall over 50 ms), and the time of a
backup (log and projections) and of a restore into a fresh directory.

After the daemon stops, the compacted log is replayed into fresh projections and compared with
the daemon's (every row of every table but those compaction may drop below its horizon, and
every vector, byte for byte).

Run: python -m bench.bench_compact [--memories 100000] [--days 365] [--prompts 300]

The history is written straight to the log (tests/history.py: stores, their vectors and
links, every prompt's shown set and recalls with the prompt as query, some uses, the daily
lifecycle events, forgets), with random unit vectors: the first half of the year with a
1024-d pipeline, then one switch to the daemon's own model (every live memory embedded again),
so the daemon starts with no embedding backlog. Projections are built before the daemon
starts, so its start replays nothing.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from memlane.cli.client import Client
from memlane.cli.restoring import restore
from memlane.daemon.adapters.paths import Paths, resolve_paths
from memlane.events.log import EventLog
from memlane.events.sizes import LogSizes
from memlane.projections import vector_store
from memlane.projections.catchup import Projections

from bench.bench_forget import probe_pipeline, start, summary
from bench.report import print_machine
from tests.history import generate, open_unsynced
from tests.projections.test_compaction import rows

MIB = 1024 * 1024


def by_kind(log_dir: Path) -> Counter[str]:
    """Bytes of the records of each kind (as encoded in the log)."""
    measured = LogSizes(log_dir).measure(lambda _record: "", datetime.datetime.now(datetime.UTC))
    return Counter(measured["by_kind"])


def replay_differences(paths: Paths, where: Path, horizon: int) -> list[str]:
    """What differs between the daemon's projections and a replay of the (compacted) log into
    fresh ones: the tables compared as tests/projections/test_compaction.py does, then every
    vector's bytes (the replay kept flat: no graph to build)."""
    log = EventLog.open(paths.log_dir)
    last = log.last_seq
    log.close()
    saved = vector_store.EXACT_BELOW
    vector_store.EXACT_BELOW = 10**12
    try:
        fresh = Projections(where / "replayed.sqlite3", where / "replayed.vectors")
        fresh.catch_up(paths.log_dir, last)
    finally:
        vector_store.EXACT_BELOW = saved
    live = Projections(paths.sqlite, paths.vectors)
    live.catch_up(paths.log_dir, last)
    replayed = rows(fresh, horizon)
    found = [f"table {name}" for name, table in rows(live, horizon).items()
             if replayed.get(name) != table]
    keys = list(range(1, last + 1))
    live_keys, live_rows = live.vectors.vectors(keys)
    fresh_keys, fresh_rows = fresh.vectors.vectors(keys)
    if live_keys != fresh_keys or live_rows.tobytes() != fresh_rows.tobytes():
        found.append(f"vectors ({len(live_keys):,} live, {len(fresh_keys):,} replayed)")
    live.close()
    fresh.close()
    return found


def log_bytes(log_dir: Path) -> int:
    return sum(p.stat().st_size for p in log_dir.glob("*.seg"))


def watch(paths: Paths, stop: threading.Event, ids: list[int],
          latencies: list[tuple[float, float]]) -> None:
    """Alternate health and memory reads until ``stop``; (latency, wall start) of each."""
    client = Client(paths, timeout=60)
    n = 0
    while not stop.is_set():
        began, wall = time.perf_counter(), time.time()
        if n % 2:
            client.request("GET", f"/v1/memories/{ids[n % len(ids)]}")
        else:
            client.request("GET", "/v1/health")
        latencies.append((time.perf_counter() - began, wall))
        n += 1


def while_watching(paths: Paths, ids: list[int], work: Any) -> tuple[Any, float,
                                                                     list[tuple[float, float]]]:
    latencies: list[tuple[float, float]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(paths, stop, ids, latencies))
    watcher.start()
    began = time.perf_counter()
    try:
        answer = work()
    finally:
        wall = time.perf_counter() - began
        stop.set()
        watcher.join()
    return answer, wall, latencies


def print_kinds(before: Counter[str], after: Counter[str]) -> None:
    print(f"  {'event kind':<17} {'before MiB':>11} {'after MiB':>11}")
    for kind in sorted(set(before) | set(after), key=lambda k: -before.get(k, 0)):
        print(f"  {kind:<17} {before.get(kind, 0) / MIB:>11.1f} {after.get(kind, 0) / MIB:>11.1f}")
    print(f"  {'(records)':<17} {sum(before.values()) / MIB:>11.1f} "
          f"{sum(after.values()) / MIB:>11.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--prompts", type=int, default=300, help="prompts a day")
    parser.add_argument("--segment-mib", type=int, default=64, help="segment size (small "
                        "runs: smaller, so that some segments are sealed)")
    args = parser.parse_args()
    print("memlane compaction benchmark")
    print_machine()
    root = Path(tempfile.mkdtemp(prefix="mlc-", dir="/tmp"))
    paths = resolve_paths({"MEMLANE_HOME": str(root / "home")})
    paths.home.mkdir()
    env = {**os.environ, "MEMLANE_HOME": str(paths.home), "MEMLANE_PORT": "0",
           "MEMLANE_JOBS_INTERVAL_S": "86400"}
    process = None
    try:
        model, pipeline, dims = probe_pipeline(paths, env)
        began = time.perf_counter()
        log = open_unsynced(paths.log_dir, args.segment_mib * MIB)
        start_day = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=args.days + 31)
        history = generate(log, days=args.days, stores=args.memories // args.days,
                           prompts=args.prompts, switch_at=args.days // 2, forgets=3,
                           start=start_day, models=(("qwen3", "qwen3:last:1024", 1024),
                                                    (model, pipeline, dims)))
        last_seq = log.last_seq
        log.close()
        os.sync()
        memories = len(history.projects)
        print(f"history: {memories:,} memories over {args.days} days, {args.prompts} prompts a "
              f"day, {last_seq:,} events, one switch 1024-d -> {dims}-d ({pipeline}); "
              f"written in {time.perf_counter() - began:.0f} s")
        before_kinds, before_bytes = by_kind(paths.log_dir), log_bytes(paths.log_dir)
        began = time.perf_counter()
        projections = Projections(paths.sqlite, paths.vectors)
        projections.catch_up(paths.log_dir, last_seq)
        projections.close()
        print(f"projections built in {time.perf_counter() - began:.0f} s")
        process = start(paths, env)
        ids = history.live[:: max(1, len(history.live) // 500)]
        _, _, idle = while_watching(paths, ids, lambda: time.sleep(3.0))
        print(f"request loop, idle (3 s): {summary(idle)}")
        client = Client(paths, timeout=3600)
        answer, wall, during = while_watching(
            paths, ids, lambda: client.request("POST", "/v1/compact", {}))
        worst = max(latency for latency, _ in during) * 1000
        after_kinds, after_bytes = by_kind(paths.log_dir), log_bytes(paths.log_dir)
        verdict = "met" if before_bytes >= 5 * after_bytes else "MISSED"
        print(f"log: {before_bytes / MIB:,.1f} MiB -> {after_bytes / MIB:,.1f} MiB, ratio "
              f"{before_bytes / after_bytes:.2f}x ({verdict} the 5x target); "
              f"{answer['segments_compacted']} of "
              f"{answer['segments_examined']} sealed segments compacted below seq "
              f"{answer['horizon']:,}")
        print_kinds(before_kinds, after_kinds)
        print(f"compaction: {wall:.1f} s wall ({answer['seconds']} s in the daemon)")
        print(f"request loop during compaction: {summary(during)} "
              f"({'within' if worst <= 50 else 'OVER'} the 50 ms target)")
        for latency, wall in sorted(during, reverse=True)[:3]:
            print(f"  {latency * 1000:.0f} ms at {datetime.datetime.fromtimestamp(wall).time()}")
        steps = [line for line in (paths.home / "stderr.log").read_text().splitlines()
                 if "compact_step" in line]  # to place the stalls among compaction's steps
        print("\n".join(f"  step: {line}" for line in steps[:3] + steps[-3:]))
        backup, backup_wall, _ = while_watching(paths, ids, lambda: client.request(
            "POST", "/v1/backup", {"dest": str(root / "backup"), "projections": True}))
        print(f"backup (log {backup['log_bytes'] / MIB:,.1f} MiB + projections): "
              f"{backup_wall:.1f} s")
        process.send_signal(signal.SIGTERM)
        process.wait()
        process = None
        began = time.perf_counter()
        differences = replay_differences(paths, root, answer["horizon"])
        verdict = "DIFFERENT: " + ", ".join(differences) if differences else \
            "identical to the daemon's, every table and vector"
        print(f"replay of the compacted log into fresh projections: {verdict} "
              f"({time.perf_counter() - began:.0f} s)")
        began = time.perf_counter()
        restored = restore(root / "backup", resolve_paths({"MEMLANE_HOME": str(root / "fresh")}),
                           ledger=None)
        print(f"restore into a fresh directory (with projections): "
              f"{time.perf_counter() - began:.1f} s, {restored['memories']}")
        print(f"load at the end {os.getloadavg()[0]:.2f}")
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
