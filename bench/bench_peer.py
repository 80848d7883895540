"""memlane beside its closest installable peer, mcp-memory-service, in one run on the same data.

Run: python -m bench.bench_peer [--peer-python /tmp/peer-venv/bin/python] [--memories 5000]
                                [--queries 200] [--peer-batch 16] [--stores 100]

The peer lives in a venv of its own, never memlane's. Its sqlite-vec backend needs a Python
whose sqlite3 can load extensions (pyenv's 3.11.7 here cannot; Debian's /usr/bin/python3.11
can):
    /usr/bin/python3.11 -m venv /tmp/peer-venv
    /tmp/peer-venv/bin/pip install 'mcp-memory-service[sqlite]==12.4.0'

Both run offline on the same file: memlane's packaged MiniLM INT8 ONNX (``minilm-l6-int8``) is
copied where the peer's ONNX loader looks for its default model
(``$HOME/.cache/mcp_memory/onnx_models/all-MiniLM-L6-v2/onnx/model.onnx``) with the same
``tokenizer.json``, padding turned off (the peer pads each batch to its longest text itself)
and truncation at memlane's 256 tokens. The peer runs with HOME and XDG redirected into a
temporary directory, downloads off, its sqlite-vec backend, its quality scorer off (it would
need a model from the hub; memlane scores no quality either), an API key, on a free loopback
port (uvicorn serving ``mcp_memory_service.web.app``, what ``memory server --http`` runs).

Data: ``--memories`` memories of the committed zipf-100k corpus (bench/corpora): every memory
judged relevant to one of the first ``--queries`` queries, then the corpus in order up to the
count; a memory's project becomes the peer's store partition, each query is asked in its
project. Figures:

- bulk load until searchable: memlane ``POST /v1/import`` in chunks of 1,000 until every memory
  has its vector and its link pass; the peer's own bulk path, ``store_batch`` in batches of
  ``--peer-batch`` (16: memlane's embedding pass size, and the peer's faster batch here; its
  HTTP API stores one memory per request), in its own process
  (bench/peer_loader.py), model load excluded as memlane's is;
- search p50/p95 over HTTP, one keep-alive connection each, queries interleaved between the
  two servers so that drift in the machine hits both alike (memlane: hybrid search with
  ``floor: false``, k=10; the peer: its semantic search, n_results=10);
- RSS from /proc: memlane's daemon after load and after the searches; the peer's loader
  process after load and its server after the searches;
- recall@10 of each query's judged memories, for the record;
- then ``--stores`` more memories stored one per HTTP request on each (memlane
  ``POST /v1/memories``, the peer ``POST /api/memories``, its semantic dedup on as by default),
  alternating: p50 and how many were stored rather than refused (memlane answers once the
  memory is in its log and embeds it after; the peer answers once it is embedded and inserted:
  not the same promise, so this row is context, not a race).

memlane's daemon is idle while the peer loads (its CPU time meanwhile is printed to show it).

It exits 0 whoever is ahead and says who is.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memlane.daemon.adapters.model_store import model_files
from memlane.daemon.domain.models import MINILM

from bench.bench_embed import Daemon, running_daemon, stop
from bench.corpora import load
from bench.report import Figure, load_average, print_machine

PEER = "mcp-memory-service"
PEER_VERSION = "12.4.0"
DEFAULT_PEER_PYTHON = Path(os.environ.get("MEMLANE_PEER_PYTHON", "/tmp/peer-venv/bin/python"))
LOADER = Path(__file__).with_name("peer_loader.py")
CHUNK = 1000
K = 10
PEER_MODEL_DIR = Path(".cache/mcp_memory/onnx_models/all-MiniLM-L6-v2/onnx")


@dataclass
class Side:
    """What one system measured."""

    name: str
    load_s: float = 0.0
    search_ms: list[float] = field(default_factory=list)
    store_ms: list[float] = field(default_factory=list)
    stored: int = 0
    recalls: list[float] = field(default_factory=list)
    rss_after_load: float = 0.0
    rss_after_search: float = 0.0
    note: str = ""


class Http:
    """One keep-alive HTTP/1.1 connection to a loopback server, JSON in and out."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"content-type": "application/json", **headers}

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        self.conn.request(method, path, body=data, headers=self.headers)
        answer = self.conn.getresponse()
        payload = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{method} {path} answered {answer.status}: {payload[:300]!r}")
        return json.loads(payload)

    def timed(self, method: str, path: str, body: Any) -> tuple[float, Any]:
        started = time.perf_counter()
        answer = self.call(method, path, body)
        return (time.perf_counter() - started) * 1000, answer

    def close(self) -> None:
        self.conn.close()


Corpus = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]


def read_corpus(memories: int, queries: int, extra: int) -> Corpus:
    """The first ``queries`` queries, ``memories`` memories (every memory judged relevant to one
    of those queries, then the corpus in order up to the count, kept in corpus order) and the
    ``extra`` memories after them, for single stores."""
    directory = load("zipf-100k")
    with (directory / "queries.jsonl").open() as file:
        asked = [json.loads(line) for _, line in zip(range(queries), file)]
    judged = {i for query in asked for i in query["relevant"]}
    others = (i for i in itertools.count() if i not in judged)
    chosen = judged | set(itertools.islice(others, max(0, memories - len(judged))))
    later = set(itertools.islice(others, extra))
    with (directory / "memories.jsonl").open() as file:
        lines = [(i, json.loads(line)) for i, line in enumerate(file) if i in chosen | later]
    corpus = [m for i, m in lines if i in chosen]
    return corpus, [{**q, "relevant": [corpus_index(chosen, i) for i in q["relevant"]]}
                    for q in asked], [m for i, m in lines if i in later]


def corpus_index(chosen: set[int], index: int) -> int:
    """Where corpus line ``index`` stands among the chosen lines."""
    return sum(1 for i in chosen if i < index)


def store_of(project: str) -> str:
    """The peer's store partition for a memlane project (its last path component)."""
    return project.rstrip("/").rsplit("/", 1)[-1]


def relevant_texts(query: dict[str, Any], memories: list[dict[str, Any]]) -> set[str]:
    return {memories[i]["text"] for i in query["relevant"]}


def recall(found: list[str], wanted: set[str]) -> float:
    return len(wanted & set(found[:K])) / len(wanted)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[round(q * (len(ordered) - 1))]


# memlane ---------------------------------------------------------------------------------

def memlane_client(daemon: Daemon) -> Http:
    return Http(daemon.port, {"authorization": f"Bearer {daemon.token}"})


def memlane_load(daemon: Daemon, memories: list[dict[str, Any]]) -> float:
    """Seconds from the first import request until every memory is embedded and linked."""
    client = memlane_client(daemon)
    started = time.perf_counter()
    for start in range(0, len(memories), CHUNK):
        client.call("POST", "/v1/import", {"memories": [
            {"text": m["text"], "project": m["project"], "kind": m["kind"], "tags": m["tags"]}
            for m in memories[start:start + CHUNK]]})
    while True:
        status = client.call("GET", "/v1/status")
        if status["vectors"] >= len(memories) and not status["embedding_backlog"]:
            break
        time.sleep(0.05)
    client.close()
    return time.perf_counter() - started


def memlane_search(client: Http, query: dict[str, Any]) -> tuple[float, list[str]]:
    ms, answer = client.timed("POST", "/v1/search", {"query": query["query"],
                                                      "project": query["project"], "k": K,
                                                      "floor": False})
    return ms, [hit["text"] for hit in answer["hits"]]


def memlane_store(client: Http, memory: dict[str, Any]) -> tuple[float, bool]:
    ms, answer = client.timed("POST", "/v1/memories", {
        "text": memory["text"], "project": memory["project"], "kind": memory["kind"],
        "tags": memory["tags"]})
    return ms, not answer["duplicate"]


# the peer --------------------------------------------------------------------------------

@dataclass
class Peer:
    """A temporary home for the peer: its model cache, its data and its environment."""

    python: Path
    root: Path
    api_key: str = "bench-peer-key"

    @property
    def db(self) -> Path:
        return self.root / "data" / "sqlite_vec.db"

    def env(self, port: int | None = None) -> dict[str, str]:
        home = self.root / "home"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
               "XDG_CACHE_HOME": str(home / ".cache"), "XDG_CONFIG_HOME": str(home / ".config"),
               "XDG_DATA_HOME": str(home / ".local/share"),
               "XDG_STATE_HOME": str(home / ".local/state"),
               "MCP_MEMORY_STORAGE_BACKEND": "sqlite_vec",
               "MCP_MEMORY_BASE_DIR": str(self.db.parent), "MCP_MEMORY_SQLITE_PATH": str(self.db),
               "MCP_MEMORY_USE_ONNX": "1", "MCP_MEMORY_ONNX_ALLOW_DOWNLOAD": "0",
               "MCP_MEMORY_ONNX_PROVIDERS": "CPUExecutionProvider", "HF_HUB_OFFLINE": "1",
               "MCP_QUALITY_SYSTEM_ENABLED": "false", "MCP_MDNS_ENABLED": "false",
               "MCP_API_KEY": self.api_key}
        if port is not None:
            env.update(MCP_HTTP_HOST="127.0.0.1", MCP_HTTP_PORT=str(port))
        return env

    def place_model(self) -> None:
        """memlane's MiniLM file and tokenizer, unpadded, where the peer's loader looks."""
        onnx, tokenizer = model_files(MINILM, Path("/nonexistent"))  # packaged: no models dir
        target = self.root / "home" / PEER_MODEL_DIR
        target.mkdir(parents=True)
        shutil.copyfile(onnx, target / "model.onnx")
        spec = json.loads(tokenizer.read_text())
        spec["padding"] = None
        spec["truncation"] = {**spec["truncation"], "max_length": MINILM.max_tokens}
        (target / "tokenizer.json").write_text(json.dumps(spec))
        self.db.parent.mkdir(parents=True)

    def version(self) -> str:
        script = f"import importlib.metadata as m; print(m.version({PEER!r}))"
        done = subprocess.run([str(self.python), "-c", script], capture_output=True, text=True,
                              check=False)
        if done.returncode:
            raise PeerUnavailable(f"{self.python} has no {PEER}: {done.stderr.strip()[-300:]}")
        return done.stdout.strip()

    def bulk_load(self, memories: list[dict[str, Any]], batch: int) -> dict[str, float]:
        lines = self.root / "memories.jsonl"
        lines.write_text("".join(json.dumps({"text": m["text"], "store": store_of(m["project"]),
                                             "tags": m["tags"]}) + "\n" for m in memories))
        with open(self.root / "loader.log", "wb") as log:
            done = subprocess.run([str(self.python), str(LOADER), str(self.db), str(lines),
                                   str(batch)], env=self.env(), cwd=self.root,
                                  stdout=subprocess.PIPE, stderr=log, check=False)
        if done.returncode:
            raise PeerUnavailable(f"the peer's loader exited {done.returncode}: "
                                  f"{self.log_tail('loader.log')}")
        return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]

    @contextmanager
    def server(self) -> Iterator[tuple[subprocess.Popen[bytes], Http]]:
        port = free_port()
        with open(self.root / "server.log", "wb") as log:
            process = subprocess.Popen(
                [str(self.python), "-m", "uvicorn", "mcp_memory_service.web.app:app",
                 "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                env=self.env(port), cwd=self.root, stdin=subprocess.DEVNULL,
                stdout=log, stderr=log)
        try:
            client = self.wait_healthy(process, port)
            yield process, client
            client.close()
        finally:
            stop(process)

    def wait_healthy(self, process: subprocess.Popen[bytes], port: int) -> Http:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise PeerUnavailable(f"the peer's server exited {process.returncode}: "
                                      f"{self.log_tail('server.log')}")
            client = Http(port, {"authorization": f"Bearer {self.api_key}"})
            try:
                if client.call("GET", "/api/health").get("status") == "healthy":
                    return client
            except (OSError, RuntimeError, http.client.HTTPException):
                client.close()
            time.sleep(0.1)
        raise PeerUnavailable("the peer's server was not healthy within 120 s")

    def log_tail(self, name: str) -> str:
        return (self.root / name).read_text(errors="replace")[-1500:]


class PeerUnavailable(RuntimeError):
    """The peer could not be set up or run; the message says why."""


def peer_search(client: Http, query: dict[str, Any]) -> tuple[float, list[str]]:
    ms, answer = client.timed("POST", "/api/search", {"query": query["query"], "n_results": K,
                                                      "store": store_of(query["project"])})
    return ms, [hit["memory"]["content"] for hit in answer["results"]]


def peer_store(client: Http, memory: dict[str, Any]) -> tuple[float, bool]:
    """Its one HTTP store route (semantic dedup on, as by default: a refusal is an answer)."""
    ms, answer = client.timed("POST", "/api/memories", {
        "content": memory["text"], "tags": memory["tags"], "memory_type": "note",
        "store": store_of(memory["project"])})
    return ms, bool(answer.get("success"))


# the run ---------------------------------------------------------------------------------

def search_both(clients: dict[str, Http], sides: dict[str, Side],
                asked: list[dict[str, Any]], memories: list[dict[str, Any]]) -> None:
    """Every query on both servers, alternating which goes first."""
    searchers = {"memlane": memlane_search, PEER: peer_search}
    for query in asked[:10]:  # warm-up: caches, lazy imports, first-query costs
        for name, search in searchers.items():
            search(clients[name], query)
    for i, query in enumerate(asked):
        wanted = relevant_texts(query, memories)
        order = list(searchers) if i % 2 == 0 else list(reversed(searchers))
        for name in order:
            ms, found = searchers[name](clients[name], query)
            sides[name].search_ms.append(ms)
            if wanted:
                sides[name].recalls.append(recall(found, wanted))


def store_both(clients: dict[str, Http], sides: dict[str, Side],
               extra: list[dict[str, Any]]) -> None:
    """Each memory stored by one request on both servers, alternating which goes first."""
    storers = {"memlane": memlane_store, PEER: peer_store}
    for i, memory in enumerate(extra):
        for name in (list(storers) if i % 2 == 0 else list(reversed(storers))):
            ms, stored = storers[name](clients[name], memory)
            sides[name].store_ms.append(ms)
            sides[name].stored += stored


def run(*, peer_python: Path, memories: int, queries: int, peer_batch: int,
        stores: int, max_batch: int | None = None) -> dict[str, Side]:
    kept, asked, extra = read_corpus(memories, queries, stores)
    ours, theirs = Side("memlane"), Side(PEER)
    root = Path(tempfile.mkdtemp(prefix="mlpeer-", dir="/tmp"))
    peer = Peer(peer_python, root)
    try:
        version = peer.version()
        print(f"{len(kept)} memories of zipf-100k in {len({m['project'] for m in kept})} projects,"
              f" {len(asked)} queries; peer {PEER} {version} at {peer_python},"
              f" store_batch of {peer_batch}")
        peer.place_model()
        env = {} if max_batch is None else {"MEMLANE_MAX_BATCH": str(max_batch)}
        with running_daemon(**env) as daemon:
            print(f"  load average {load_average()} before memlane's load")
            ours.load_s = memlane_load(daemon, kept)
            ours.rss_after_load = daemon.rss_mib()
            print(f"  memlane: {len(kept)} memories embedded and linked in {ours.load_s:.1f} s,"
                  f" load average {load_average()}")
            cpu = cpu_seconds(daemon.process.pid)
            loaded = peer.bulk_load(kept, peer_batch)
            cpu = cpu_seconds(daemon.process.pid) - cpu
            theirs.load_s, theirs.rss_after_load = loaded["load_s"], loaded["rss_mib"]
            theirs.note = (f"loader: model load {loaded['init_s']:.1f} s (excluded), "
                           f"{loaded['stored']:.0f} stored, {loaded['failed']:.0f} refused, "
                           f"peak RSS {loaded['hwm_mib']:.0f} MiB")
            print(f"  {PEER}: {loaded['stored']:.0f} memories stored in {theirs.load_s:.1f} s"
                  f" ({theirs.note}), load average {load_average()}; memlane's idle daemon"
                  f" used {cpu:.2f} s CPU meanwhile")
            with peer.server() as (process, peer_client):
                clients = {"memlane": memlane_client(daemon), PEER: peer_client}
                search_both(clients, {"memlane": ours, PEER: theirs}, asked, kept)
                print(f"  searches done, load average {load_average()}")
                ours.rss_after_search = daemon.rss_mib()
                theirs.rss_after_search = proc_rss_mib(process.pid)
                store_both(clients, {"memlane": ours, PEER: theirs}, extra)
                clients["memlane"].close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"memlane": ours, PEER: theirs}


def ahead(what: str, ours: float, theirs: float, *, lower_wins: bool = True) -> str:
    if ours == theirs:
        return f"  {what}: even"
    memlane_wins = (ours < theirs) == lower_wins
    winner = "memlane" if memlane_wins else PEER
    factor = max(ours, theirs) / min(ours, theirs) if min(ours, theirs) > 0 else float("inf")
    return f"  {what}: {winner} ahead ({factor:.2f}x)"


def report(sides: dict[str, Side], memories: int) -> None:
    ours, theirs = sides["memlane"], sides[PEER]
    rows = [
        ("bulk load until searchable (s)", f"{ours.load_s:.1f}", f"{theirs.load_s:.1f}"),
        ("  memories/s", f"{memories / ours.load_s:.0f}", f"{memories / theirs.load_s:.0f}"),
        ("search p50 over HTTP (ms)", f"{statistics.median(ours.search_ms):.1f}",
         f"{statistics.median(theirs.search_ms):.1f}"),
        ("search p95 over HTTP (ms)", f"{percentile(ours.search_ms, 0.95):.1f}",
         f"{percentile(theirs.search_ms, 0.95):.1f}"),
        ("RSS after load (MiB)", f"{ours.rss_after_load:.0f}",
         f"{theirs.rss_after_load:.0f} (loader)"),
        ("RSS after searches (MiB)", f"{ours.rss_after_search:.0f}",
         f"{theirs.rss_after_search:.0f} (server)"),
        (f"single store over HTTP p50 (ms, {len(ours.store_ms)} each)",
         f"{statistics.median(ours.store_ms):.1f}" if ours.store_ms else "-",
         f"{statistics.median(theirs.store_ms):.1f}" if theirs.store_ms else "-"),
        ("  stored (not refused as duplicates)", f"{ours.stored}", f"{theirs.stored}"),
        (f"recall@10 ({len(ours.recalls)} judged queries)",
         f"{statistics.mean(ours.recalls):.3f}" if ours.recalls else "-",
         f"{statistics.mean(theirs.recalls):.3f}" if theirs.recalls else "-"),
    ]
    print(f"\n  {'':<42}{'memlane':>10}  {PEER + ' ' + PEER_VERSION:>26}")
    for name, left, right in rows:
        print(f"  {name:<42}{left:>10}  {right:>26}")
    print()
    print(ahead("bulk load", ours.load_s, theirs.load_s))
    print(ahead("search p50", statistics.median(ours.search_ms),
                statistics.median(theirs.search_ms)))
    print(ahead("search p95", percentile(ours.search_ms, 0.95), percentile(theirs.search_ms, 0.95)))
    print(ahead("RSS after searches (serving process)", ours.rss_after_search,
                theirs.rss_after_search))
    print("  (memlane's search is hybrid dense + BM25 with a neighbour lift; the peer's is dense"
          " only, sqlite-vec KNN in the query's store; a single store: memlane answers once the"
          " memory is logged and embeds it after, the peer once it is embedded and inserted)")


def figures(sides: dict[str, Side], memories: int) -> list[Figure]:
    ours, theirs = sides["memlane"], sides[PEER]
    base = f"{PEER} {PEER_VERSION}, same run"
    pairs = [(f"bulk load of {memories} memories", ours.load_s, theirs.load_s, "s"),
             ("search p50 over HTTP", statistics.median(ours.search_ms),
              statistics.median(theirs.search_ms), "ms"),
             ("search p95 over HTTP", percentile(ours.search_ms, 0.95),
              percentile(theirs.search_ms, 0.95), "ms"),
             ("RSS after load and searches", ours.rss_after_search, theirs.rss_after_search,
              "MiB")]
    return [Figure("peer", name, round(value, 2), unit, baseline=round(peer, 2),
                   baseline_name=base, target="ratio <= 1 (memlane ahead)", met=value <= peer,
                   load=load_average())
            for name, value, peer, unit in pairs]


def measure(*, peer_python: Path = DEFAULT_PEER_PYTHON, memories: int = 5000,
            queries: int = 200, peer_batch: int = 16, stores: int = 100) -> list[Figure]:
    """Figures for bench.run_all; none (with the reason printed) when the peer cannot run."""
    try:
        sides = run(peer_python=peer_python, memories=memories, queries=queries,
                    peer_batch=peer_batch, stores=stores)
    except (PeerUnavailable, FileNotFoundError) as exc:
        print(f"peer benchmark not run: {exc}")
        return []
    report(sides, memories)
    return figures(sides, memories)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", type=Path, default=DEFAULT_PEER_PYTHON,
                        help="python of the peer's own venv (see this module's docstring)")
    parser.add_argument("--memories", type=int, default=5000)
    parser.add_argument("--max-batch", type=int, help="memlane's max_batch (default: its own)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--peer-batch", type=int, default=16,
                        help="memories per store_batch call (memlane's pass size)")
    parser.add_argument("--stores", type=int, default=100,
                        help="memories then stored one per HTTP request on each server")
    args = parser.parse_args()
    print_machine()
    if not args.peer_python.exists():
        raise SystemExit(f"{args.peer_python} not found: create the peer's venv first "
                         "(see `python -m bench.bench_peer --help` or this module's docstring)")
    try:
        sides = run(peer_python=args.peer_python, memories=args.memories, queries=args.queries,
                    peer_batch=args.peer_batch, stores=args.stores, max_batch=args.max_batch)
    except PeerUnavailable as exc:
        raise SystemExit(f"the peer could not run: {exc}") from None
    report(sides, args.memories)
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
