"""Load: 200 concurrent clients mixing stores, searches and embeddings against one real daemon,
then 1,000 idle connections held open while a real request still gets through.

Latency and throughput are printed for the report, never asserted (the machine is shared);
what is asserted is correctness under load: every answer 2xx and well-formed, every
acknowledged store readable and in the log, seqs contiguous, memory bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11
import pytest

from memlane.events.log import read_log
from memlane.events.model import Stored
from tests.e2e.daemon import DaemonProcess, temporary_daemon
from tests.reliability.wire import Endpoint, Reply, call

pytestmark = pytest.mark.load

LOAD_SECONDS = float(os.environ.get("MEMLANE_LOAD_SECONDS", "30"))
CLIENTS = 200
TCP_CLIENTS = 20  # the rest use the Unix socket
MIX = {"store": 50, "search": 30, "embed": 20}
REQUEST_TIMEOUT = 120.0  # a hung request is an error, not a slow one
RSS_BOUND = int(1.5 * 2**30)
IDLE_CONNECTIONS = 1000
LIVENESS_DEADLINE = 5.0
HALF_REQUEST = b"GET /v1/health HTTP/1.1\r\nHost: loc"
WORDS = ("deploy", "cache", "schema", "migration", "rollback", "token", "queue", "index",
         "latency", "retry", "shard", "replica", "build", "lint", "fixture", "release")


@pytest.fixture(scope="module")
def loaded() -> Iterator[DaemonProcess]:
    with temporary_daemon() as process:
        yield process


@dataclass
class Tally:
    """What the clients saw: latencies per operation, acknowledged stores, errors."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in MIX})
    stored: dict[int, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class AsyncClient:
    """A keep-alive HTTP/1.1 connection driven by an h11 client (strict parsing)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 headers: list[tuple[str, str]]) -> None:
        self.reader, self.writer, self.headers = reader, writer, headers
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, endpoint: Endpoint, *, tcp: bool) -> AsyncClient:
        if not tcp:
            reader, writer = await asyncio.open_unix_connection(str(endpoint.unix))
            return cls(reader, writer, [("host", "localhost")])
        reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
        return cls(reader, writer, [("host", f"localhost:{endpoint.port}"),
                                    ("authorization", f"Bearer {endpoint.token}")])

    async def request(self, method: str, path: str, payload: Any = None) -> Reply:
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = [*self.headers, ("content-length", str(len(body)))]
        head = self.conn.send(h11.Request(method=method, target=path, headers=headers))
        self.writer.write(head + self.conn.send(h11.Data(data=body))
                          + self.conn.send(h11.EndOfMessage()))
        await self.writer.drain()
        reply = await self._reply()
        self.conn.start_next_cycle()
        return reply

    async def _reply(self) -> Reply:
        head: h11.Response | None = None
        body = bytearray()
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                headers = {k.decode(): v.decode() for k, v in head.headers}
                return Reply(head.status_code, headers, bytes(body))
            else:
                raise AssertionError(f"unexpected {event!r}")

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def store_payload(client: int, n: int, rng: random.Random) -> dict[str, Any]:
    words = " ".join(rng.sample(WORDS, 3))
    return {"text": f"load client {client} note {n}: remember the {words} rule",
            "project": "load", "kind": "note"}


def check_store(reply: Reply, payload: dict[str, Any], tally: Tally) -> None:
    answer = reply.json()
    assert isinstance(answer["id"], int) and answer["seq"] == answer["id"], answer
    assert answer["duplicate"] is False, answer
    tally.stored[answer["id"]] = payload["text"]


def check_search(reply: Reply) -> None:
    hits = reply.json()["hits"]
    assert isinstance(hits, list) and all(isinstance(h["id"], int) for h in hits), hits


def check_embed(reply: Reply) -> None:
    data = reply.json()["data"]
    assert len(data) == 1 and len(data[0]["embedding"]) > 0, data


async def one_operation(client: AsyncClient, op: str, index: int, n: int, rng: random.Random,
                        tally: Tally) -> None:
    if op == "store":
        payload = store_payload(index, n, rng)
        reply = await client.request("POST", "/v1/memories", payload)
    elif op == "search":
        payload = {"query": " ".join(rng.sample(WORDS, 2)), "project": "load", "k": 5}
        reply = await client.request("POST", "/v1/search", payload)
    else:
        payload = {"input": [f"embedding {n} of client {index}: {rng.choice(WORDS)}"]}
        reply = await client.request("POST", "/v1/embeddings", payload)
    assert reply.status == 200, (op, reply.status, reply.body[:300])
    if op == "store":
        check_store(reply, payload, tally)
    elif op == "search":
        check_search(reply)
    else:
        check_embed(reply)


async def run_client(endpoint: Endpoint, index: int, deadline: float, tally: Tally) -> None:
    rng = random.Random(index)
    try:
        client = await AsyncClient.open(endpoint, tcp=index < TCP_CLIENTS)
    except OSError as exc:
        tally.errors.append(f"client {index}: cannot connect: {exc!r}")
        return
    n = 0
    try:
        while time.monotonic() < deadline:
            op = rng.choices(list(MIX), weights=list(MIX.values()))[0]
            started = time.monotonic()
            await asyncio.wait_for(one_operation(client, op, index, n, rng, tally),
                                   REQUEST_TIMEOUT)
            tally.latencies[op].append(time.monotonic() - started)
            n += 1
    except Exception as exc:  # recorded, and the test fails on it below
        tally.errors.append(f"client {index} after {n} requests: {exc!r}")
    finally:
        await client.close()


async def run_load(endpoint: Endpoint, seconds: float) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(run_client(endpoint, i, deadline, tally) for i in range(CLIENTS)))
    return tally


async def read_back(endpoint: Endpoint, ids: list[int], *, workers: int = 16) -> dict[int, str]:
    """The text of every memory in ``ids``, read over a few keep-alive connections."""
    found: dict[int, str] = {}

    async def worker(share: list[int]) -> None:
        client = await AsyncClient.open(endpoint, tcp=False)
        try:
            for memory_id in share:
                reply = await client.request("GET", f"/v1/memories/{memory_id}")
                if reply.status == 200:
                    found[memory_id] = reply.json()["text"]
        finally:
            await client.close()

    await asyncio.gather(*(worker(ids[i::workers]) for i in range(workers)))
    return found


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= needed, "cannot open enough sockets"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(tally: Tally, seconds: float, rss: tuple[int, int]) -> None:
    total = sum(len(v) for v in tally.latencies.values())
    print(f"\nload: {CLIENTS} clients ({TCP_CLIENTS} on TCP) for {seconds:.1f} s: {total} requests,"
          f" {total / seconds:.1f} req/s")
    for op, values in tally.latencies.items():
        print(f"  {op:<6} n={len(values):<6} {len(values) / seconds:7.1f}/s"
              f"  p50={percentile(values, 0.5) * 1000:8.1f} ms"
              f"  p99={percentile(values, 0.99) * 1000:8.1f} ms"
              f"  mean={(statistics.fmean(values) if values else 0) * 1000:8.1f} ms")
    print(f"  daemon RSS: {rss[0] / 2**20:.1f} MiB before, {rss[1] / 2**20:.1f} MiB after")


def test_mixed_load_answers_every_request_and_loses_no_store(loaded: DaemonProcess) -> None:
    """200 concurrent clients get only 2xx answers; every acknowledged store is readable."""
    raise_fd_limit(CLIENTS + 100)
    endpoint = Endpoint.of(loaded)
    pid = loaded.process.pid  # type: ignore[union-attr]
    rss_before = rss_bytes(pid)
    started = time.monotonic()
    tally = asyncio.run(run_load(endpoint, LOAD_SECONDS))
    elapsed = time.monotonic() - started
    rss_after = rss_bytes(pid)
    report(tally, elapsed, (rss_before, rss_after))

    assert tally.errors == [], f"{len(tally.errors)} errors, first: {tally.errors[:5]}"
    assert len(tally.stored) > 0 and all(tally.latencies.values())
    read = asyncio.run(read_back(endpoint, sorted(tally.stored)))
    missing = {i for i, text in tally.stored.items() if read.get(i) != text}
    assert not missing, f"{len(missing)} acknowledged stores unreadable, e.g. {sorted(missing)[:5]}"
    assert_log_holds(loaded, endpoint, tally.stored)
    assert rss_after < RSS_BOUND


def assert_log_holds(daemon: DaemonProcess, endpoint: Endpoint, stored: dict[int, str]) -> None:
    """Seqs run 1..last_seq without a gap, and each acknowledged store is its Stored event."""
    last_seq = call(endpoint, "GET", "/v1/status").json()["last_seq"]
    records = list(read_log(daemon.paths.log_dir, upto=last_seq))
    assert [r.seq for r in records] == list(range(1, last_seq + 1))
    logged = {r.seq: r.event.text for r in records if isinstance(r.event, Stored)}
    assert {i: logged.get(i) for i in stored} == stored


def test_a_thousand_idle_connections_do_not_block_a_real_request(
        loaded: DaemonProcess) -> None:
    """With 1,000 idle or half-sent connections held open, health and a store still answer."""
    raise_fd_limit(IDLE_CONNECTIONS + 200)
    endpoint = Endpoint.of(loaded)
    pid = loaded.process.pid  # type: ignore[union-attr]
    baseline = open_fds(pid)
    idle = [endpoint.connect() for _ in range(IDLE_CONNECTIONS)]
    try:
        for sock in idle[::2]:
            sock.sendall(HALF_REQUEST)
        # Accepted by the daemon, not merely queued in the listen backlog.
        wait_until(lambda: open_fds(pid) >= baseline + IDLE_CONNECTIONS, 30, "the accepts")
        started = time.monotonic()
        health = call(endpoint, "GET", "/v1/health", timeout=LIVENESS_DEADLINE)
        store = call(endpoint, "POST", "/v1/memories", {"text": "stored beside idle sockets",
                                                       "project": "load"},
                     timeout=LIVENESS_DEADLINE)
        took = time.monotonic() - started
        print(f"\nidle: {IDLE_CONNECTIONS} idle connections held; health + store took"
              f" {took * 1000:.1f} ms; daemon fds {open_fds(pid)} (baseline {baseline})")
        assert took < LIVENESS_DEADLINE
        assert health.status == 200 and store.status == 200, (health, store)
    finally:
        for sock in idle:
            sock.close()
    wait_until(lambda: open_fds(pid) < baseline + 20, 30, "the idle connections to be released")
    assert call(endpoint, "GET", "/v1/health").json()["status"] == "ready"
