"""Claude Code fast paths on the fixed hook corpus (issue 15), on the offline model.

Run: python -m bench.bench_hooks [--runs 100]

A real daemon holds the ``hooks-20k`` corpus (bench/corpora: 20,000 memories over 5 projects,
embedded before measuring); each project is a directory with a ``.git`` so the hooks find it
from their ``cwd`` as they do in a session. Prompts come from the corpus too: 300 and 2,000
characters, from the largest project and from a project with no memories. Measured, each a
new connection or a fresh process as Claude Code makes them:

- ``POST /hooks/UserPromptSubmit`` over TCP with the token (a ``type: "http"`` hook): p50
  target 15 ms for 300 characters, 60 ms for 2,000; once more for 300 characters with a
  pause before each hook (untimed), as prompts come in a session, the raw embed beside it;
- the packaged command hook (``hook.sh``: sh + curl over the Unix socket): end to end 30 ms;
  with no daemon on the socket it must exit at once, with nothing: 300 ms;
- ``memlane recall`` (a fresh CLI process): end to end 60 ms;
- the floors beside them: ``GET /v1/health`` over a new TCP connection, a fresh ``curl``
  process asking the socket for it, and the raw query embedding of the same prompts in this
  process (the daemon's model and thread count: what no hook can go below).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.bench_embed import THREADS, Daemon, print_load, running_daemon
from bench.corpora import load
from bench.report import Figure, load_average, print_machine, write_figures
from memlane.cli.client import Client
from memlane.daemon.adapters.embedder import Embedder
from memlane.daemon.domain.models import MINILM

CHUNK = 1000
# Prompts come seconds apart in a session: by then the daemon's threads sleep. One row pauses
# this long (untimed) before each hook.
SPORADIC_S = 0.5


def project_dirs(root: Path, names: set[str]) -> dict[str, Path]:
    """A directory with a ``.git`` for each corpus project, so hooks detect it from cwd."""
    dirs = {}
    for name in sorted(names):
        where = root / Path(name).name
        (where / ".git").mkdir(parents=True)
        dirs[name] = where
    return dirs


def fill(daemon: Daemon, memories: list[dict[str, object]], dirs: dict[str, Path]) -> None:
    """Import every memory into its project's directory, then wait until all are embedded."""
    client = Client(daemon.paths, timeout=600)
    rows = [{**m, "project": str(dirs[str(m["project"])]), "source": "import"} for m in memories]
    for start in range(0, len(rows), CHUNK):
        client.request("POST", "/v1/import", {"memories": rows[start:start + CHUNK]})
    while client.request("GET", "/v1/status")["embedding_backlog"]:
        time.sleep(0.2)


def payload(prompt: str, session: str, cwd: Path) -> bytes:
    return json.dumps({"session_id": session, "transcript_path": "/nonexistent",
                       "cwd": str(cwd), "permission_mode": "default",
                       "hook_event_name": "UserPromptSubmit", "prompt": prompt}).encode()


def timed(action: Callable[[int], None], runs: int, *, pause: float = 0.0) -> list[float]:
    """Each run's milliseconds; ``pause`` seconds (not timed) before each run."""
    samples = []
    for i in range(runs):
        time.sleep(pause)
        started = time.perf_counter()
        action(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def http_request(daemon: Daemon, method: str, path: str, body: bytes | None = None) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    conn.request(method, path, body=body, headers={"content-type": "application/json",
                                                   "authorization": f"Bearer {daemon.token}"})
    answer = conn.getresponse()
    answer.read()
    conn.close()
    if answer.status != 200:
        raise RuntimeError(f"{method} {path}: HTTP {answer.status}")


def memlane_executable() -> str:
    return shutil.which("memlane") or str(Path(sys.executable).with_name("memlane"))


def interpreter_of(executable: str) -> str:
    """The Python a console script runs under (its ``#!`` line)."""
    with open(executable, "rb") as script:
        return script.readline().decode().removeprefix("#!").strip()


def measure(daemon: Daemon, prompts: list[dict[str, object]], dirs: dict[str, Path],
            runs: int, largest: str, new: str,
            memlane: str) -> list[tuple[str, list[float], float | None]]:
    """(row name, samples in ms, p50 target or None for a floor)."""
    def of(project: str, size: int) -> list[str]:
        return [str(p["prompt"]) for p in prompts if p["project"] == project and p["size"] == size]

    script = Path(__import__("memlane.cli", fromlist=["x"]).__path__[0]) / "hook.sh"
    socket = str(daemon.paths.socket)
    cli_env = {"PATH": "/usr/bin:/bin", "MEMLANE_HOME": str(daemon.paths.home)}
    short = of(largest, 300)

    sessions = itertools.count()

    def hook(project: str, size: int) -> Callable[[int], None]:
        """One prompt of a session of its own: a session's memories are shown to it once, so
        a session seen before would get nothing back and skip the work of answering."""
        texts = of(project, size)
        return lambda i: http_request(daemon, "POST", "/hooks/UserPromptSubmit",
                                      payload(texts[i % len(texts)], f"h{next(sessions)}",
                                              dirs[project]))

    def command(i: int, to: str = socket) -> None:
        subprocess.run(["sh", str(script), "UserPromptSubmit", to, memlane],
                       input=payload(short[i % len(short)], f"c{i}", dirs[largest]),
                       capture_output=True, check=True, timeout=30)

    def command_down(i: int) -> None:  # a socket no daemon listens on
        command(i, to=str(daemon.paths.home / "nobody.sock"))

    def recall(i: int) -> None:
        subprocess.run([memlane, "recall", short[i % len(short)], "-p", str(dirs[largest])],
                       env=cli_env, capture_output=True, check=True, timeout=30)

    def python_start(_i: int) -> None:
        subprocess.run([interpreter_of(memlane), "-c", "pass"], env=cli_env, capture_output=True,
                       check=True, timeout=30)

    def curl_health(_i: int) -> None:
        subprocess.run(["curl", "-sf", "--unix-socket", socket, "http://localhost/v1/health"],
                       capture_output=True, check=True, timeout=30)

    timed(hook(largest, 300), 20)  # warm-up: first passes of each shape, page cache
    rows: list[tuple[str, list[float], float | None]] = [
        ("floor: GET /v1/health (tcp, new connection)",
         timed(lambda _i: http_request(daemon, "GET", "/v1/health"), runs), None)]
    for project, label in ((largest, "largest project"), (new, "new project")):
        for size, target in ((300, 15.0), (2000, 60.0)):
            rows.append((f"http hook, {size:,} chars, {label}", timed(hook(project, size), runs),
                         target))
    rows.append((f"http hook, 300 chars, largest project, {SPORADIC_S:g} s apart",
                 timed(hook(largest, 300), runs // 4, pause=SPORADIC_S), 15.0))
    embedder = Embedder.load(MINILM, daemon.paths.models_dir, threads=THREADS)
    for size in (300, 2000):
        texts = of(largest, size)
        embedder.embed(texts[:2], input_type="query")  # warm-up
        rows.append((f"floor: raw query embed in process, {size:,} chars",
                     timed(lambda i, t=texts: embedder.embed([t[i % len(t)]],
                                                             input_type="query"), runs), None))
    rows.append((f"floor: raw query embed in process, 300 chars, {SPORADIC_S:g} s apart",
                 timed(lambda i: embedder.embed([short[i % len(short)]], input_type="query"),
                       runs // 4, pause=SPORADIC_S), None))
    rows += [("floor: curl /v1/health (fresh process, socket)", timed(curl_health, runs // 4),
              None),
             ("command hook (sh + curl, socket), 300 chars", timed(command, runs // 4), 30.0),
             ("command hook, daemon down (exits with nothing)", timed(command_down, runs // 4),
              300.0),
             ("floor: the CLI's Python, started empty (-c pass)", timed(python_start, runs // 4),
              None),
             ("memlane recall (fresh CLI process)", timed(recall, runs // 4), 60.0)]
    return rows


def floor_of(name: str) -> str:
    """The floor row a target row is judged beside."""
    if name.startswith("command hook"):
        return "floor: curl /v1/health (fresh process, socket)"
    if name.startswith("memlane recall"):
        return "floor: the CLI's Python, started empty (-c pass)"
    if "new project" in name:
        return "floor: GET /v1/health (tcp, new connection)"
    size = "2,000" if "2,000 chars" in name else "300"
    apart = f", {SPORADIC_S:g} s apart" if name.endswith(" apart") else ""
    return f"floor: raw query embed in process, {size} chars{apart}"


def figures(rows: list[tuple[str, list[float], float | None]]) -> list[Figure]:
    """The target rows (p50) for bench.run_all's table, each beside its floor's p50."""
    p50 = {name: statistics.median(samples) for name, samples, _ in rows}
    load = load_average()
    return [Figure("hooks", name, round(p50[name], 2), "ms",
                   baseline=round(p50[floor_of(name)], 2),
                   baseline_name=floor_of(name).removeprefix("floor: "),
                   target=f"p50 <= {target:g}", met=p50[name] <= target, load=load)
            for name, _, target in rows if target is not None]


def report(rows: list[tuple[str, list[float], float | None]]) -> None:
    print(f"{'':54} {'p50 ms':>8} {'p95 ms':>8}  target p50")
    for name, samples, target in rows:
        ordered = sorted(samples)
        p50, p95 = statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]
        verdict = "" if target is None else (
            f"<= {target:.0f} ms {'met' if p50 <= target else 'MISSED'}")
        print(f"  {name:<52} {p50:8.2f} {p95:8.2f}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100, help="http hook runs per row")
    parser.add_argument("--memories", type=int, default=20_000,
                        help="the corpus's first N memories (a smaller run is not the bench)")
    parser.add_argument("--memlane", default=memlane_executable(),
                        help="the memlane the CLI rows run (default: this environment's; users"
                             " run a `pip install .` one: compiled, no editable-install finder)")
    parser.add_argument("--figures", type=Path, help="also write the targets there (run_all)")
    args = parser.parse_args()
    print_machine()
    print(f"memlane for the CLI rows: {args.memlane}")
    corpus = load("hooks-20k")
    memories = [json.loads(line) for line in (corpus / "memories.jsonl").open()][:args.memories]
    prompts = [json.loads(line) for line in (corpus / "prompts.jsonl").open()]
    stored = Counter(str(m["project"]) for m in memories)
    largest = max(stored, key=stored.__getitem__)
    (new,) = {str(p["project"]) for p in prompts} - set(stored)
    root = Path(tempfile.mkdtemp(prefix="mlh-", dir="/tmp"))
    try:
        dirs = project_dirs(root, {str(m["project"]) for m in memories}
                            | {str(p["project"]) for p in prompts})
        with running_daemon() as daemon:
            started = time.perf_counter()
            fill(daemon, memories, dirs)
            print(f"hooks-20k: {len(memories):,} memories in {len(dirs) - 1} projects, embedded "
                  f"in {time.perf_counter() - started:.1f} s")
            print_load("before the runs")
            rows = measure(daemon, prompts, dirs, args.runs, largest, new, args.memlane)
            report(rows)
            print_load("after the runs")
            if args.figures is not None:
                write_figures(args.figures, figures(rows))
            print(f"daemon RSS after the runs: {daemon.rss_mib():.0f} MiB")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
