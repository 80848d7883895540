"""The HTTP API of a real daemon on both listeners: health, OpenAI-compatible embeddings,
access control, body limits, micro-batching, and vectors equal to in-process ones."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
from memlane.cli.client import DaemonError
from memlane.daemon.adapters.embedder import Embedder
from memlane.daemon.domain.models import MINILM

from tests.e2e.daemon import DaemonProcess, temporary_daemon
from tests.tools import require

TEXTS = ["The build cache must be cleared after upgrading the toolchain.",
         "Use uv instead of pip for installs in this repository.",
         "Deploys to staging run on every merge to main."]


@pytest.fixture(scope="module")
def live() -> Iterator[DaemonProcess]:
    with temporary_daemon() as process:
        yield process


def port_of(daemon: DaemonProcess) -> int:
    return int((daemon.paths.runtime / "tcp.port").read_text())


def token_of(daemon: DaemonProcess) -> str:
    return daemon.paths.token.read_text().strip()


def tcp(daemon: DaemonProcess, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port_of(daemon), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_curl_over_the_unix_socket(live: DaemonProcess) -> None:
    result = subprocess.run([require("curl", "Debian package curl"), "-sS", "--unix-socket", str(live.paths.socket),
                             "http://localhost/v1/health"], capture_output=True, text=True,
                            timeout=30, check=True)
    health = json.loads(result.stdout)
    assert health["status"] == "ready" and health["model"] == "minilm-l6-int8"
    assert health["pipeline"] == "minilm-l6-int8/mean/384/p1"


def test_openai_client_gets_vectors_through_tcp_with_the_token(live: DaemonProcess) -> None:
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port_of(live)}/v1",
                           api_key=token_of(live), max_retries=0)
    answer = client.embeddings.create(model="minilm-l6-int8", input=TEXTS)
    assert [d.index for d in answer.data] == [0, 1, 2]
    vectors = np.array([d.embedding for d in answer.data])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert answer.usage.prompt_tokens > 0
    # The client asks for base64 by default unless told otherwise; float must work too.
    floats = client.embeddings.create(model="minilm-l6-int8", input=TEXTS[0],
                                      encoding_format="float")
    assert np.allclose(floats.data[0].embedding, vectors[0], atol=1e-6)


def test_openai_client_without_the_token_gets_401(live: DaemonProcess) -> None:
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port_of(live)}/v1", api_key="wrong",
                           max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.embeddings.create(model="minilm-l6-int8", input="hello")
    assert caught.value.status_code == 401
    status, body = tcp(live, "POST", "/v1/embeddings", b'{"input": "x"}')
    assert status == 401 and body["error"]["code"] == "unauthorized"


def test_browser_origin_and_foreign_host_are_refused(live: DaemonProcess) -> None:
    auth = {"Authorization": f"Bearer {token_of(live)}"}
    status, body = tcp(live, "GET", "/v1/status", headers={**auth, "Origin": "http://evil.example"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, _ = tcp(live, "GET", "/v1/status", headers={**auth, "Host": "evil.example"})
    assert status == 403
    status, _ = tcp(live, "GET", "/v1/status", headers=auth)
    assert status == 200


def test_ten_megabyte_body_is_refused_without_memory_growth(live: DaemonProcess) -> None:
    """A declared 10 MB body is answered 413 from its headers, before a byte of it is sent,
    and three of them leave the daemon's memory where it was."""
    assert live.process is not None
    before = rss_kb(live.process.pid)
    head = (f"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token_of(live)}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10 * 1024 * 1024}\r\n\r\n").encode()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port_of(live)), timeout=30) as sock:
            sock.sendall(head)
            response = http.client.HTTPResponse(sock)
            response.begin()
            assert response.status == 413
            assert json.loads(response.read())["error"]["code"] == "payload_too_large"
    assert rss_kb(live.process.pid) - before < 4 * 1024
    assert tcp(live, "GET", "/v1/health", headers={"Authorization": f"Bearer {token_of(live)}"})[0] == 200


def test_daemon_vectors_equal_in_process_vectors(live: DaemonProcess) -> None:
    answer = live.client.request("POST", "/v1/embeddings", {"input": TEXTS})
    remote = np.array([d["embedding"] for d in answer["data"]], dtype=np.float32)
    local = Embedder.load(MINILM, live.paths.models_dir, threads=1).embed(TEXTS)
    cosines = (remote * local).sum(axis=1)
    assert cosines.min() > 0.9999


def test_query_input_type_and_dimension_errors(live: DaemonProcess) -> None:
    plain = live.client.request("POST", "/v1/embeddings", {"input": "cache"})
    query = live.client.request("POST", "/v1/embeddings", {"input": "cache", "input_type": "query"})
    # MiniLM has no query instruction: both ways give the same vector.
    assert np.allclose(plain["data"][0]["embedding"], query["data"][0]["embedding"], atol=1e-6)
    status, body = tcp(live, "POST", "/v1/embeddings", b'{"input": "x", "dimensions": 128}',
                       {"Authorization": f"Bearer {token_of(live)}"})
    assert status == 400 and body["error"]["code"] == "bad_dimensions"
    status, body = tcp(live, "POST", "/v1/embeddings", b'{"input": []}',
                       {"Authorization": f"Bearer {token_of(live)}"})
    assert status == 400 and body["error"]["code"] == "invalid_request"
    status, body = tcp(live, "POST", "/v1/embeddings", b'{"input": ["ok", "   "]}',
                       {"Authorization": f"Bearer {token_of(live)}"})
    assert status == 400 and body["error"]["code"] == "blank_input"


# With no window (the default) only requests that arrive during a pass share the next one, as
# the thread scheduling of a loaded machine allows; a window makes concurrent requests share.
@pytest.mark.daemon_env(MEMLANE_BATCH_WINDOW_MS="200")
def test_twenty_concurrent_requests_share_forward_passes(daemon: DaemonProcess) -> None:
    before = daemon.client.request("GET", "/v1/status")["embed_passes"]
    barrier = threading.Barrier(20)
    results: list[list[float]] = [[] for _ in range(20)]

    def one(i: int) -> None:
        barrier.wait()
        answer = daemon.client.request("POST", "/v1/embeddings",
                                       {"input": f"hook number {i} fired"})
        results[i] = answer["data"][0]["embedding"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    passes = daemon.client.request("GET", "/v1/status")["embed_passes"] - before
    assert all(len(r) == 384 for r in results)
    assert passes < 10, f"20 concurrent requests took {passes} forward passes"
    alone = daemon.client.request("POST", "/v1/embeddings", {"input": "hook number 7 fired"})
    assert np.allclose(alone["data"][0]["embedding"], results[7], atol=1e-5)


def test_a_search_in_a_project_without_memories_embeds_nothing(daemon: DaemonProcess) -> None:
    """Nothing of another project may come back, so a search (and a prompt hook) in a project
    with no live memory answers nothing without an embedding pass; in a project with
    memories the query is embedded."""
    daemon.client.request("POST", "/v1/memories", {"text": "the build cache needs clearing",
                                                   "project": "/work/a"})
    daemon.wait_idle()
    before = daemon.client.request("GET", "/v1/status")["embed_passes"]
    empty = daemon.client.request("POST", "/v1/search", {"query": "build cache",
                                                         "project": "/work/new"})
    assert empty["hits"] == []
    assert daemon.client.request("GET", "/v1/status")["embed_passes"] == before
    found = daemon.client.request("POST", "/v1/search", {"query": "build cache",
                                                         "project": "/work/a"})
    assert [h["text"] for h in found["hits"]] == ["the build cache needs clearing"]
    assert daemon.client.request("GET", "/v1/status")["embed_passes"] == before + 1


def logged_requests(daemon: DaemonProcess) -> list[tuple[str, int]]:
    """(route, status) of every request line the daemon wrote to stderr."""
    lines = [json.loads(line) for line in daemon.stderr().splitlines() if line.startswith("{")]
    return [(line["route"], line["status"]) for line in lines if line["event"] == "request"]


def served_and_refused(daemon: DaemonProcess) -> None:
    daemon.client.request("GET", "/v1/health")
    with pytest.raises(DaemonError) as refused:
        daemon.client.request("GET", "/v1/memories/999999")
    assert refused.value.status == 404
    daemon.stop()  # the log is whole once the daemon has stopped


def test_a_request_is_logged_when_refused_not_when_served_fast(daemon: DaemonProcess) -> None:
    """A line per request cost the request loop ~0.13 ms and the journal a line per prompt."""
    served_and_refused(daemon)
    logged = logged_requests(daemon)
    assert ("/v1/memories/{id}", 404) in logged
    assert ("/v1/health", 200) not in logged


@pytest.mark.daemon_env(MEMLANE_LOG_LEVEL="DEBUG")  # any case
def test_log_level_debug_logs_every_request(daemon: DaemonProcess) -> None:
    served_and_refused(daemon)
    assert {("/v1/health", 200), ("/v1/memories/{id}", 404)} <= set(logged_requests(daemon))
