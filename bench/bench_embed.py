"""Embedding benchmark: raw ONNX Runtime in process vs the daemon over its socket and TCP.

Run: python -m bench.bench_embed

On minilm-l6-int8 and the same short texts it measures request latency (1 and 20 texts),
20 concurrent single-text clients against 20 sequential requests (micro-batching on and off),
a fresh client process end to end, and daemon cold start to ready with its RSS. Every daemon
runs in its own MEMLANE_HOME under /tmp (socket paths are limited to ~100 bytes) and is stopped
with SIGTERM whatever happens.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import onnxruntime

from bench.report import Figure, load_average, write_figures
from memlane.cli.client import Client, DaemonError, DaemonUnavailable
from memlane.daemon.adapters.embedder import Embedder
from memlane.daemon.domain.models import MINILM
from memlane.daemon.adapters.paths import Paths, resolve_paths

THREADS = 2
TEXTS = [f"note {i}: the build cache must be cleared after upgrading the toolchain"
         for i in range(20)]
RAW = "raw Embedder.embed, in process"
ROUND_TRIP = "round trip"  # the minimal HTTP exchange: GET /v1/health
NO_BATCHING = {"MEMLANE_BATCH_WINDOW_MS": "0", "MEMLANE_MAX_BATCH": "1"}
STDLIB_REQUEST = ("from memlane.cli.client import Client; "
                  "from memlane.daemon.adapters.paths import resolve_paths; "
                  "Client(resolve_paths()).request('POST', '/v1/embeddings', "
                  "{'input': 'short text'})")
Call = Callable[[], Any]


@dataclass
class Daemon:
    """A running ``python -m memlane.daemon`` with a home of its own."""

    paths: Paths
    process: subprocess.Popen[bytes]
    ready_s: float

    @property
    def token(self) -> str:
        return self.paths.token.read_text().strip()

    @property
    def port(self) -> int:
        return int((self.paths.runtime / "tcp.port").read_text())

    def status(self) -> dict[str, Any]:
        return Client(self.paths).request("GET", "/v1/status")  # type: ignore[no-any-return]

    def rss_mib(self) -> float:
        """Resident set size from /proc (VmRSS is in kB)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS in /proc status")


@contextmanager
def running_daemon(**env: str) -> Iterator[Daemon]:
    """Start a daemon on a fresh home, wait until its model is ready; always stop it."""
    home = Path(tempfile.mkdtemp(prefix="mlb-", dir="/tmp"))
    paths = resolve_paths({"MEMLANE_HOME": str(home)})
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MEMLANE_")}
    full_env = {**inherited, "MEMLANE_HOME": str(home), "MEMLANE_PORT": "0",
                "MEMLANE_MODEL": MINILM.name, "MEMLANE_THREADS": str(THREADS), **env}
    process = None
    try:
        started = time.perf_counter()
        with open(home / "stderr.log", "wb") as stderr:
            process = subprocess.Popen([sys.executable, "-m", "memlane.daemon"], env=full_env,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=stderr)
        wait_ready(process, paths)
        yield Daemon(paths, process, time.perf_counter() - started)
    finally:
        if process is not None:
            stop(process)
        shutil.rmtree(home, ignore_errors=True)


def wait_ready(process: subprocess.Popen[bytes], paths: Paths, timeout: float = 60.0) -> None:
    """Poll /v1/health over the socket every 5 ms until the model is loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (paths.home / "stderr.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"daemon exited {process.returncode}: {log}")
        if paths.socket.exists() and health(paths) == "ready":
            return
        time.sleep(0.005)
    raise TimeoutError("the daemon did not become ready")


def health(paths: Paths) -> str | None:
    try:
        answer = Client(paths, timeout=5.0).request("GET", "/v1/health")
    except (DaemonUnavailable, DaemonError):
        return None
    return str(answer["status"])


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def unix_call(daemon: Daemon, body: dict[str, Any] | None) -> Call:
    """The CLI's client: one connection per request over the Unix socket (``body`` None: the
    minimal round trip, as in :func:`post`)."""
    client = Client(daemon.paths)
    if body is None:
        return lambda: client.request("GET", "/v1/health")
    return lambda: client.request("POST", "/v1/embeddings", body)


def tcp_call(daemon: Daemon, body: dict[str, Any] | None) -> Call:
    """One TCP connection per request, with the bearer token."""
    def call() -> Any:
        with closing(http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)) as conn:
            return post(conn, daemon.token, body)

    return call


def keepalive_call(conn: http.client.HTTPConnection, daemon: Daemon,
                   body: dict[str, Any] | None) -> Call:
    """Every request on the one TCP connection ``conn``."""
    return partial(post, conn, daemon.token, body)


def post(conn: http.client.HTTPConnection, token: str, body: dict[str, Any] | None) -> Any:
    """``POST /v1/embeddings`` with ``body``; with None, the minimal round trip: ``GET
    /v1/health``."""
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    if body is None:
        conn.request("GET", "/v1/health", headers=headers)
    else:
        conn.request("POST", "/v1/embeddings", body=json.dumps(body).encode(), headers=headers)
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"daemon answered {response.status}: {data[:200]!r}")
    return json.loads(data)


def interleaved_ms(calls: dict[str, Call], *, reps: int, warmup: int) -> dict[str, list[float]]:
    """Latency samples per call; calls alternate so drift in the machine hits all alike."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(reps):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append((time.perf_counter() - start) * 1000)
    return samples


def median_p90(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), statistics.quantiles(samples, n=10)[-1]


def measure_latency(daemon: Daemon, embedder: Embedder) -> dict[str, dict[str, list[float]]]:
    """{case: {variant: samples}} for one text, for a batch of 20, and for the minimal HTTP
    round trip of each variant (``GET /v1/health``; nothing for raw)."""
    cases = {"1 text": (TEXTS[:1], 200, 20), "20 texts": (TEXTS, 60, 4),
             ROUND_TRIP: ([], 200, 20)}
    results = {}
    for case, (texts, reps, warmup) in cases.items():
        body: dict[str, Any] | None = {"input": texts} if texts else None
        with closing(http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)) as kept:
            calls: dict[str, Call] = {
                RAW: partial(embedder.embed, texts) if texts else lambda: None,
                "daemon, unix socket (CLI Client)": unix_call(daemon, body),
                "daemon, tcp, new connection": tcp_call(daemon, body),
                "daemon, tcp, keep-alive": keepalive_call(kept, daemon, body),
                # What memlane's own clients ask for: a quarter of the bytes of JSON floats.
                "daemon, unix socket, base64": unix_call(
                    daemon, body and {**body, "encoding_format": "base64"})}
            results[case] = interleaved_ms(calls, reps=reps, warmup=warmup)
    return results


def check_same_vectors(daemon: Daemon, embedder: Embedder) -> float:
    """Largest difference between the daemon's vectors and the in-process ones."""
    answer = unix_call(daemon, {"input": TEXTS})()
    raw = embedder.embed(TEXTS)
    return max(abs(float(a) - float(b)) for row, expected in zip(answer["data"], raw, strict=True)
               for a, b in zip(row["embedding"], expected, strict=True))


def concurrent_round(send: Callable[[str], Any]) -> float:
    """Seconds for one single-text request per thread, all released together by a barrier."""
    barrier = threading.Barrier(len(TEXTS) + 1)
    answers: list[Any] = []

    def client(text: str) -> None:
        barrier.wait()
        answers.append(send(text))

    threads = [threading.Thread(target=client, args=(text,)) for text in TEXTS]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if len(answers) != len(TEXTS):
        raise RuntimeError(f"{len(TEXTS) - len(answers)} concurrent requests failed")
    return elapsed


def sequential_round(send: Callable[[str], Any]) -> float:
    start = time.perf_counter()
    for text in TEXTS:
        send(text)
    return time.perf_counter() - start


def throughput(daemon: Daemon, run_round: Callable[[Callable[[str], Any]], float],
               *, rounds: int = 15) -> tuple[float, float]:
    """(texts/s over all rounds, forward passes per round) after two warm-up rounds."""
    client = Client(daemon.paths)

    def send(text: str) -> Any:
        return client.request("POST", "/v1/embeddings", {"input": text})

    for _ in range(2):
        run_round(send)
    before = daemon.status()["embed_passes"]
    elapsed = sum(run_round(send) for _ in range(rounds))
    passes = daemon.status()["embed_passes"] - before
    return rounds * len(TEXTS) / elapsed, passes / rounds


def fresh_process_ms(daemon: Daemon, *, runs: int = 10) -> dict[str, float]:
    """Median wall time of short-lived client processes, interleaved."""
    memlane = str(Path(sys.executable).with_name("memlane"))
    commands = {"python -c pass": [sys.executable, "-c", "pass"],
                "python -c stdlib Client, 1 request": [sys.executable, "-c", STDLIB_REQUEST],
                "python -c 'import memlane.cli.app'": [sys.executable, "-c",
                                                       "import memlane.cli.app"],
                "memlane embed 'short text'": [memlane, "embed", "--no-fallback", "short text"]}
    env = {**os.environ, "MEMLANE_HOME": str(daemon.paths.home)}
    calls: dict[str, Call] = {
        name: partial(subprocess.run, argv, env=env, check=True, capture_output=True)
        for name, argv in commands.items()}
    samples = interleaved_ms(calls, reps=runs, warmup=1)
    return {name: statistics.median(values) for name, values in samples.items()}


def cold_starts(count: int = 5) -> tuple[list[float], list[float]]:
    """Seconds from spawn to ready on a fresh home, and RSS (MiB) at ready, per start."""
    seconds, rss = [], []
    for _ in range(count):
        with running_daemon() as daemon:
            seconds.append(daemon.ready_s)
            rss.append(daemon.rss_mib())
    return seconds, rss


def print_header() -> None:
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    print(f"memlane embedding benchmark: {MINILM.name}, {THREADS} ORT threads, {now}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, onnxruntime {onnxruntime.__version__}")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set: uncached modules compile at every start")
    print(f"inputs: {len(TEXTS)} short texts like {TEXTS[0]!r}")
    print_load("at start")


def print_load(when: str) -> None:
    """Load average: figures taken while other work runs on the machine are not comparable."""
    one, five, _ = os.getloadavg()
    print(f"load average {when}: {one:.2f} (1 min), {five:.2f} (5 min)")


def print_latency(results: dict[str, dict[str, list[float]]], max_diff: float) -> None:
    print(f"\nlatency, ms (daemon vectors vs in process: max |diff| {max_diff:.1e})")
    print(f"  {'':36}{'1 text med':>11}{'p90':>7}{'20 texts med':>14}{'p90':>7}"
          f"{'round trip med':>16}")
    for variant in results["1 text"]:
        one = median_p90(results["1 text"][variant])
        batch = median_p90(results["20 texts"][variant])
        trip = statistics.median(results[ROUND_TRIP][variant])
        print(f"  {variant:36}{one[0]:>11.2f}{one[1]:>7.2f}{batch[0]:>14.2f}{batch[1]:>7.2f}"
              f"{trip:>16.2f}")


def print_throughput(rates: dict[str, tuple[float, float]],
                     latency: dict[str, dict[str, list[float]]]) -> None:
    """Daemon throughput, beside the in-process ceilings implied by the raw latencies."""
    one = statistics.median(latency["1 text"][RAW])
    batch = statistics.median(latency["20 texts"][RAW])
    rows = {"raw in process, one text at a time": (1000 / one, 20.0),
            "raw in process, one batch of 20": (1000 * len(TEXTS) / batch, 1.0), **rates}
    print_rows("throughput of 20 single-text requests            texts/s  passes/round",
               {name: f"{rate:>8.0f}  {passes:>12.1f}" for name, (rate, passes) in rows.items()})


def print_rows(title: str, rows: dict[str, str]) -> None:
    print(f"\n{title}")
    for name, value in rows.items():
        print(f"  {name:44}{value}")


@dataclass(frozen=True)
class Target:
    """One of the issue's targets, with the measured value beside its limit (and the same
    run's figure it is judged against, when there is one)."""

    name: str
    value: float
    limit: float
    unit: str
    at_least: bool = False
    short: str = ""  # its name in run_all's table
    baseline: float | None = None
    baseline_name: str = ""

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit


def targets(latency: dict[str, dict[str, list[float]]], rates: dict[str, tuple[float, float]],
            ready_s: float) -> list[Target]:
    med = {case: {v: statistics.median(s) for v, s in variants.items()}
           for case, variants in latency.items()}
    found = []
    raw = "raw in process, same run"
    for variant in (v for v in med["1 text"] if v != RAW):
        found.append(Target(f"20 texts, {variant} <= 1.10 x raw", med["20 texts"][variant],
                            1.10 * med["20 texts"][RAW], "ms", short=f"20 texts, {variant}",
                            baseline=med["20 texts"][RAW], baseline_name=raw))
        found.append(Target(f"1 text, {variant} <= raw + round trip + 0.5 ms",
                            med["1 text"][variant],
                            med["1 text"][RAW] + med[ROUND_TRIP][variant] + 0.5, "ms",
                            short=f"1 text, {variant}", baseline=med["1 text"][RAW],
                            baseline_name=raw))
    sequential = rates["20 sequential, batching on"][0]
    found.append(Target("20 concurrent >= 2 x 20 sequential (batching on)",
                        rates["20 concurrent, batching on"][0], 2 * sequential, "texts/s",
                        at_least=True, short="20 concurrent single texts (batching on)",
                        baseline=sequential, baseline_name="20 sequential, same run"))
    found.append(Target("cold start to ready <= 1.5 s (median)", ready_s, 1.5, "s",
                        short="cold start to ready (median)"))
    return found


def figures(found: list[Target]) -> list[Figure]:
    """The targets as rows of bench.run_all's table, each beside its baseline."""
    load = load_average()
    return [Figure("embed", t.short or t.name, round(t.value, 2), t.unit,
                   baseline=None if t.baseline is None else round(t.baseline, 2),
                   baseline_name=t.baseline_name,
                   target=f"{'>=' if t.at_least else '<='} {t.limit:.2f}", met=t.met, load=load)
            for t in found]


def print_targets(found: list[Target]) -> None:
    print("\ntargets")
    for target in found:
        verdict = "met   " if target.met else "MISSED"
        bound = ">=" if target.at_least else "<="
        print(f"  {verdict} {target.name:60} {target.value:8.2f} ({bound} {target.limit:.2f})"
              f" {target.unit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--figures", type=Path, help="also write the targets there (run_all)")
    args = parser.parse_args()
    # SIGTERM unwinds like an error, so every daemon started here is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    print_header()
    rates: dict[str, tuple[float, float]] = {}
    with running_daemon() as daemon:
        embedder = Embedder.load(MINILM, daemon.paths.models_dir, threads=THREADS)
        max_diff = check_same_vectors(daemon, embedder)
        latency = measure_latency(daemon, embedder)
        rates["20 sequential, batching on"] = throughput(daemon, sequential_round)
        rates["20 concurrent, batching on"] = throughput(daemon, concurrent_round)
        fresh = fresh_process_ms(daemon)
        warm_rss = daemon.rss_mib()
    with running_daemon(**NO_BATCHING) as daemon:
        rates["20 sequential, batching off"] = throughput(daemon, sequential_round)
        rates["20 concurrent, batching off"] = throughput(daemon, concurrent_round)
    seconds, ready_rss = cold_starts()
    print_latency(latency, max_diff)
    print_throughput(rates, latency)
    print_rows("fresh client process, median of 10 (ms)",
               {name: f"{ms:>8.1f}" for name, ms in fresh.items()})
    ready_s = statistics.median(seconds)
    print_rows("daemon", {
        f"cold start to ready, median of {len(seconds)} (s)":
            f"{ready_s:>8.3f}  (min {min(seconds):.3f}, max {max(seconds):.3f})",
        "RSS at ready, median (MiB)": f"{statistics.median(ready_rss):>8.0f}",
        "RSS after warm-up (MiB)": f"{warm_rss:>8.0f}"})
    found = targets(latency, rates, ready_s)
    print_targets(found)
    print_load("at end")
    if args.figures is not None:
        write_figures(args.figures, figures(found))


if __name__ == "__main__":
    main()
