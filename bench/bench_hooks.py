"""Claude Code hook latency with 10k stored memories, on the offline model.

Run: python -m bench.bench_hooks [--memories 10000]

Measures p50/p95 of: a `type: "http"` UserPromptSubmit hook (POST /hooks/UserPromptSubmit
over TCP with the token, a new connection each time, as Claude Code sends it), the packaged
command hook script (`hook.sh`, curl over the Unix socket, a fresh process each time), and
`memlane recall` (a fresh CLI process). Targets on this machine: http p50 <= 15 ms, command
p50 <= 30 ms, CLI p50 <= 150 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.bench_embed import Daemon, print_header, running_daemon
from memlane.cli.client import Client

TOPICS = ["build cache", "postgres pool", "uv installs", "docker layers", "pytest fixtures",
          "react rendering", "terraform state", "kubernetes probes", "rust lifetimes",
          "git rebase", "CI runners", "feature flags", "rate limits", "sentry sampling"]
PROMPTS = [f"why does the {t} break again after the upgrade?" for t in TOPICS]


def fill(daemon: Daemon, count: int, project: str) -> None:
    client = Client(daemon.paths, timeout=600)
    rng = random.Random(7)
    for start in range(0, count, 1000):
        batch = [{"text": f"note {i}: the {rng.choice(TOPICS)} needs {rng.choice(TOPICS)} "
                          f"settings number {rng.randint(1, 10**6)}", "project": project}
                 for i in range(start, min(start + 1000, count))]
        client.request("POST", "/v1/import", {"memories": batch})
    while client.request("GET", "/v1/status")["embedding_backlog"]:
        time.sleep(0.2)


def payload(prompt: str, session: str, cwd: str) -> bytes:
    return json.dumps({"session_id": session, "transcript_path": "/nonexistent",
                       "cwd": cwd, "permission_mode": "default",
                       "hook_event_name": "UserPromptSubmit", "prompt": prompt}).encode()


def http_hook_ms(daemon: Daemon, cwd: str, runs: int) -> list[float]:
    samples = []
    for i in range(runs):
        body = payload(PROMPTS[i % len(PROMPTS)], f"s{i}", cwd)
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
        conn.request("POST", "/hooks/UserPromptSubmit", body=body,
                     headers={"content-type": "application/json",
                              "authorization": f"Bearer {daemon.token}"})
        answer = conn.getresponse()
        answer.read()
        conn.close()
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.status == 200
    return samples


def command_hook_ms(daemon: Daemon, cwd: str, runs: int) -> list[float]:
    script = Path(__import__("memlane.cli", fromlist=["x"]).__path__[0]) / "hook.sh"
    memlane = shutil.which("memlane") or str(Path(sys.executable).with_name("memlane"))
    samples = []
    for i in range(runs):
        started = time.perf_counter()
        subprocess.run(["sh", str(script), "UserPromptSubmit", str(daemon.paths.socket), memlane],
                       input=payload(PROMPTS[i % len(PROMPTS)], f"c{i}", cwd),
                       capture_output=True, check=True, timeout=30)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def cli_recall_ms(daemon: Daemon, project: str, runs: int) -> list[float]:
    memlane = shutil.which("memlane") or str(Path(sys.executable).with_name("memlane"))
    env = {"PATH": "/usr/bin:/bin", "MEMLANE_HOME": str(daemon.paths.home)}
    samples = []
    for i in range(runs):
        started = time.perf_counter()
        subprocess.run([memlane, "recall", PROMPTS[i % len(PROMPTS)], "-p", project], env=env,
                       capture_output=True, check=True, timeout=30)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def p50_p95(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    print_header()
    project = str(Path.cwd())
    with running_daemon() as daemon:
        started = time.perf_counter()
        fill(daemon, args.memories, project)
        print(f"loaded {args.memories} memories (embedded and linked) in "
              f"{time.perf_counter() - started:.1f} s")
        http_hook_ms(daemon, project, 20)  # warm-up
        rows = {"http hook UserPromptSubmit (tcp, new connection)":
                (http_hook_ms(daemon, project, args.runs), 15.0),
                "command hook script (sh + curl, unix socket)":
                (command_hook_ms(daemon, project, args.runs // 4), 30.0),
                "memlane recall (fresh CLI process)":
                (cli_recall_ms(daemon, project, args.runs // 10), 150.0)}
        print(f"{'':52} {'p50 ms':>8} {'p95 ms':>8}  target p50")
        for name, (samples, target) in rows.items():
            p50, p95 = p50_p95(samples)
            verdict = "met" if p50 <= target else "MISSED"
            print(f"  {name:<50} {p50:8.2f} {p95:8.2f}  <= {target:.0f} ms {verdict}")
        print(f"daemon RSS after the runs: {daemon.rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
