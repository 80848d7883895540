"""Sync benchmark on loopback: events/s published and applied end to end between two real
daemons through a real nats-server, and the catch-up time of a device that joins late.

Run: python -m bench.bench_sync [--backlog 100000] [--stream 5000]

1. Device A's log is written directly with ``--backlog`` memories (``Stored`` + ``Embedded``
   with random vectors of the active pipeline, so A has no embedding backlog). A starts with
   sync enabled: its outbox publishes the backlog (publish rate).
2. Device B starts on an empty state directory and catches up: every event applied (through
   its writer: fsync, projections) is counted; B embeds what it receives meanwhile, as a real
   device would, and that competes for the CPU.
3. Both running, ``--stream`` new memories are imported on A in batches of 500: the time from
   the first import to B having applied the last is the end-to-end rate (A and B embed the new
   texts meanwhile).

The publish and catch-up times run from the daemon's ``sync_connected`` log line to the moment
its status shows the last event published (applied); the status is polled every 50 ms.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from memlane.cli.client import Client
from memlane.daemon.adapters.paths import Paths, resolve_paths
from memlane.daemon.adapters.sync_config import SyncConfig, write_sync_config
from memlane.daemon.domain.storing import content_hash
from memlane.events.log import EventLog
from memlane.events.model import Embedded, Event, Stored

from bench.bench_forget import probe_pipeline, start
from bench.report import print_machine

PROJECT_ID = "cbench"
# Notes of 7 words drawn from the bench corpus's ~580-word vocabulary: far apart for the model,
# so the receiving device's linker does not turn each one into a dozen links.
WORDS = sorted({w.lower() for w in re.findall(r"[A-Za-z]{4,}", (
    Path(__file__).parent / "corpora" / "vocab.py").read_text())})


def note(kind: str, i: int) -> str:
    return f"{kind} {i}: " + " ".join(random.Random(f"{kind}{i}").sample(WORDS, 7))


def fill(log_dir: Path, project: str, count: int, model: str, pipeline: str, dims: int) -> None:
    log = EventLog.open(log_dir)
    rng = np.random.default_rng(1)
    for begin in range(0, count, 1000):
        events: list[Event] = []
        for i in range(begin, min(begin + 1000, count)):
            text = note("backlog", i)
            seq = log.last_seq + len(events) + 1
            events.append(Stored(id=seq, text=text, project=project, kind="note",
                                 content_hash=content_hash(text)))
            events.append(Embedded(memory=seq, vector=rng.standard_normal(dims).astype(
                "<f4").tobytes(), dims=dims, model=model, pipeline=pipeline))
        log.append(events)
    log.close()


def nats_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary = Path(sys.executable).with_name("nats-server")
    process = subprocess.Popen([str(binary if binary.is_file() else "nats-server"), "-js", "-a",
                                "127.0.0.1", "-p", str(port), "-sd", str(root / "nats")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, f"nats://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("nats-server did not start")


def device(root: Path, name: str, url: str) -> tuple[Paths, dict[str, str], str]:
    home = root / name
    project = str(root / f"{name}-repo")
    paths = resolve_paths({"MEMLANE_HOME": str(home)})
    write_sync_config(home, SyncConfig(url=url, team="bench", projects={project: PROJECT_ID}))
    return paths, {**os.environ, "MEMLANE_HOME": str(home), "MEMLANE_PORT": "0",
                   "MEMLANE_JOBS_INTERVAL_S": "86400"}, project


def connected_at(paths: Paths) -> float:
    """When the daemon's sync first connected (its log line's timestamp, epoch seconds)."""
    for line in (paths.home / "stderr.log").read_text().splitlines():
        if '"sync_connected"' in line:
            stamp = json.loads(line)["timestamp"].replace("Z", "+00:00")
            return datetime.datetime.fromisoformat(stamp).timestamp()
    raise RuntimeError("the daemon never connected")


def sync_status(paths: Paths) -> dict[str, Any]:
    return Client(paths, timeout=60).request("GET", "/v1/sync")  # type: ignore[no-any-return]


def wait(check: Any, *, timeout: float = 3600) -> float:
    began = time.perf_counter()
    while not check():
        if time.perf_counter() - began > timeout:
            raise TimeoutError("the benchmark's condition never held")
        time.sleep(0.05)
    return time.perf_counter() - began


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--stream", type=int, default=5_000)
    args = parser.parse_args()
    print("memlane sync benchmark")
    print_machine()
    root = Path(tempfile.mkdtemp(prefix="mls-", dir="/tmp"))
    server, url = nats_server(root)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        probe = resolve_paths({"MEMLANE_HOME": str(root / "probe")})  # sync stays off there
        probe.home.mkdir()
        model, pipeline, dims = probe_pipeline(probe, {
            **os.environ, "MEMLANE_HOME": str(probe.home), "MEMLANE_PORT": "0"})
        a_paths, a_env, a_project = device(root, "a", url)
        b_paths, b_env, _ = device(root, "b", url)
        fill(a_paths.log_dir, a_project, args.backlog, model, pipeline, dims)
        processes.append(start(a_paths, a_env))
        last = sync_status(a_paths)["outbox"]["last_seq"]
        wait(lambda: sync_status(a_paths)["outbox"]["cursor"] >= last)
        published = time.time() - connected_at(a_paths)
        print(f"publish: {args.backlog:,} events in {published:.2f} s from A's connection "
              f"({args.backlog / published:,.0f} events/s)")
        processes.append(start(b_paths, b_env))
        wait(lambda: sync_status(b_paths)["inbox"]["applied"] >= args.backlog)
        caught = time.time() - connected_at(b_paths)
        print(f"catch-up: B applied {args.backlog:,} events in {caught:.2f} s from its "
              f"connection ({args.backlog / caught:,.0f} events/s), load "
              f"{os.getloadavg()[0]:.2f}")
        client = Client(a_paths, timeout=600)
        began = time.perf_counter()
        for first in range(0, args.stream, 500):
            client.request("POST", "/v1/import", {"memories": [
                {"text": note("streamed", i),
                 "project": a_project, "kind": "note"}
                for i in range(first, min(first + 500, args.stream))]})
        imported = time.perf_counter() - began
        wait(lambda: sync_status(b_paths)["inbox"]["applied"] >= args.backlog + args.stream)
        e2e = time.perf_counter() - began
        print(f"end to end: {args.stream:,} stores on A applied on B in {e2e:.1f} s "
              f"({args.stream / e2e:,.0f} events/s; the imports took {imported:.1f} s), "
              f"load {os.getloadavg()[0]:.2f}")
    finally:
        for process in processes:
            stop(process)
        server.kill()
        server.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
