"""The daemon end to end: acknowledged stores survive kill -9; rebuilds answer the same."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest

from memlane.cli.client import Client, DaemonError, DaemonUnavailable
from memlane.events.log import read_log
from memlane.events.model import Record
from memlane.projections import sqlite_store, vector_store
from tests.e2e.daemon import DaemonProcess

pytestmark = pytest.mark.crash


def acknowledged_log(daemon: DaemonProcess) -> list[Record]:
    """The log up to the last event the daemon acknowledged, checked whole: seqs 1 to it, no
    gap (the daemon may still be appending vectors and links past it)."""
    last_seq = daemon.client.request("GET", "/v1/status")["last_seq"]
    records = list(read_log(daemon.paths.log_dir, upto=last_seq))
    assert [r.seq for r in records] == list(range(1, last_seq + 1))
    return records


def store_many(client: Client, texts: list[str], acked: list[dict[str, Any]],
               lock: threading.Lock) -> None:
    """Store texts one by one, recording each acknowledged answer, until the daemon dies."""
    for text in texts:
        try:
            answer = client.request("POST", "/v1/memories", {"text": text, "project": "p"})
        except (DaemonUnavailable, DaemonError):
            return
        with lock:
            acked.append({"text": text, **answer})


def concurrent_stores(daemon: DaemonProcess, texts: list[str], clients: int, *,
                      kill_after: int | None = None) -> list[dict[str, Any]]:
    acked: list[dict[str, Any]] = []
    lock = threading.Lock()
    shares = [texts[i::clients] for i in range(clients)]
    threads = [threading.Thread(target=store_many, args=(daemon.client, share, acked, lock))
               for share in shares]
    for thread in threads:
        thread.start()
    if kill_after is not None:
        while True:
            with lock:
                if len(acked) >= kill_after:
                    break
            threading.Event().wait(0.001)
        daemon.kill9()
    for thread in threads:
        thread.join()
    return acked


def test_kill9_mid_load_loses_no_acknowledged_store(daemon: DaemonProcess) -> None:
    """500 stores from 8 clients, kill -9 halfway: every acked memory is there after restart."""
    texts = [f"memory {i}: {random.Random(i).random()} about the build" for i in range(500)]
    acked = concurrent_stores(daemon, texts, clients=8, kill_after=250)
    assert len(acked) >= 250
    daemon.start()
    for answer in acked:
        memory = daemon.client.request("GET", f"/v1/memories/{answer['id']}")
        assert memory["text"] == answer["text"]
    records = acknowledged_log(daemon)
    again = daemon.client.request("POST", "/v1/memories", {"text": "after the crash", "project": "p"})
    assert again["duplicate"] is False and again["seq"] > records[-1].seq


def test_rebuild_from_log_gives_identical_answers(daemon: DaemonProcess) -> None:
    """Deleting the projections and rebuilding gives the same status counts and get answers."""
    acked = concurrent_stores(daemon, [f"note {i} on caching layer {i % 7}" for i in range(120)], 4)
    before_status = daemon.wait_idle()
    before = {a["id"]: daemon.client.request("GET", f"/v1/memories/{a['id']}") for a in acked}
    assert daemon.stop() == 0
    sqlite_store.remove_files(daemon.paths.sqlite)
    vector_store.remove_files(daemon.paths.vectors)
    from memlane.cli.offline import rebuild_offline

    assert rebuild_offline(daemon.paths)["replayed"] == before_status["last_seq"]
    daemon.start()
    after_status = daemon.client.request("GET", "/v1/status")
    assert after_status["memories"] == before_status["memories"]
    assert after_status["last_seq"] == before_status["last_seq"]
    for memory_id, memory in before.items():
        assert daemon.client.request("GET", f"/v1/memories/{memory_id}") == memory


def test_kill9_loop_loses_nothing(daemon: DaemonProcess) -> None:
    """Repeated kill -9 under load: acked stores are always in the log, seqs contiguous."""
    all_acked: list[dict[str, Any]] = []
    for cycle in range(5):
        texts = [f"cycle {cycle} memory {i}" for i in range(200)]
        all_acked += concurrent_stores(daemon, texts, clients=6, kill_after=40 + 10 * cycle)
        daemon.start()
    logged = {r.event.id: r.event.text for r in acknowledged_log(daemon)
              if r.event.__struct_config__.tag == "stored"}  # type: ignore[union-attr]
    for answer in all_acked:
        assert logged[answer["id"]] == answer["text"]


def test_second_daemon_exits_cleanly(daemon: DaemonProcess, short_tmp: Path) -> None:
    """A second daemon on the same state directory says so and exits 0."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "memlane.daemon"], env=daemon.env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "already owns" in result.stderr
    assert daemon.client.request("GET", "/v1/health")["status"] == "ready"
