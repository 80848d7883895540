"""Hook latency idle and under bulk load, on the offline model.

Run: python -m bench.bench_load [--memories 20000] [--projects 5] [--clients 16] [--hooks 100]
                                [--max-batch N]

Fills ``--memories`` memories over ``--projects`` projects (each a directory with ``.git``),
then measures a ``type: "http"`` UserPromptSubmit hook (300-character prompts, a new TCP
connection each, from the directory of a project that holds no memory yet) twice: on an idle
daemon, and while ``--clients`` clients send embedding batches of 32 texts through
``POST /v1/embeddings`` and store a memory, back to back. A client refused with 503 ``busy``
waits for its ``Retry-After``, as OpenAI's client does. Issue 16's targets: hook p50 ≤ 50 ms
and p99 ≤ 150 ms under that load.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import memlane.cli
from bench.bench_embed import Daemon, print_header, print_load, running_daemon
from memlane.cli.client import Client

BATCH = 32

TOPICS = ["build cache", "postgres pool", "uv installs", "docker layers", "pytest fixtures",
          "react rendering", "terraform state", "kubernetes probes", "rust lifetimes",
          "git rebase", "CI runners", "feature flags", "rate limits", "sentry sampling"]


def fill(daemon: Daemon, count: int, projects: list[Path]) -> None:
    client = Client(daemon.paths, timeout=600)
    rng = random.Random(7)
    for start in range(0, count, 1000):
        batch = [{"text": f"note {i}: the {rng.choice(TOPICS)} needs {rng.choice(TOPICS)} "
                          f"settings number {rng.randint(1, 10**6)}",
                  "project": str(projects[i % len(projects)])}
                 for i in range(start, min(start + 1000, count))]
        client.request("POST", "/v1/import", {"memories": batch})
    while client.request("GET", "/v1/status")["embedding_backlog"]:
        time.sleep(0.2)


def post(daemon: Daemon, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str]]:
    """Status and headers of one request on a new connection (as Claude Code sends hooks)."""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(),
                     headers={"content-type": "application/json",
                              "authorization": f"Bearer {daemon.token}"})
        answer = conn.getresponse()
        answer.read()
        return answer.status, dict(answer.getheaders())
    finally:
        conn.close()


def prompt(i: int) -> str:
    words = f"why does the {TOPICS[i % len(TOPICS)]} break again after the upgrade, and "
    return (words * 8)[:300]


def hook_body(i: int, cwd: Path) -> dict[str, str]:
    """Claude Code's UserPromptSubmit input for prompt ``i`` of session ``s{i}`` in ``cwd``."""
    return {"session_id": f"s{i}", "transcript_path": "/nonexistent", "cwd": str(cwd),
            "permission_mode": "default", "hook_event_name": "UserPromptSubmit",
            "prompt": prompt(i)}


def hook_ms(daemon: Daemon, cwd: Path, runs: int) -> list[float]:
    samples = []
    for i in range(runs):
        started = time.perf_counter()
        status, _ = post(daemon, "/hooks/UserPromptSubmit", hook_body(i, cwd))
        samples.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
    return samples


class BulkClients:
    """Clients that embed batches and store, back to back, until stopped."""

    def __init__(self, daemon: Daemon, count: int, project: Path) -> None:
        self.daemon, self.project = daemon, project
        self.stop = threading.Event()
        self.embedded = self.stored = self.busy = 0
        self.failures: list[int] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(count)]

    def __enter__(self) -> BulkClients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self, n: int) -> None:
        i = 0
        while not self.stop.is_set():
            texts = [f"client {n} batch {i} text {j} about {TOPICS[j % len(TOPICS)]}"
                     for j in range(BATCH)]
            status, headers = post(self.daemon, "/v1/embeddings", {"input": texts})
            if status == 503:
                with self._lock:
                    self.busy += 1
                time.sleep(float(headers.get("Retry-After", "1")))
                continue
            stored, _ = post(self.daemon, "/v1/memories",
                             {"text": f"client {n} stores note {i}", "project": str(self.project)})
            with self._lock:
                if status != 200 or stored != 200:
                    self.failures.append(status if status != 200 else stored)
                self.embedded += BATCH if status == 200 else 0
                self.stored += stored == 200
            i += 1


def hooks_beside_bulk(daemon: Daemon, cwd: Path, *, bulk_clients: int, bulk_project: Path,
                      runs: int) -> tuple[list[float], str]:
    """Hook latencies from ``cwd`` while bulk clients run, and what the clients did meanwhile."""
    with BulkClients(daemon, bulk_clients, bulk_project) as bulk:
        time.sleep(2)  # the clients' queues fill
        began, before = time.perf_counter(), (bulk.embedded, bulk.stored, bulk.busy)
        loaded = hook_ms(daemon, cwd, runs)
        seconds = time.perf_counter() - began
        embedded, stored, busy = (now - then for now, then in
                                  zip((bulk.embedded, bulk.stored, bulk.busy), before))
    return loaded, (f"{embedded / seconds:.0f} texts/s embedded for clients, "
                    f"{stored / seconds:.1f} stores/s, {busy} refusals 503 busy, "
                    f"{len(bulk.failures)} failures {sorted(set(bulk.failures))}")


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50, p99 = ordered[len(ordered) // 2], ordered[int(0.99 * (len(ordered) - 1))]
    return f"p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  max {ordered[-1]:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memories", type=int, default=20_000)
    parser.add_argument("--projects", type=int, default=5)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--hooks", type=int, default=100)
    parser.add_argument("--max-batch", type=int,
                        help="the daemon's max_batch (default: its own)")
    args = parser.parse_args()
    print_header()
    code = Path(memlane.cli.__file__).parent  # the memlane under test, wherever it came from
    sha = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False).stdout.strip()
    print(f"git {sha}; {args.memories} memories in {args.projects} projects; "
          f"{args.clients} bulk clients; {args.hooks} hooks per row; "
          f"max_batch {args.max_batch or 'as configured'}")
    root = Path(tempfile.mkdtemp(prefix="mlload-"))
    projects = [root / f"project{p}" for p in range(args.projects + 1)]
    for project in projects:
        (project / ".git").mkdir(parents=True)
    *filled, new = projects
    env = {} if args.max_batch is None else {"MEMLANE_MAX_BATCH": str(args.max_batch)}
    with running_daemon(**env) as daemon:
        started = time.perf_counter()
        fill(daemon, args.memories, filled)
        print(f"filled and embedded in {time.perf_counter() - started:.0f} s")
        hook_ms(daemon, new, 10)  # warm-up
        print_load("before the idle row")
        print(f"  hook, idle daemon:        {percentiles(hook_ms(daemon, new, args.hooks))}")
        loaded, meanwhile = hooks_beside_bulk(daemon, new, bulk_clients=args.clients,
                                              bulk_project=filled[0], runs=args.hooks)
        print(f"  hook, {args.clients} bulk clients: {percentiles(loaded)}")
        print(f"  meanwhile: {meanwhile}")
        print_load("at the end")
        print(f"daemon RSS: {daemon.rss_mib():.0f} MiB right after the load, ", end="")
        time.sleep(20)  # the daemon gives freed memory back 10 s after the last request
        print(f"{daemon.rss_mib():.0f} MiB 20 s later")


if __name__ == "__main__":
    main()
