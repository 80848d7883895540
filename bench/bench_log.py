"""Event log benchmark: acknowledged appends/s (group commit) and projection replay events/s.

Run: python -m bench.bench_log [--events 100000]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import anyio

from memlane.daemon.domain.admission import AdmissionIndex
from memlane.daemon.domain.storing import StoreRequest, decide_store
from memlane.daemon.runtime.writer import Writer
from memlane.events.log import EventLog
from memlane.events.model import Record
from memlane.projections.catchup import Projections


async def _ignore(records: list[Record]) -> None:
    """Nothing consumes the commits: the benchmark measures the log alone."""


async def appends_per_second(directory: Path, writers: int, seconds: float) -> tuple[float, float]:
    """Each writer stores one memory at a time and waits for its ack; returns (acks/s, batch)."""
    log = EventLog.open(directory)
    writer = Writer(log, AdmissionIndex(), on_commit=_ignore)
    acked = 0
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal acked
        i = 0
        while time.perf_counter() < deadline:
            request = StoreRequest(text=f"writer {n} memory {i} about a cache bug", project="bench",
                                   kind="note")
            await writer.submit(lambda view, seq, r=request: decide_store(view, r, seq))
            acked += 1
            i += 1

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        async with anyio.create_task_group() as clients:
            for n in range(writers):
                clients.start_soon(client, n)
        tg.cancel_scope.cancel()
    elapsed = time.perf_counter() - start
    log.close()
    return acked / elapsed, acked / max(writer.batches, 1)


def replay_per_second(log_dir: Path, work: Path) -> tuple[int, float]:
    log = EventLog.open(log_dir)
    last = log.last_seq
    log.close()
    projections = Projections(work / "replay.sqlite3", work / "replay.usearch")
    start = time.perf_counter()
    count = projections.rebuild(log_dir, last)
    elapsed = time.perf_counter() - start
    projections.close()
    return count, count / elapsed


def fill(log_dir: Path, events: int) -> None:
    log = EventLog.open(log_dir)
    view = AdmissionIndex()
    for start in range(0, events, 1000):
        batch = []
        for i in range(start, min(start + 1000, events)):
            request = StoreRequest(text=f"memory {i}: the build cache must be cleared after "
                                        f"upgrading the toolchain version {i % 97}",
                                   project=f"project-{i % 5}", kind="note")
            new, _ = decide_store(view, request, log.last_seq + len(batch) + 1)
            batch.extend(new)
        log.append(batch)
    log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        base = Path(tmp)
        for writers in (1, 32):
            rate, batch = anyio.run(appends_per_second, base / f"w{writers}", writers, args.seconds)
            print(f"appends, {writers:>2} concurrent writers: {rate:>9,.0f} acked/s"
                  f"  (mean batch {batch:.1f} per fdatasync)")
        fill(base / "replay-log", args.events)
        count, rate = replay_per_second(base / "replay-log", base)
        print(f"replay of {count:,} Stored events into SQLite + vectors: {rate:>9,.0f} events/s")


if __name__ == "__main__":
    main()
